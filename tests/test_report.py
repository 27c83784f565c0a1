"""The atlas HTML: summary by theme, failures with links, sections with back links, provenance,
claims/preconditions/findings apart, one offline file. Built from a store filled directly (no runs)."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from genlab.notes import ClaimNote
from genlab.report.catalog import ExperimentInfo
from genlab.report.html import render_report
from genlab.store import Store, Verdict


class _Page(HTMLParser):
    """Ids, links (href -> list of enclosing section ids) and elements by class of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, tuple[str, ...]]] = []
        self.classes: dict[str, list[str]] = {}
        self.meta: list[dict[str, str]] = []
        self._sections: list[str] = []
        self._stack: list[tuple[str, str | None]] = []
        self._text: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "meta":
            self.meta.append(a)
            return
        if tag in ("img", "br", "input"):
            return
        if tag in ("section", "nav"):
            self._sections.append(a.get("id", ""))
        if tag == "a" and "href" in a:
            self.links.append((a["href"], tuple(self._sections)))
        self._stack.append((tag, a.get("class")))
        self._text.append([])

    def handle_endtag(self, tag):
        if tag in ("meta", "img", "br", "input") or not self._stack:
            return
        t, cls = self._stack.pop()
        text = "".join(self._text.pop())
        if self._text:
            self._text[-1].append(text)
        if cls:
            for c in cls.split():
                self.classes.setdefault(c, []).append(text)
        if t in ("section", "nav") and self._sections:
            self._sections.pop()

    def handle_data(self, data):
        if self._text:
            self._text[-1].append(data)


INFO = {
    "alpha-exp": ExperimentInfo(
        title="Alpha", paper="Author 2020 (arXiv 0000.00001)", theme="t1", theme_title="Theme one", theme_order=1,
        notes={"slope is": ClaimNote("the slope of the fit", "too few steps", "raise steps")},
        captions={"fig.png": "the fit against log t; shows the claim 'slope is −1/2'"},
    ),
    "beta-exp": ExperimentInfo(title="Beta", paper="Other 2021", theme="t2", theme_title="Theme two", theme_order=2),
}


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    home = tmp_path_factory.mktemp("atlas")
    s = Store(home)
    a = s.create_run("alpha-exp", {"seed": 0, "n": 3}, "h1", 0, preset="quick")
    s.add_checks(a, [
        Verdict("the slope is −1/2", "−0.5", "−0.3", "0.1", False, paper="Author 2020 (arXiv 0000.00001)"),
        Verdict("the loss falls", "down", "down", "-", True, paper="Author 2020 (arXiv 0000.00001)"),
        Verdict("trained to zero loss", "loss < 1e-3", "2e-4", "-", True, kind="precondition"),
        Verdict("final sharpness", "-", "3.1", "-", True, kind="finding"),
    ])
    fig = s.run_dir(a) / "fig.png"
    fig.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 16)
    s.add_artifact(a, "figure", "fig.png", fig)
    s.finish_run(a, "finished")
    b = s.create_run("beta-exp", {"seed": 1}, "h2", 1, preset="full")
    s.add_checks(b, [Verdict("in regime", "yes", "no", "-", False, kind="precondition"),
                     Verdict("the gap closes", "0", "0.1", "0.2", True)])
    s.finish_run(b, "finished")
    m = s.create_run("monitor", {"lr": 0.1}, "h3", 0)  # a monitoring run: metrics, no verdicts
    s.log_metrics(m, [(0, "loss", 1.0), (1, "loss", 0.4)])
    s.finish_run(m, "finished")
    f = s.create_run("beta-exp", {"seed": 2}, "h4", 2)
    s.finish_run(f, "failed", error="Traceback ...\nValueError: broke")
    text = render_report(s, [a, b, m, f], info=INFO, heading="atlas")
    page = _Page()
    page.feed(text)
    return {"text": text, "page": page, "ids": (a, b, m, f)}


def test_headline_counts_claims_only(atlas):
    headline = atlas["page"].classes["headline"][0]
    # alpha: 1 of 2 claims pass (precondition met, finding not counted); beta: 1 claim not tested
    assert "1 of 2 claims pass" in headline and "1 not tested" in headline and "3 failures" in headline


def test_summary_table_by_theme_with_links(atlas):
    page, (a, b, m, f) = atlas["page"], atlas["ids"]
    assert "summary" in page.ids
    summary_links = {h for h, secs in page.links if secs and secs[0] == "summary"}
    assert {f"#run-{a}", f"#run-{b}", f"#run-{m}", f"#run-{f}", "#theme-t1", "#theme-t2", "#theme-other"} <= summary_links
    text = atlas["text"]
    # themes in ORDER, unknown experiments last
    assert text.index("id='theme-t1'") < text.index("id='theme-t2'") < text.index("id='theme-other'")
    assert "1/2" in page.classes["fail"]  # alpha's count styled as failing
    assert "no claims" in page.classes["neutral"]  # the monitoring run is not a failure
    assert not any("monitor" in t for t in page.classes.get("fail", []))


