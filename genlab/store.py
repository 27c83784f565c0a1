"""The run store: one SQLite database (WAL) under the genlab home folder.

Tables: ``runs`` (one row per run), ``metrics`` (run, step, name, value), ``checks`` (the
verdicts) and ``artifacts`` (files under the home folder: figures, results, checkpoints).
Every write is one transaction, so a process killed at any instant leaves a readable store;
a run whose process died while ``running`` is reported (and marked) ``interrupted``.
This module imports no torch (see the layering in the README).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from genlab import __version__
from genlab.errors import InputError, StoreError

STATUSES = ("running", "finished", "failed", "diverged", "interrupted")
DEFAULT_HOME = "genlab-runs"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment TEXT NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    version TEXT NOT NULL,
    preset TEXT,
    sweep TEXT,
    error TEXT,
    host TEXT,
    pid INTEGER,
    pid_start TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run INTEGER NOT NULL REFERENCES runs(id),
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS metrics_run_name ON metrics(run, name, step);
CREATE TABLE IF NOT EXISTS checks (
    run INTEGER NOT NULL REFERENCES runs(id),
    claim TEXT NOT NULL,
    predicted TEXT NOT NULL,
    measured TEXT NOT NULL,
    tolerance TEXT NOT NULL,
    passed INTEGER NOT NULL,
    paper TEXT,
    kind TEXT NOT NULL DEFAULT 'claim'
);
CREATE TABLE IF NOT EXISTS artifacts (
    run INTEGER NOT NULL REFERENCES runs(id),
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL
);
"""


VERDICT_KINDS = ("claim", "precondition", "finding")


@dataclass(frozen=True)
class Verdict:
    """One verdict: ``passed`` is computed from measurements and may be False.

    ``kind`` is what the verdict is (see DESIGN.md): a **claim** of the paper (a pass must be
    able to fail), a **precondition** (the run is in the paper's regime; if one fails, the
    run's claims are "not tested" rather than passed or failed), or a **finding** (a measured
    number the paper does not predict; it neither passes nor fails a claim).
    """

    claim: str
    predicted: str
    measured: str
    tolerance: str
    passed: bool
    paper: str = ""
    kind: str = "claim"

    def __post_init__(self) -> None:
        if self.kind not in VERDICT_KINDS:
            raise ValueError(f"Verdict kind {self.kind!r} unknown; allowed: {', '.join(VERDICT_KINDS)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "claim": self.claim,
            "predicted": self.predicted,
            "measured": self.measured,
            "tolerance": self.tolerance,
            "passed": bool(self.passed),
            "paper": self.paper,
        }


@dataclass(frozen=True)
class ClaimCount:
    """How a run's (or a report's) claims came out. Preconditions and findings are not counted."""

    passed: int = 0
    failed: int = 0
    not_tested: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.not_tested

    def __add__(self, other: "ClaimCount") -> "ClaimCount":
        return ClaimCount(self.passed + other.passed, self.failed + other.failed, self.not_tested + other.not_tested)

    def summary(self) -> str:
        """``"k of n claims pass"`` (plus how many were not tested), for headlines."""
        tested = self.passed + self.failed
        text = f"{self.passed} of {tested} claims pass" if tested else "no claims tested"
        return text + (f" ({self.not_tested} not tested: a precondition failed)" if self.not_tested else "")


def claim_outcome(verdict: Verdict, verdicts: Sequence[Verdict]) -> str:
    """``pass``, ``FAIL`` or ``not tested`` for a claim (given all verdicts of its run);
    ``met``/``NOT MET`` for a precondition; ``finding`` for a finding."""
    if verdict.kind == "finding":
        return "finding"
    if verdict.kind == "precondition":
        return "met" if verdict.passed else "NOT MET"
    if any(v.kind == "precondition" and not v.passed for v in verdicts):
        return "not tested"
    return "pass" if verdict.passed else "FAIL"


def count_claims(verdicts: Sequence[Verdict]) -> ClaimCount:
    """Count one run's claims: a failed precondition makes every claim of the run not tested."""
    outcomes = [claim_outcome(v, verdicts) for v in verdicts if v.kind == "claim"]
    return ClaimCount(outcomes.count("pass"), outcomes.count("FAIL"), outcomes.count("not tested"))


