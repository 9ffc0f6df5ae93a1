"""Open a sweep report's index.html in headless Chromium: every image loads, the Pareto table is there."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SPACE = """\
workloads: [ds_cnn_kws]
axes:
  dataflow: [ws, os]
  rows: [4, 8, 16]
  cols: [4, 8, 16]
  weight_bits: [4, 8]
# the zoo network is INT8: its 8-bit weights run at 4 bits on the 4-bit points
clip_bits: true
constraints:
  max_pes: 128
"""

# appended to a copy of index.html: records, once the page has loaded, how many images decoded
CHECK = """
<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images-ok', String(ok));
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-pareto-rows',
    String(document.querySelectorAll('table.pareto tbody tr').length));
});
</script>
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _codesign(*args: str, cwd: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "codesign", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr


@pytest.mark.e2e
def test_report_opens_in_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium not found (Debian: apt-get install -y chromium)")
    (tmp_path / "space.yaml").write_text(SPACE)
    _codesign("sweep", "space.yaml", "-o", "results.parquet", "--workers", "1", "--no-progress", cwd=tmp_path)
    _codesign("report", "results.parquet", "-o", "report", cwd=tmp_path)
    report = tmp_path / "report"
    html = (report / "index.html").read_text()
    (report / "check.html").write_text(html.replace("</body>", CHECK + "</body>"))

    profile = tmp_path / "chromium-profile"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--allow-file-access-from-files", "--virtual-time-budget=15000"]
    url = (report / "check.html").as_uri()
    r = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    total = re.search(r'data-images-total="(\d+)"', dom)
    ok = re.search(r'data-images-ok="(\d+)"', dom)
    rows = re.search(r'data-pareto-rows="(\d+)"', dom)
    assert total and ok and rows, dom[:2000]
    # Pareto scatter + energy breakdown + per-layer latency + per-layer energy + roofline
    assert int(total.group(1)) == 5
    assert ok.group(1) == total.group(1), "an image failed to load"
    assert int(rows.group(1)) >= 1
    assert '<table id="pareto-ds_cnn_kws" class="pareto">' in dom

    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,2400", url],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and shot.read_bytes().startswith(b"\x89PNG"), r.stderr[-2000:]