def test_failures_list_links_to_each_failure(atlas):
    page, (a, b, m, f) = atlas["page"], atlas["ids"]
    fail_links = [h for h, secs in page.links if secs and secs[-1] == "failures"]
    assert len(fail_links) == 3  # alpha's failed claim, beta's unmet precondition, the failed run
    assert all(h.lstrip("#") in page.ids for h in fail_links)
    assert f"#run-{f}" in fail_links and f"#v-{a}-0" in fail_links and f"#v-{b}-0" in fail_links
    assert any("raise steps" in t for t in page.classes["try"])  # the experiment's own advice
    assert any("genlab sweep beta-exp --grid seed=0:5" in t for t in page.classes["try"])  # generic advice


def test_every_run_section_links_back(atlas):
    page = atlas["page"]
    for rid in atlas["ids"]:
        back = {h for h, secs in page.links if f"run-{rid}" in secs}
        assert {"#summary", "#failures"} <= back


def test_sections_group_kinds_cite_once_and_caption(atlas):
    text, a = atlas["text"], atlas["ids"][0]
    section = text[text.index(f"id='run-{a}'"):text.index("</section>", text.index(f"id='run-{a}'"))]
    assert "Claims (2)" in section and "Preconditions (1)" in section and "Findings (1)" in section
    assert section.count("Author 2020") == 1  # the citation once per section, not on every row
    assert "can fail if: too few steps" in section
    assert "<figcaption>the fit against log t; shows the claim &#x27;slope is −1/2&#x27;</figcaption>" in section


def test_provenance_and_offline(atlas):
    text, page = atlas["text"], atlas["page"]
    assert any(m.get("name") == "viewport" for m in page.meta)
    assert "genlab run alpha-exp --quick --seed 0 --set n=3" in text  # the command, from the config
    assert "http://" not in text and "https://" not in text


def test_provenance_command_reproduces_the_config():
    """The stored command, parsed back the way the CLI parses it, gives the same config."""
    import shlex

    from genlab.config import build_config, parse_assignments
    from genlab.experiments import get_experiment
    from genlab.provenance import collect

    exp = get_experiment("stable-minima")
    base = build_config(exp.Config, "quick")
    cfg = build_config(exp.Config, "quick", {"step_sizes": [0.2, 0.7], "n": 13, "seed": 4})
    prov = collect("stable-minima", "quick", cfg.model_dump(mode="json"), base.model_dump(mode="json"))
    assert prov["torch"].startswith("2.") and prov["python"].count(".") == 2
    words = shlex.split(prov["command"])
    assert words[:4] == ["genlab", "run", "stable-minima", "--quick"]
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    seed = int(words[words.index("--seed") + 1])
    again = build_config(exp.Config, "quick", {**parse_assignments(sets), "seed": seed})
    assert again.model_dump() == cfg.model_dump()
    assert len(sets) == 2  # only what differs from the preset


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_headless_chromium_renders_the_first_screen(atlas, tmp_path):
    """The page renders in a real browser (phone width): a screenshot that is not blank."""
    from PIL import Image

    page = tmp_path / "atlas.html"
    page.write_text(atlas["text"], encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=390,844", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, timeout=120,
    )
    im = Image.open(shot).convert("L")
    assert im.size == (390, 844)
    lo, hi = im.getextrema()
    assert hi - lo > 100  # text drawn, not a blank page


def test_figures_are_saved_with_legible_text(tmp_path):
    """A 6-pt title is raised to the minimum size when a run's figure is saved."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlab.recorder import Recorder
    from genlab.report.figures import MIN_FONT_PT

    s = Store(tmp_path)
    rid = s.create_run("x", {}, "h", 0)
    fig, ax = plt.subplots()
    ax.set_title("tiny", fontsize=6)
    ax.plot([0, 1], label="line")
    ax.legend(fontsize=5)
    Recorder(s, rid).save_figure("f.png", fig)
    assert ax.title.get_fontsize() == MIN_FONT_PT
    assert all(t.get_fontsize() >= MIN_FONT_PT for t in ax.get_legend().get_texts())
    plt.close(fig)
    assert (s.run_dir(rid) / "f.png").stat().st_size > 0


def test_wide_figures_get_larger_text_so_it_survives_scaling_to_the_page():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlab.report.figures import MIN_FONT_PT, PAGE_WIDTH_PX, SAVE_DPI, legible

    fig, ax = plt.subplots(figsize=(16, 3))
    ax.set_xlabel("x", fontsize=7)
    legible(fig)
    shown = ax.xaxis.label.get_fontsize() * PAGE_WIDTH_PX / (16 * SAVE_DPI)  # its size once scaled to the page
    assert shown == pytest.approx(MIN_FONT_PT)
    plt.close(fig)