MONITORING_KINDS = ("monitor:", "diagnose:")
"""Experiment-name prefixes of runs recorded from a user's model (``genlab.Monitor``, ``genlab.diagnose``)."""


def is_monitoring_run(run: Mapping[str, Any] | str) -> bool:
    """True for a monitored training or a diagnosis: measurements and findings, no claims to pass or fail."""
    name = run if isinstance(run, str) else str(run.get("experiment", ""))
    return name.startswith(MONITORING_KINDS)


def resolve_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The home folder: ``home`` if given, else ``$GENLAB_HOME``, else ``./genlab-runs``."""
    return Path(home or os.environ.get("GENLAB_HOME") or DEFAULT_HOME)


def process_start(pid: int) -> str | None:
    """Start time of a process in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = process_start(pid)
    return start is None or now is None or now == start


def _num(value: Any) -> float:
    try:
        return float("nan") if value is None else float(value)
    except (TypeError, ValueError, OverflowError):  # a crafted store: text where a number belongs
        return float("nan")


_REQUIRED = {
    "runs": {"id", "experiment", "config", "config_hash", "seed", "status", "started", "ended", "version",
             "preset", "sweep", "error", "host", "pid", "pid_start"},
    "metrics": {"run", "step", "name", "value"},
    "checks": {"run", "claim", "predicted", "measured", "tolerance", "passed", "paper"},
    "artifacts": {"run", "kind", "name", "path"},
}

_F = TypeVar("_F", bound=Callable[..., Any])


def damaged(path: Path, detail: str) -> StoreError:
    """The one-line error for a store file that cannot be used."""
    detail = " ".join(str(detail).split())[:200]
    return StoreError(
        f"store {path} is damaged or not a genlab store ({detail}); inspect it with: "
        f"sqlite3 '{path}' 'PRAGMA integrity_check'  (move it away to start a new store)"
    )


