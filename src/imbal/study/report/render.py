"""One list of report blocks, rendered to Markdown and to self-contained HTML."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Block:
    kind: str  # "h1", "h2", "h3", "p", "table", "image", "note"
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    bold: set = field(default_factory=set)  # (row, col) cells to mark as best
    path: Path | None = None


def _image(b: Block) -> Path:
    if b.path is None:
        raise ValueError(f"image block {b.text!r} has no path")
    return b.path


def to_markdown(blocks: list[Block], base: Path) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "note":
            out.append("> " + b.text)
        elif b.kind == "table":
            out.append("| " + " | ".join(b.header) + " |")
            out.append("|" + "---|" * len(b.header))
            for i, row in enumerate(b.rows):
                cells = [f"**{c}**" if (i, j) in b.bold else c for j, c in enumerate(row)]
                out.append("| " + " | ".join(cells) + " |")
        elif b.kind == "image":
            out.append(f"![{b.text}]({_image(b).relative_to(base).as_posix()})")
        out.append("")
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2330;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em}
th,td{border:1px solid #c9ced8;padding:.3em .6em;text-align:right}
th{background:#eef1f6}
td:first-child,th:first-child{text-align:left}
td.best{font-weight:700;background:#e3f4e1}
.note{border-left:4px solid #d9822b;background:#fff6ec;padding:.5em .8em}
img{max-width:100%;border:1px solid #e3e6ec;margin:.4em 0 1em}
h1{border-bottom:2px solid #1d2330}
h2{margin-top:2em;border-bottom:1px solid #c9ced8}
"""


def to_html(blocks: list[Block], title: str) -> str:
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>"
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "note":
            parts.append(f"<p class='note'>{html.escape(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = []
            for i, row in enumerate(b.rows):
                cells = "".join(
                    f"<td class='best'>{html.escape(c)}</td>"
                    if (i, j) in b.bold
                    else f"<td>{html.escape(c)}</td>"
                    for j, c in enumerate(row)
                )
                body.append(f"<tr>{cells}</tr>")
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        elif b.kind == "image":
            data = base64.b64encode(_image(b).read_bytes()).decode()
            parts.append(
                f"<figure><img alt='{html.escape(b.text)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)
