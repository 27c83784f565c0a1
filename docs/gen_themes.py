"""Write one page per theme of the atlas (docs/themes/NN-KEY.md) from the experiment registry:
each experiment's title, paper, claims with what they test, figures' captions and its config.

Run by ``make docs`` before ``mkdocs build``; the pages are generated, not committed."""

from __future__ import annotations

import sys
from pathlib import Path

from genlab.config_table import config_rows
from genlab.experiments import registry, themes


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def theme_page(key: str) -> str:
    theme = themes()[key]
    lines = [f"# {theme.title}", "", f"Experiments of the `{key}` theme; run one with `genlab run NAME --quick`.", ""]
    for name in theme.experiments:
        exp = registry()[name]
        lines += [f"## `{name}`", "", f"**{exp.title}**", "", f"*Paper:* {exp.paper}", ""]
        doc = (type(exp).__doc__ or "").strip()
        if doc:
            lines += [doc, ""]
        if exp.notes:
            lines += ["| claim (matched by) | what it tests | what can make it fail |", "|---|---|---|"]
            for k in exp.notes:
                note = exp.note(k)
                lines.append(f"| {_cell(k)} | {_cell(note.tests)} | {_cell(note.fails_if)} |")
            lines.append("")
        for fig, caption in exp.captions.items():
            lines += [f"- `{fig}`: {caption}"]
        lines += ["", "| key | type | default | allowed | quick | full |", "|---|---|---|---|---|---|"]
        for key_, typ, default, allowed, quick, full, _desc in config_rows(exp.Config):
            lines.append("| " + " | ".join(_cell(c) for c in (key_, typ, default, allowed, quick, full)) + " |")
        lines.append("")
    return "\n".join(lines)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.md"):
        old.unlink()
    index = ["# Themes", "", "The atlas groups its experiments by theme:", ""]
    for i, (key, theme) in enumerate(themes().items()):
        fname = f"{i + 1:02d}-{key}.md"
        (out / fname).write_text(theme_page(key), encoding="utf-8")
        index.append(f"- [{theme.title}]({fname}): " + ", ".join(f"`{n}`" for n in theme.experiments))
    (out / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "themes")
