"""Check a report in headless Chromium: console errors, section ids, and a non-blank screenshot.

Two independent error signals are combined:

* a copy of the page gets a tiny hook, first in ``<head>``, that records ``window`` errors (script errors and
  resources that fail to load, caught in the capture phase), ``console.error`` calls and images that did not decode;
  after load it writes them into the DOM, which ``--dump-dom`` returns;
* Chromium's own console log (``--enable-logging=stderr --v=0``) is parsed for ``CONSOLE`` lines at error level.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
]

HOOK = """<script id="stratonet-check">(function(){var E=[];window.__errs=E;
window.addEventListener('error',function(e){var t=e.target;
E.push(t&&t!==window&&t.tagName?('resource failed: '+t.tagName+' '+String(t.src||t.href||'').slice(0,80))
:('error: '+e.message));},true);
var ce=console.error;console.error=function(){E.push('console.error: '+Array.prototype.join.call(arguments,' '));
return ce.apply(console,arguments);};
window.addEventListener('load',function(){if(window.__stratonetAction)window.__stratonetAction();
setTimeout(function(){var im=document.images;
for(var i=0;i<im.length;i++){if(!(im[i].complete&&im[i].naturalWidth>0))E.push('image not decoded: '+(im[i].alt||i));}
var L={scrollWidth:document.documentElement.scrollWidth,clientWidth:document.documentElement.clientWidth,
height:document.documentElement.scrollHeight,boxes:{},painted:[]};
document.querySelectorAll('[id]').forEach(function(e){var r=e.getBoundingClientRect();
L.boxes[e.id]=[r.left+scrollX,r.top+scrollY,r.width,r.height];});
document.querySelectorAll('canvas[data-painted]').forEach(function(c){L.painted.push(+c.getAttribute('data-painted'));});
var q=document.createElement('pre');q.id='stratonet-layout';q.textContent=JSON.stringify(L);
var p=document.createElement('pre');p.id='stratonet-errors';p.textContent=JSON.stringify(E);
document.body.appendChild(q);document.body.appendChild(p);},300);});})();</script>"""

CONSOLE_LINE = re.compile(r":(ERROR|WARNING|INFO|VERBOSE\d*):[^\]]*CONSOLE[^\]]*\]\s*(.*)")


@dataclass
class PageCheck:
    """What Chromium saw."""

    errors: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    screenshot: Path | None = None
    screenshot_std: float = 0.0
    loaded: bool = False
    layout: dict = field(default_factory=dict)  # scrollWidth, clientWidth, height, boxes {id: [x, y, w, h]}, painted
    dom: str = ""
    region_std: dict[str, float] = field(default_factory=dict)  # element id -> pixel sd inside its box

    @property
    def horizontal_scroll(self) -> bool:
        """True when the page is wider than the window (it would scroll sideways)."""
        return self.layout.get("scrollWidth", 0) > self.layout.get("clientWidth", 0)


def find_chromium() -> str | None:
    """Path of a Chromium / Chrome executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def _run(binary: str, args: list[str], profile: Path, timeout: int) -> subprocess.CompletedProcess:
    cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def console_errors(stderr: str) -> list[str]:
    """Console messages that Chromium logged as errors (e.g. ``Uncaught ...``) in its stderr log."""
    out = []
    for line in stderr.splitlines():
        m = CONSOLE_LINE.search(line)
        if m and (m.group(1) == "ERROR" or "Uncaught" in m.group(2) or "Failed to load" in m.group(2)):
            out.append(m.group(2).strip())
    return out


def check_page(html_path: str | Path, screenshot: str | Path | None = None, binary: str | None = None,
               window: tuple[int, int] = (1280, 2400), timeout: int = 90, fragment: str = "",
               regions: tuple[str, ...] = (), full_page: bool = False, action: str = "") -> PageCheck:
    """Load a page in headless Chromium and report errors, element ids and screenshot pixel spread.

    Parameters
    ----------
    html_path : path
        The HTML file (left untouched; a hooked copy is loaded for the DOM check).
    screenshot : path, optional
        Where to write the PNG screenshot (default: a temporary file).
    fragment : str
        URL fragment for both loads, e.g. ``"well=B02"`` (the plate viewer opens that well, as a click would).
    regions : tuple of str
        Element ids whose screenshot pixels are measured (``region_std``); the screenshot is then as tall as the
        page (up to 16,000 px) so every region is in it.
    full_page : bool
        Screenshot the whole page height rather than ``window[1]``.
    action : str
        JavaScript run at the load event of the DOM check (e.g. a scripted click on a well); its effect is in
        ``dom`` and ``layout``. The screenshot load does not run it.
    """
    import numpy as np
    from PIL import Image

    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError("chromium not found")
    src = Path(html_path).resolve()
    result = PageCheck()
    with tempfile.TemporaryDirectory(prefix="stratonet-chromium-") as tmp:
        tmpd = Path(tmp)
        text = src.read_text(encoding="utf-8")
        hooked = tmpd / "hooked.html"
        hook = HOOK + (f"<script>window.__stratonetAction=function(){{{action}}};</script>" if action else "")
        hooked.write_text(text.replace("<head>", "<head>" + hook, 1) if "<head>" in text else hook + text,
                          encoding="utf-8")
        frag = f"#{fragment}" if fragment else ""
        dom = _run(binary, ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=8000",
                            f"--window-size={window[0]},{window[1]}", "--dump-dom", hooked.as_uri() + frag],
                   tmpd / "profile1", timeout)
        result.dom = dom.stdout
        lay = re.search(r'<pre id="stratonet-layout">(.*?)</pre>', dom.stdout, re.S)
        if lay:
            import html as _html

            result.layout = json.loads(_html.unescape(lay.group(1)))
        m = re.search(r'<pre id="stratonet-errors">(.*?)</pre>', dom.stdout, re.S)
        result.loaded = m is not None
        if m:
            import html as _html

            result.errors.extend(json.loads(_html.unescape(m.group(1))))
        else:
            result.errors.append("page did not finish loading (no error hook output in the DOM)")
        result.errors.extend(console_errors(dom.stderr))
        result.ids = set(re.findall(r'\sid="([^"]+)"', dom.stdout)) - {"stratonet-check", "stratonet-errors",
                                                                       "stratonet-layout"}

        shot = Path(screenshot) if screenshot else tmpd / "shot.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        height = window[1]
        if (regions or full_page) and result.layout.get("height"):
            height = int(min(16000, max(window[1], result.layout["height"])))
        _run(binary, [f"--window-size={window[0]},{height}", "--virtual-time-budget=8000",
                      f"--screenshot={shot.resolve()}", src.as_uri() + frag], tmpd / "profile2", timeout)
        if shot.exists():
            img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
            result.screenshot_std = float(img.std())
            for rid in regions:
                box = result.layout.get("boxes", {}).get(rid)
                if box and box[2] > 0 and box[3] > 0:
                    x, y, w, h = (int(round(v)) for v in box)
                    crop = img[max(0, y):y + h, max(0, x):x + w]
                    result.region_std[rid] = float(crop.std()) if crop.size else 0.0
            result.screenshot = shot if screenshot else None
        else:
            result.errors.append("no screenshot written")
    return result
