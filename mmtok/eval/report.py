"""An evaluation report: sections of text, tables and PNG figures, written as Markdown and
HTML side by side, plus every number in `results.json`.

    report = Report("mmtok-image-f8 on photos/", command="mmtok eval ...")
    section = report.section("Quality")
    section.text("Held-out photos at their native size.")
    section.table(["method", "bpp", "PSNR"], [["ours", 0.22, 31.2]], caption="medians")
    section.figure(report.figure_path("rd.png"), "rate-distortion")   # a PNG written there
    report.results["image"] = {...}                 # JSON-able; NaN / inf are written as null
    report.write(out_dir)     # report.md, report.html, results.json, figures/*.png, atomically

Figures are drawn into `report.figures_dir` (a temp folder) before `write` moves the whole
report into place, so an interrupted evaluation leaves no half-written report.
"""

from __future__ import annotations

import html
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmtok.files import replace_directory, write_json

FIGURES = "figures"


def format_cell(value: Any) -> str:
    """Numbers with a precision that suits their size; everything else as `str`."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:,.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}" if magnitude >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class Figure:
    name: str          # file name under figures/
    caption: str


@dataclass
class Section:
    title: str
    blocks: list[str | Table | Figure] = field(default_factory=list)

    def text(self, markdown: str) -> Section:
        """A paragraph (Markdown inline syntax: `code`, **bold**, [links](x))."""
        self.blocks.append(markdown)
        return self

    def table(self, columns: list[str], rows: list[list[Any]], caption: str = "") -> Section:
        self.blocks.append(Table(list(columns), [list(r) for r in rows], caption))
        return self

    def figure(self, path: str | Path, caption: str) -> Section:
        """A PNG already written to `path` (a file under `Report.figures_dir`)."""
        self.blocks.append(Figure(Path(path).name, caption))
        return self


class Report:
    def __init__(self, title: str, command: str = ""):
        self.title, self.command = title, command
        self.sections: list[Section] = []
        self.results: dict[str, Any] = {}
        self._tmp = Path(tempfile.mkdtemp(prefix="mmtok-report-"))
        self.figures_dir = self._tmp / FIGURES
        self.figures_dir.mkdir()

    def section(self, title: str) -> Section:
        self.sections.append(Section(title))
        return self.sections[-1]

    def figure_path(self, name: str) -> Path:
        """Where to draw the figure called `name` (e.g. "rd.png")."""
        return self.figures_dir / name

    def markdown(self) -> str:
        lines = [f"# {self.title}", ""]
        if self.command:
            lines += ["```sh", self.command, "```", ""]
        for section in self.sections:
            lines += [f"## {section.title}", ""]
            for block in section.blocks:
                if isinstance(block, Table):
                    if block.caption:
                        lines += [f"*{block.caption}*", ""]
                    lines.append("| " + " | ".join(block.columns) + " |")
                    lines.append("|" + "|".join("---" for _ in block.columns) + "|")
                    lines += ["| " + " | ".join(format_cell(v) for v in row) + " |" for row in block.rows]
                elif isinstance(block, Figure):
                    lines.append(f"![{block.caption}]({FIGURES}/{block.name})")
                    lines.append(f"*{block.caption}*")
                else:
                    lines.append(block)
                lines.append("")
        return "\n".join(lines)

    def html(self) -> str:
        out = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
            "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
            "img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption,caption{color:#555;"
            "font-size:.9em;text-align:left}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}</style>",
            f"</head><body><h1>{html.escape(self.title)}</h1>",
        ]
        if self.command:
            out.append(f"<pre>{html.escape(self.command)}</pre>")
        for section in self.sections:
            out.append(f"<h2>{html.escape(section.title)}</h2>")
            for block in section.blocks:
                if isinstance(block, Table):
                    out.append("<table>")
                    if block.caption:
                        out.append(f"<caption>{html.escape(block.caption)}</caption>")
                    out.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in block.columns) + "</tr>")
                    for row in block.rows:
                        out.append("<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>")
                    out.append("</table>")
                elif isinstance(block, Figure):
                    src = html.escape(f"{FIGURES}/{block.name}")
                    out.append(f"<figure><a href='{src}'><img src='{src}' alt='{html.escape(block.caption)}'></a>"
                               f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
                else:
                    out.append(f"<p>{_inline_html(block)}</p>")
        out.append("</body></html>")
        return "\n".join(out)

    def write(self, out_dir: str | Path) -> Path:
        """Write report.md, report.html, results.json and figures/ into `out_dir`, replacing a
        previous report there whole."""
        missing = [b.name for s in self.sections for b in s.blocks
                   if isinstance(b, Figure) and not (self.figures_dir / b.name).is_file()]
        if missing:
            raise FileNotFoundError(f"figures referenced but not drawn: {missing}")

        def fill(tmp: Path) -> None:
            shutil.copytree(self.figures_dir, tmp / FIGURES)
            (tmp / "report.md").write_text(self.markdown())
            (tmp / "report.html").write_text(self.html())
            write_json(tmp / "results.json", json_safe(self.results))

        return replace_directory(Path(out_dir), fill, merge=False)

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Report:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def json_safe(value: Any) -> Any:
    """`value` with NaN / infinite floats (metrics an item has no value for) as None: strict
    JSON, which browsers and other languages parse."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _inline_html(markdown: str) -> str:
    """The few inline Markdown forms reports use: `code`, **bold**, [text](url)."""
    import re

    text = html.escape(markdown)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"<a href='\2'>\1</a>", text)