def _guarded(method: _F) -> _F:
    """Turn SQLite errors met while reading or writing the database into one StoreError line."""

    @wraps(method)
    def wrapper(self: "Store", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:  # locked, disk I/O, read-only file, missing table
            if "malformed" in str(exc) or "not a database" in str(exc):
                raise damaged(self.path, str(exc)) from None
            raise StoreError(f"store {self.path}: {exc}") from None
        except sqlite3.IntegrityError:
            raise  # a bug in genlab's own writes: keep the traceback
        except sqlite3.DatabaseError as exc:
            raise damaged(self.path, str(exc)) from None

    return wrapper  # type: ignore[return-value]


class Store:
    """The SQLite run store of one home folder. Safe to open from several processes."""

    def __init__(self, home: str | os.PathLike[str] | None = None, create: bool = True):
        self.home = resolve_home(home)
        self.path = self.home / "genlab.sqlite"
        if not create and not self.path.exists():
            raise FileNotFoundError(f"no genlab store at {self.path}")
        if self.home.exists() and not self.home.is_dir():
            raise InputError(f"--home: {self.home} is not a folder")
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--home: cannot create {self.home}: {exc.strerror or exc}") from None
        if self.path.exists() or self.path.is_symlink():
            if not self.path.is_file():
                raise damaged(self.path, "not a regular file")
            if self.path.stat().st_size == 0:
                raise damaged(self.path, "an empty file where a store should be; it is not re-initialised")
        else:
            self._create(self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise damaged(self.path, str(exc)) from None
        self._db.row_factory = sqlite3.Row
        self._open()

    @staticmethod
    def _create(path: Path) -> None:
        """Create an empty store atomically: build it under a temporary name, then link it into
        place, so that a file at ``path`` is always a complete store (an empty file never is)."""
        tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
            finally:
                db.close()
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process created it meanwhile: use theirs
                pass
            except OSError:  # no hard links on this file system
                if not path.exists():
                    os.replace(tmp, path)
        except OSError as exc:
            raise InputError(f"--home: cannot create a store in {path.parent}: {exc.strerror or exc}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def _open(self) -> None:
        """Set up the connection, run a quick integrity check and check that this is a genlab store."""
        try:
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
            if problems != ["ok"]:
                raise damaged(self.path, "quick_check: " + "; ".join(problems))
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables & set(_REQUIRED):  # a foreign database: none of genlab's tables
                found = ", ".join(sorted(tables)[:5]) or "none"
                raise damaged(self.path, f"no genlab tables; tables found: {found}")
            for table, needed in _REQUIRED.items():
                if table not in tables:
                    continue  # created below (a store from an older genlab)
                cols = {r["name"] for r in self._db.execute(f"PRAGMA table_info({table})")}
                if not needed <= cols:
                    raise damaged(self.path, f"table {table!r} lacks columns {sorted(needed - cols)}")
            self._db.executescript(_SCHEMA)  # idempotent DDL (indexes)
            cols = {r["name"] for r in self._db.execute("PRAGMA table_info(checks)")}
            if "kind" not in cols:  # a store written before verdicts had kinds: all were claims
                self._db.execute("ALTER TABLE checks ADD COLUMN kind TEXT NOT NULL DEFAULT 'claim'")
        except StoreError:
            self._db.close()
            raise
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "malformed" in str(exc) or "not a database" in str(exc):
                raise damaged(self.path, str(exc)) from None
            raise StoreError(f"store {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise damaged(self.path, str(exc)) from None

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it lands, or none of it does."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_dir(self, run_id: int) -> Path:
        """Folder for a run's files (figures, results, checkpoints)."""
        d = self.home / "runs" / str(run_id)
        d.mkdir(parents=True, exist_ok=True)
        return d

    # -- writes -----------------------------------------------------------------------------
    @_guarded
    def create_run(
        self,
        experiment: str,
        config: dict[str, Any],
        config_hash: str,
        seed: int,
        preset: str | None = None,
        sweep: str | None = None,
    ) -> int:
        pid = os.getpid()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (experiment, config, config_hash, seed, status, started, version,"
                " preset, sweep, host, pid, pid_start) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    experiment,
                    json.dumps(config, sort_keys=True),
                    config_hash,
                    seed,
                    "running",
                    time.time(),
                    __version__,
                    preset,
                    sweep,
                    socket.gethostname(),
                    pid,
                    process_start(pid),
                ),
            )
            return int(cur.lastrowid)

    @_guarded
    def log_metrics(self, run_id: int, rows: Iterable[tuple[int, str, float]]) -> None:
        """Append metric rows ``(step, name, value)`` in one transaction."""
        data = [(run_id, int(s), str(n), None if math.isnan(float(v)) else float(v)) for s, n, v in rows]
        if not data:
            return
        with self.transaction() as db:
            db.executemany("INSERT INTO metrics (run, step, name, value) VALUES (?,?,?,?)", data)

    @_guarded
    def add_checks(self, run_id: int, verdicts: Sequence[Verdict]) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM checks WHERE run = ?", (run_id,))
            db.executemany(
                "INSERT INTO checks (run, claim, predicted, measured, tolerance, passed, paper, kind)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [
                    (run_id, v.claim, v.predicted, v.measured, v.tolerance, int(bool(v.passed)), v.paper, v.kind)
                    for v in verdicts
                ],
            )

    @_guarded
    def add_artifact(self, run_id: int, kind: str, name: str, path: Path) -> None:
        """Record a file that already lies (complete) under the home folder."""
        rel = os.path.relpath(path, self.home)
        if self.inside_home(rel) is None:
            raise ValueError(f"artifact {path} is not inside the home folder {self.home}")
        with self.transaction() as db:
            db.execute("INSERT INTO artifacts (run, kind, name, path) VALUES (?,?,?,?)", (run_id, kind, name, rel))

    @_guarded
    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET status = ?, ended = ?, error = ? WHERE id = ?",
                (status, time.time(), error, run_id),
            )

    @_guarded
    def mark_dead_runs(self) -> int:
        """Mark ``running`` runs of this host whose process is gone as ``interrupted``."""
        host = socket.gethostname()
        rows = self._db.execute(
            "SELECT id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?", (host,)
        ).fetchall()
        dead = [r["id"] for r in rows if r["pid"] is None or not process_alive(int(r["pid"]), r["pid_start"])]
        if dead:
            with self.transaction() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', error = COALESCE(error, 'process ended while running')"
                    " WHERE id = ? AND status = 'running'",
                    [(i,) for i in dead],
                )
        return len(dead)

    # -- reads ------------------------------------------------------------------------------
    def _run_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        try:
            d["config"] = json.loads(d["config"])
        except (TypeError, ValueError, RecursionError):  # a crafted store: keep the text, read nothing into it
            d["config"] = {"unreadable config": str(d["config"])[:200]}
        for key in ("host", "pid", "pid_start"):
            d.pop(key, None)
        for key in ("experiment", "status", "config_hash", "version", "preset", "sweep", "error"):
            if d.get(key) is not None and not isinstance(d[key], str):  # SQLite keeps any type in any column
                d[key] = str(d[key])
        return d

    @_guarded
    def runs(self, experiment: str | None = None, sweep: str | None = None) -> list[dict[str, Any]]:
        """All runs, newest last, with dead ``running`` runs reported as ``interrupted``."""
        self.mark_dead_runs()
        q, args = "SELECT * FROM runs", []
        conds = []
        if experiment:
            conds.append("experiment = ?")
            args.append(experiment)
        if sweep:
            conds.append("sweep = ?")
            args.append(sweep)
        if conds:
            q += " WHERE " + " AND ".join(conds)
        return [self._run_dict(r) for r in self._db.execute(q + " ORDER BY id", args)]

    @_guarded
    def get_run(self, run_id: int) -> dict[str, Any] | None:
        self.mark_dead_runs()
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_dict(row)

    @_guarded
    def metrics(self, run_id: int, name: str | None = None) -> list[tuple[int, str, float]]:
        if name is None:
            rows = self._db.execute("SELECT step, name, value FROM metrics WHERE run = ? ORDER BY rowid", (run_id,))
        else:
            rows = self._db.execute(
                "SELECT step, name, value FROM metrics WHERE run = ? AND name = ? ORDER BY rowid", (run_id, name)
            )
        return [(int(_num(s)) if math.isfinite(_num(s)) else 0, str(n), _num(v)) for s, n, v in rows]

    @_guarded
    def final_metrics(self, run_id: int) -> dict[str, float]:
        """The last recorded value of every metric of a run."""
        out: dict[str, float] = {}
        for _, name, value in self.metrics(run_id):
            out[name] = value
        return out

    @_guarded
    def checks(self, run_id: int) -> list[Verdict]:
        rows = self._db.execute(
            "SELECT claim, predicted, measured, tolerance, passed, paper, kind FROM checks WHERE run = ? ORDER BY rowid",
            (run_id,),
        )
        return [
            Verdict(
                str(r["claim"]), str(r["predicted"]), str(r["measured"]), str(r["tolerance"]), bool(r["passed"]),
                str(r["paper"] or ""),
                r["kind"] if r["kind"] in VERDICT_KINDS else "claim",
            )
            for r in rows
        ]

    @_guarded
    def artifacts(self, run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT kind, name, path FROM artifacts WHERE run = ? ORDER BY rowid", (run_id,))
        out = []
        for r in rows:
            path = self.inside_home(r["path"])
            if path is not None and (kind is None or r["kind"] == kind):
                out.append({"kind": r["kind"], "name": r["name"], "path": str(path)})
        return out

    def inside_home(self, rel: Any) -> Path | None:
        """The artifact path ``rel`` resolved against the home, or None unless it lies inside
        the home (an absolute or ``../`` path, or a symlink out of it, in a shared or crafted
        store must not make genlab read other files of the machine)."""
        if not isinstance(rel, str) or not rel or "\x00" in rel:
            return None
        home = self.home.resolve()
        path = (home / rel).resolve()
        return path if path != home and path.is_relative_to(home) else None
