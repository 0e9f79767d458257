"""A self-contained HTML report: a table of recovered-vs-true scores and the figures (PNG).

The page needs no server and no network: open ``index.html`` in a browser. Figures are files
beside it (``figures/*.png``) referenced by relative paths. A small inline script records how many
images decoded (``data-images-loaded`` on ``<body>``), which the test suite reads from headless
Chromium.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from neuroana.io.atomic import atomic_path

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: right; }
th { background: #f4f4f4; } td.name { text-align: left; font-family: monospace; }
td.ok { color: #1a7f37; } td.bad { color: #cf222e; font-weight: bold; }
figure { display: inline-block; margin: 0.5rem; vertical-align: top; }
figure img { max-width: 32rem; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-total", String(imgs.length));
  document.body.setAttribute("data-images-loaded", String(ok));
});
"""


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def render_report(
    title: str,
    sections: Mapping[str, Mapping[str, Mapping]],
    figures: Mapping[str, Sequence[tuple[str, str]]],
    notes: Sequence[str] = (),
) -> str:
    """The report page as a string.

    Parameters
    ----------
    title : str
        Page title.
    sections : mapping
        Section name -> score name -> ``{"value", "expected", "ok"}`` (as the demo produces).
    figures : mapping
        Section name -> list of ``(relative PNG path, caption)``.
    notes : sequence of str
        Paragraphs shown under the title.

    Examples
    --------
    >>> page = render_report("demo", {"a": {"r": {"value": 0.9, "expected": 1.0, "ok": True}}}, {})
    >>> "<td class=\\"name\\">r</td>" in page
    True
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>",
        f"<script>{_SCRIPT}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [
        f"<pre>{html.escape(n)}</pre>" if "\n" in n else f"<p>{html.escape(n)}</p>" for n in notes
    ]
    # sections with figures only (such as an overview) come first, then the scored sections
    for name in list(dict.fromkeys([*(k for k in figures if k not in sections), *sections])):
        parts.append(f'<h2 id="{html.escape(name)}">{html.escape(name)}</h2>')
        rows = sections.get(name, {})
        if rows:
            parts.append(
                "<table><tr><th>score</th><th>recovered</th><th>true / target</th><th>ok</th></tr>"
            )
            for key, row in rows.items():
                ok = row.get("ok")
                cls = "" if ok is None else ("ok" if ok else "bad")
                mark = "" if ok is None else ("yes" if ok else "NO")
                parts.append(
                    f'<tr><td class="name">{html.escape(key)}</td><td>{_cell(row.get("value"))}</td>'
                    f'<td>{_cell(row.get("expected"))}</td><td class="{cls}">{mark}</td></tr>'
                )
            parts.append("</table>")
        for src, caption in figures.get(name, ()):
            parts.append(
                f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    out_dir: str | os.PathLike,
    title: str,
    sections: Mapping[str, Mapping[str, Mapping]],
    figures: Mapping[str, Sequence[tuple[str, str]]],
    notes: Sequence[str] = (),
) -> Path:
    """Write ``out_dir/index.html`` atomically and return its path (see :func:`render_report`).

    Figure paths are relative to ``out_dir``; a missing figure file raises ``FileNotFoundError``.
    """
    out = Path(out_dir)
    for name, figs in figures.items():
        for src, _ in figs:
            if not (out / src).is_file():
                raise FileNotFoundError(
                    f"report section {name!r}: figure {out / src} does not exist"
                )
    page = render_report(title, sections, figures, notes)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out / "index.html"
