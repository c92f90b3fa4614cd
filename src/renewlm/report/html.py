"""The page around the sections: one HTML file with its style inline, no script and no external
resource, so it opens from disk anywhere, offline, and prints as it shows."""

from __future__ import annotations

from html import escape

STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a202c;
       margin: 0 auto; padding: 0 24px 48px; max-width: 1180px; background: #fff; }
header { border-bottom: 2px solid #2b6cb0; padding: 18px 0 10px; margin-bottom: 8px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 30px 0 8px; padding-top: 8px; border-top: 1px solid #e2e8f0; }
h3 { font-size: 15px; margin: 20px 0 6px; }
nav a { margin-right: 14px; color: #2b6cb0; text-decoration: none; }
.meta { color: #4a5568; margin: 0 0 6px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }
th, td { border: 1px solid #e2e8f0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f7fafc; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.trunk td { color: #8a94a6; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption, .caption { color: #4a5568; font-size: 12.5px; margin-top: 4px; }
.empty { background: #f7fafc; border-left: 4px solid #a0aec0; padding: 8px 12px; color: #2d3748; }
.note { color: #975a16; font-size: 12.5px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12.5px; }
code { background: #edf2f7; padding: 0 3px; border-radius: 3px; }
pre { background: #f7fafc; border: 1px solid #e2e8f0; padding: 8px 10px; overflow-x: auto; }
svg.graph { display: block; margin: 6px 0 10px; }
"""


def page(title: str, intro: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: `sections` are (id, heading, body HTML)."""
    nav = "".join(f'<a href="#{escape(sid)}">{escape(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(f'<section id="{escape(sid)}"><h2>{escape(heading)}</h2>{html}</section>' for sid, heading, html in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><header><h1>{escape(title)}</h1>{intro}<nav>{nav}</nav></header>{body}</body></html>\n"
    )


def table(headers: list[str], rows: list[list], *, numeric: set[int] = frozenset(), row_classes: list[str] | None = None) -> str:
    """A table of already-formatted cells, each escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    num = ' class="num"'
    lines = []
    for i, cells in enumerate(rows):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        tds = "".join(
            f'<td{num if j in numeric else ""}>{escape(str(cell))}</td>'
            for j, cell in enumerate(cells)
        )
        lines.append(f"<tr{css}>{tds}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(lines)}</tbody></table></div>'


def figure(src: str, alt: str, caption: str = "", width: int | None = None) -> str:
    """An image with its caption (HTML); `width` in CSS pixels for an image drawn at a higher DPI."""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    size = f' width="{width}"' if width else ""
    return f'<figure><img src="{src}" alt="{escape(alt)}"{size}>{cap}</figure>'


def empty(text: str) -> str:
    """What a section says when the store has nothing for it yet: what to run to fill it."""
    return f'<p class="empty">{text}</p>'


def paragraph(text: str, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<p{attribute}>{text}</p>"


def code(text: str) -> str:
    return f"<code>{escape(text)}</code>"
