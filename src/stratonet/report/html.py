"""HTML building blocks for the self-contained report: escaped tables, base64 images, sections, the page.

No external CSS, JavaScript, fonts or images: the page opens offline.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import pandas as pd

from stratonet.report.formats import fmt_column, fmt_value

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;color:#1d2430;background:#fff}
header{background:#1f3b57;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px 0;font-size:24px} header p{margin:0;opacity:.85;font-size:13px}
nav{background:#eef2f6;padding:8px 28px;font-size:13px;border-bottom:1px solid #d5dce3}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none} nav a:hover{text-decoration:underline}
main{padding:8px 28px 40px 28px;max-width:1400px}
section{border-bottom:1px solid #e3e7eb;padding:10px 0 18px 0}
h2{font-size:19px;color:#1f3b57;margin:14px 0 8px 0} h3{font-size:15px;margin:12px 0 6px 0}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 10px 0}
th,td{border:1px solid #d5dce3;padding:3px 8px;text-align:right} th{background:#f3f5f8}
td.t,th.t{text-align:left}
.banner{background:#b3261e;color:#fff;padding:14px 28px;font-size:16px;font-weight:600}
.banner ul{margin:6px 0 0 18px;font-weight:400;font-size:13px}
.notrun{color:#8a5a00;background:#fff6e0;border:1px solid #f0d9a0;padding:6px 10px;display:inline-block}
.figs{display:flex;flex-wrap:wrap;gap:14px} .figs>*{min-width:0;max-width:100%} figure{margin:0} figcaption{font-size:12px;color:#555}
img{max-width:100%;height:auto;border:1px solid #e3e7eb}
pre{background:#f6f8fa;border:1px solid #e3e7eb;padding:8px;font-size:12px;overflow-x:auto}
.muted{color:#666;font-size:12px}
.tbl{max-width:100%;overflow-x:auto} .why{color:#8a5a00;font-size:11px}
.warn{color:#7a1d12;background:#fdecea;border:1px solid #f3b8ae;padding:6px 10px;display:inline-block}
table.heat td{min-width:26px;text-align:center} table.heat th.rot{writing-mode:vertical-rl;transform:rotate(180deg);
white-space:nowrap;text-align:left;vertical-align:bottom;max-height:170px}
details>summary{cursor:pointer}
ul.warnlist{color:#7a1d12;background:#fdecea;border:1px solid #f3b8ae;padding:6px 10px 6px 28px;font-size:13px}
"""


def esc(x: object) -> str:
    """HTML-escape any value."""
    return html.escape(str(x), quote=True)


def fmt(v: object, digits: int = 3, kind: str = "num") -> str:
    """A value for display: numbers to ``digits`` significant digits (whole numbers as integers), NaN/None as an
    en dash; ``kind`` as :func:`stratonet.report.formats.fmt_value` (``"p"``, ``"sci"``, ``"int"``)."""
    return fmt_value(v, kind, digits)


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def table(df: pd.DataFrame, digits: int = 3, text_columns: int = 1, max_rows: int = 200,
          why: dict[str, str] | None = None, default_why: str = "not recorded") -> str:
    """An escaped HTML table in a box that scrolls sideways; the first ``text_columns`` columns are left-aligned.

    A missing value shows as "–" followed by its reason: ``why[column]`` or ``default_why``. A column named
    ``why:<col>`` in ``df`` gives a per-row reason for ``<col>`` and is not shown itself.
    """
    if df is None or df.empty:
        return not_run("no rows")
    d = df.head(max_rows)
    reasons = {c[4:]: c for c in d.columns if str(c).startswith("why:")}
    shown = [c for c in d.columns if not str(c).startswith("why:")]
    head = "".join(f'<th class="{"t" if i < text_columns else ""}">{esc(c)}</th>' for i, c in enumerate(shown))
    text_of = {c: fmt_column(d[c].tolist(), c, digits) for c in shown}
    body = []
    for j, (_, row) in enumerate(d.iterrows()):
        cells = []
        for i, c in enumerate(shown):
            v = row[c]
            if _missing(v):
                r = row[reasons[c]] if c in reasons and not _missing(row[reasons[c]]) else (why or {}).get(c,
                                                                                                    default_why)
                text = f'– <span class="why">{esc(r)}</span>'
            else:
                text = esc(text_of[c][j])
            cells.append(f'<td class="{"t" if i < text_columns else ""}">{text}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f'<p class="muted">{len(df) - max_rows} more rows in the CSV.</p>' if len(df) > max_rows else ""
    return f'<div class="tbl"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def png_bytes_tag(data: bytes, alt: str, width: int | None = None) -> str:
    """An <img> with the PNG embedded as base64."""
    b64 = base64.b64encode(data).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    return f'<img alt="{esc(alt)}"{w} src="data:image/png;base64,{b64}">'


def svg_figure(svg: bytes, caption: str, width: int | None = None) -> str:
    """A <figure> embedding SVG bytes as a data URI (no id clashes between figures, crisp at any zoom)."""
    b64 = base64.b64encode(svg).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    return (f'<figure><img alt="{esc(caption)}"{w} src="data:image/svg+xml;base64,{b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def figure(path: Path, caption: str, width: int | None = 560) -> str:
    """A <figure> embedding a PNG file; a 'not run' note when the file is missing or not a PNG."""
    p = Path(path)
    if not p.exists():
        return not_run(f"{caption}: figure not found")
    data = p.read_bytes()
    if not data.startswith(PNG_MAGIC):
        return not_run(f"{caption}: {p.name} is not a PNG")
    return f"<figure>{png_bytes_tag(data, caption, width)}<figcaption>{esc(caption)}</figcaption></figure>"


def figures(items: list[str]) -> str:
    """A wrapping row of figures."""
    return f'<div class="figs">{"".join(items)}</div>' if items else ""


def not_run(what: str = "not run") -> str:
    """The visible note for an absent part of the run."""
    return f'<p class="notrun">{esc(what)}</p>'


def section(sid: str, title: str, body: str) -> str:
    """A <section> with a stable id."""
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, banner: str, nav: list[tuple[str, str]], sections: list[str],
         extra_css: str = "") -> str:
    """The whole document."""
    links = "".join(f'<a href="#{esc(sid)}">{esc(t)}</a>' for sid, t in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{CSS}{extra_css}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>{banner}<nav>{links}</nav>"
        f"<main>{''.join(sections)}</main></body></html>\n"
    )
