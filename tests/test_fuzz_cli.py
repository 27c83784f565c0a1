"""Fuzz and faults at the command line: bad arguments, damaged stores, crafted artifact paths
and hostile stored strings. Bad input is exit 2, one line on stderr, and the home folder is
unchanged (a tree hash before and after); stored strings are printed as text, never as markup.

Runs ``genlab.cli.main`` in this process (no interpreter start per case). Default run small;
``GENLAB_FUZZ_EXAMPLES=N`` for a long run (see tests/_fuzz.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from _fuzz import FUZZ, MARKUP, hostile_text, tree_hash
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_config import bad_values

from genlab.cli import main
from genlab.experiments import registry
from genlab.store import Store, Verdict


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> str:
    """Run the CLI; assert exit 2, one stderr line, nothing on stdout, ``root`` unchanged."""
    before = tree_hash(root)
    code, out, err = _cli(capsys, *args)
    assert code == 2, (args, code, err[-2000:])
    assert len(err.strip().splitlines()) == 1 and err.startswith("genlab: error: "), (args, err[-2000:])
    assert out == "", (args, out[:500])
    assert tree_hash(root) == before, f"{args}: something was written"
    return err


def _store_with_runs(home: Path, runs: int = 3) -> Store:
    s = Store(home)
    for i in range(runs):
        rid = s.create_run("deep-linear", {"i": i, "pad": "x" * 3000}, f"h{i}", i)
        s.log_metrics(rid, [(k, "loss", 1.0 / (k + 1)) for k in range(200)])
        s.add_checks(rid, [Verdict("claim", "p", "m", "t", True)])
        s.finish_run(rid, "finished")
    return s


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A folder holding a store with runs (``root/home``) and a config file."""
    _store_with_runs(tmp_path / "home").close()
    return tmp_path


# -- bad arguments ------------------------------------------------------------------------
FIXED_BAD = [
    ["show", "1" + "0" * 30],
    ["show", "0"],
    ["show", "-1"],
    ["show", "999"],
    ["report", "1" + "0" * 30],
    ["report", "999"],
    ["run", "deep-linear", "--seed", "1" + "0" * 30],
    ["run", "deep-linear", "--seed", "-1"],
    ["run", "deep-linear", "--set", "lr=inf"],
    ["run", "deep-linear", "--set", "n=1" + "0" * 30],
    ["run", "deep-linear", "--set", "n=" + "9" * 5000],
    ["run", "deep-linear", "--set", "x=" + "[" * 5000 + "]" * 5000],
    ["run", "deep-linear", "--set", "d_hidden=1"],
    ["run", "forgetting", "--set", "search_k=[]"],
    ["run", "gfs-sharpness", "--set", "scalar_target=nan"],
    ["run", "[/x]"],
    ["run", "deep-linear", "--set", "[/x]=1"],
    ["run", "deep-linear", "--set", "noequals"],
    ["run", "deep-linear", "--preset-nope"],
    ["sweep", "stable-minima", "--grid", "seed=0:100000000000000"],
    ["sweep", "stable-minima", "--grid", "seed=0:40", "--grid", "n=8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33"],
    ["sweep", "stable-minima", "--grid", "seed=0:4", "--workers", "1" + "0" * 30],
    ["sweep", "stable-minima", "--grid", "seed=0:4", "--max-points", "0"],
    ["sweep-report", "[/x]"],
]


@pytest.mark.parametrize("args", FIXED_BAD, ids=lambda a: " ".join(a)[:60])
def test_bad_arguments_exit_2_one_line_nothing_written(args: list[str], root: Path, capsys) -> None:
    _refused(capsys, root, *args, "--home", str(root / "home"))


def test_unusable_home_and_out_paths(root: Path, capsys) -> None:
    a_file = root / "a-file"
    a_file.write_text("x")
    for args in (
        ["run", "deep-linear", "--quick", "--home", str(a_file / "sub")],
        ["run", "deep-linear", "--quick", "--home", "/proc/genlab-nope/home"],
        ["run", "deep-linear", "--quick", "--home", str(a_file)],
        ["report", "--out", str(a_file / "r.html"), "--home", str(root / "home")],
        ["report", "--out", "/proc/genlab-nope.html", "--home", str(root / "home")],
        ["report", "--out", str(root), "--home", str(root / "home")],
        ["atlas", "--out", str(a_file / "atlas.html"), "--home", str(root / "home")],
        ["sweep-report", "x", "--out", str(a_file / "s.html"), "--home", str(root / "home")],
    ):
        _refused(capsys, root, *args)


