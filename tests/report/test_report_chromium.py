"""The report as a person sees it: rendered by headless Chromium (Debian's `chromium`), every section is
in the DOM, every image decodes, and the console shows nothing (the page has no script of its own, so
any console line is a resource that failed to load or an error).

The check is a small script added to a copy of the report: on load it decodes every image (drawn on a
canvas, its pixels read back) and writes what it found into the DOM, which `--dump-dom` prints. A page built to fail shows the check can fail.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from renewlm.report import SECTIONS, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")

CHECK = """<script>
// Synchronous, in the load event (which waits for every image): --dump-dom prints the DOM right after it.
// Drawing an image onto a canvas and reading its pixels back forces a full decode of the PNG.
window.addEventListener("load", () => {
  const images = [...document.images];
  const decodes = (img) => {
    if (!img.complete || img.naturalWidth === 0) return false;
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    for (let k = 3; k < pixels.length; k += 4) if (pixels[k] > 0) return true;
    return false;
  };
  const out = document.createElement("pre");
  out.id = "render-check";
  out.textContent = JSON.stringify({
    images: images.length,
    failed: images.filter((img) => !decodes(img)).map((img) => img.alt),
    sections: [...document.querySelectorAll("section")].map((s) => s.id),
    svgs: [...document.querySelectorAll("svg")].filter((s) => s.getBoundingClientRect().height > 0).length,
  });
  document.body.appendChild(out);
});
</script>"""


def render(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """(what the check found, console lines) for `page` rendered by headless Chromium."""
    checked = tmp_path / f"checked-{page.name}"
    checked.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    found = re.search(r'<pre id="render-check">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"the check never ran; chromium said: {result.stderr[-2000:]}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")), console


def test_the_report_renders_in_chromium(report_store, tmp_path):
    out = write_report(report_store, tmp_path / "report.html")
    found, console = render(out, tmp_path)
    assert found["sections"] == [sid for sid, _, _ in SECTIONS]
    assert found["images"] == 16 and found["failed"] == []
    assert found["svgs"] == 1  # the version graph, laid out with a height
    assert console == []


def test_the_check_sees_a_broken_image_and_a_console_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><section id="a"></section><img alt="torn" src="data:image/png;base64,iVBORw0KGgoAAAA">'
                    '<img alt="away" src="missing.png"><script>console.error("boom")</script></body></html>')
    found, console = render(page, tmp_path)
    assert sorted(found["failed"]) == ["away", "torn"] and found["sections"] == ["a"]
    assert len(console) == 1 and '"boom"' in console[0]