def test_unreadable_and_malformed_config_files(root: Path, capsys) -> None:
    cases = {"latin1.yaml": "lr: caf\xe9\n".encode("latin-1"), "digits.yaml": b"n: " + b"9" * 5000,
             "deep.yaml": b"x: " + b"[" * 5000, "list.yaml": b"- 1\n", "nul.yaml": b"lr: \x00\n"}
    for fname, raw in cases.items():
        path = root / "cfg" / fname
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(raw)
        _refused(capsys, root, "run", "deep-linear", "--config", str(path), "--home", str(root / "home"))
    _refused(capsys, root, "run", "deep-linear", "--config", str(root / "cfg"), "--home", str(root / "home"))


@FUZZ
@given(data=st.data())
def test_generated_bad_set_values_at_the_cli(data: st.DataObject, tmp_path_factory, capsys) -> None:
    """A generated bad value for a random field of a random experiment, through ``--set``."""
    root = tmp_path_factory.mktemp("cli")
    name = data.draw(st.sampled_from(list(registry())))
    cls = registry()[name].Config
    field = data.draw(st.sampled_from(sorted(cls.model_fields)))
    value = data.draw(bad_values(cls, field))
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return
    text = text.replace("NaN", ".nan").replace("-Infinity", "-.inf").replace("Infinity", ".inf")
    if isinstance(value, str):
        text = value
    if any(c in text for c in "\x00"):
        return  # a NUL cannot be passed in a command-line argument
    _refused(capsys, root, "run", name, "--quick", "--set", f"{field}={text}", "--home", str(root / "home"))


# -- damaged stores -----------------------------------------------------------------------
def _damage(kind: str, db: Path) -> None:
    size = db.stat().st_size
    if kind == "truncated":
        os.truncate(db, size // 2)
    elif kind == "empty":
        os.truncate(db, 0)
    elif kind == "garbage header":
        with open(db, "r+b") as fh:
            fh.write(bytes(range(7, 107)))
    elif kind == "random bytes mid-file":
        with open(db, "r+b") as fh:
            fh.seek(8192)  # the pages of the runs table and its neighbours
            fh.write(bytes((i * 37 + 11) % 256 for i in range(4096)))
    elif kind == "folder":
        db.unlink()
        db.mkdir()
    elif kind == "text file":
        db.write_text("these are not the runs you are looking for\n")
    elif kind == "foreign database":
        db.unlink()
        con = sqlite3.connect(db)
        con.executescript("CREATE TABLE moz_places (id INTEGER, url TEXT); INSERT INTO moz_places VALUES (1, 'x');")
        con.close()


DAMAGE = ["truncated", "empty", "garbage header", "random bytes mid-file", "folder", "text file", "foreign database"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_store_is_one_line_naming_the_file(kind: str, tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    s = _store_with_runs(home, runs=20)
    s.close()
    for extra in ("genlab.sqlite-wal", "genlab.sqlite-shm"):
        assert not (home / extra).exists()
    _damage(kind, home / "genlab.sqlite")
    for args in (["runs"], ["runs", "--json"], ["show", "1"], ["report"], ["run", "deep-linear", "--quick"],
                 ["sweep-report", "x"]):
        err = _refused(capsys, tmp_path, *args, "--home", str(home))
        assert str(home / "genlab.sqlite") in err and "integrity_check" in err, err
    with pytest.raises(Exception) as info:  # the Python API says the same
        Store(home)
    assert "integrity_check" in str(info.value)


def test_store_creation_is_atomic(tmp_path: Path) -> None:
    """A new store appears complete (never as an empty file a later open would have to guess about)."""
    home = tmp_path / "home"
    with Store(home) as s:
        assert s.runs() == []
    assert (home / "genlab.sqlite").stat().st_size > 0
    assert not [p for p in home.iterdir() if p.name.startswith(".genlab.sqlite.new")]


# -- crafted artifact paths and hostile stored strings --------------------------------------
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def test_artifact_paths_outside_the_home_are_refused(tmp_path: Path, capsys) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG + b"SECRET-BYTES-OUTSIDE-THE-HOME")
    home = tmp_path / "home"
    s = Store(home)
    rid = s.create_run("deep-linear", {}, "h", 0)
    inside = s.run_dir(rid) / "ok.png"
    inside.write_bytes(PNG)
    s.add_artifact(rid, "figure", "ok.png", inside)
    (s.run_dir(rid) / "link.png").symlink_to(secret)
    con = sqlite3.connect(home / "genlab.sqlite")
    for path in (str(secret), "../secret.png", f"runs/{rid}/../../../secret.png", f"runs/{rid}/link.png", "", ".", "/etc/passwd"):
        con.execute("INSERT INTO artifacts (run, kind, name, path) VALUES (?, 'figure', 'x.png', ?)", (rid, path))
    con.commit()
    con.close()
    s.finish_run(rid, "finished")
    assert [a["name"] for a in s.artifacts(rid)] == ["ok.png"]
    with pytest.raises(ValueError):
        s.add_artifact(rid, "figure", "x.png", secret)
    s.close()
    out = tmp_path / "report.html"
    code, _, err = _cli(capsys, "report", "--out", str(out), "--home", str(home))
    assert code == 0, err
    text = out.read_text()
    marker = base64.b64encode(PNG + b"SECRET-BYTES-OUTSIDE-THE-HOME").decode()[-20:]
    assert marker not in text and "SECRET" not in text
    assert base64.b64encode(PNG).decode() in text  # the artifact inside the home is embedded
    code, shown, _ = _cli(capsys, "show", str(rid), "--json", "--home", str(home))
    assert code == 0 and [a["name"] for a in json.loads(shown)["artifacts"]] == ["ok.png"]


def test_show_prints_stored_markup_as_text(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    s = Store(home)
    rid = s.create_run("[bold]deep[/bold]-linear[/x]", {"k": "[/x]"}, "h", 0)
    s.add_checks(rid, [Verdict("[/x] claim", "[red]p", "m[/]", "t", False)])
    s.log_metrics(rid, [(0, "[/x]loss", 1.0)])
    s.finish_run(rid, "failed", error="Traceback ...\n  File \"/tmp/[/x]/a.py\"\nValueError: [/red] bad")
    s.close()
    code, out, err = _cli(capsys, "show", str(rid), "--home", str(home))
    assert code == 0, err
    for text in ("[bold]deep[/bold]-linear[/x]", "[/x]loss", "File \"/tmp/[/x]/a.py\"", "ValueError: [/red] bad"):
        assert text in out, (text, out)


@FUZZ
@given(experiment=hostile_text, error=hostile_text, claim=hostile_text, metric=hostile_text)
def test_show_survives_hostile_stored_strings(experiment, error, claim, metric, tmp_path_factory, capsys) -> None:
    home = tmp_path_factory.mktemp("hostile") / "home"
    s = Store(home)
    rid = s.create_run(experiment, {"k": claim}, "h", 0)
    s.add_checks(rid, [Verdict(claim, metric, error, "t", True)])
    s.log_metrics(rid, [(0, metric or "m", 1.0)])
    s.finish_run(rid, "failed", error=error)
    s.close()
    # the plain `genlab runs` table is escaped by issue 15 (its output); its JSON is checked here
    for args in (["show", str(rid)], ["show", str(rid), "--json"], ["runs", "--json"]):
        code, out, err = _cli(capsys, *args, "--home", str(home))
        assert code == 0, (args, err[-2000:])


def test_crafted_rows_of_any_type_are_shown_not_crashed(tmp_path: Path, capsys) -> None:
    """SQLite keeps any type in any column: numbers, blobs and bad JSON where text belongs."""
    home = tmp_path / "home"
    s = Store(home)
    rid = s.create_run("deep-linear", {}, "h", 0)
    s.close()
    con = sqlite3.connect(home / "genlab.sqlite")
    con.execute("UPDATE runs SET experiment = 42, status = 'finished', error = x'5b2f785d', config = '{not json' WHERE id = ?", (rid,))
    con.execute("INSERT INTO checks (run, claim, predicted, measured, tolerance, passed, paper) VALUES (?, 7, 'p', 'm', 't', 1, NULL)", (rid,))
    con.execute("INSERT INTO metrics (run, step, name, value) VALUES (?, 'x', 'loss', 'not a number')", (rid,))
    con.commit()
    con.close()
    for args in (["show", str(rid)], ["show", str(rid), "--json"], ["runs", "--json"]):
        code, out, err = _cli(capsys, *args, "--home", str(home))
        assert code == 0, (args, err[-2000:])
