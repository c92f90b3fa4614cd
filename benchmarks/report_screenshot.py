"""How fast `renewlm report` renders a large store, and a screenshot of a report as a browser shows it.

Builds synthetic stores (version records, metrics.jsonl, evaluations.json and a sweep.json shaped as
renewlm writes them; renewlm/examples/synthetic.py, no training), times `build_report` on a store of
2·K + 5 versions (K releases of a path-switching series with their trunks, a continued branch, a
soup, an import), then renders a smaller store's report in headless Chromium (Debian's `chromium`)
and saves the screenshot. With `--store DIR` the screenshot is of that store instead (after
`renewlm demo`, say).

    python benchmarks/report_screenshot.py [--releases 23] [--repeats 3] [--shot docs/figures/report.png]
        [--shot-releases 3] [--store DIR [--versions V1,V2]] [--width 1280] [--height 2600]

Prints a table (versions, runs, seconds per report, MB) and writes benchmarks/results/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from renewlm.report import build_report, write_report
from renewlm.store import Store
from renewlm.examples.synthetic import add_synthetic

RESULTS = ROOT / "benchmarks" / "results"


def time_report(releases: int, repeats: int, folder: Path) -> dict:
    store = Store(folder / f"store-{releases}")
    names = add_synthetic(store, releases=releases)
    build_report(store)  # imports (torch, transformers, matplotlib) and caches out of the timing
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        document = build_report(store)
        seconds.append(time.perf_counter() - started)
    return {"versions": len(names), "runs": len(store.names("runs")), "seconds": seconds,
            "median_seconds": statistics.median(seconds), "megabytes": len(document.encode()) / 1e6}


def screenshot(store: Store, out: Path, width: int, height: int, folder: Path, versions: list[str] | None = None) -> Path:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("the screenshot needs Chromium: apt-get install chromium")
    page = write_report(store, folder / "report.html", versions)
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={folder / 'profile'}",
         f"--window-size={width},{height}", f"--screenshot={out.absolute()}", page.as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=23, help="releases of the timed store (2·K + 5 versions)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shot", type=Path, default=ROOT / "docs" / "figures" / "report.png")
    parser.add_argument("--shot-releases", type=int, default=3, help="releases of the store in the screenshot")
    parser.add_argument("--store", type=Path, help="screenshot this store's report instead of a synthetic one")
    parser.add_argument("--versions", help="with --store: only these versions (comma-separated), as `renewlm report --versions`")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="renewlm-report-bench-") as tmp:
        folder = Path(tmp)
        result = time_report(args.releases, args.repeats, folder)
        if args.store is not None:
            shown = Store(args.store)
        else:
            shown = Store(folder / "shot-store")
            add_synthetic(shown, releases=args.shot_releases)
        shot = screenshot(shown, args.shot, args.width, args.height, folder, args.versions.split(",") if args.versions else None)
    print(f"{'versions':>8} {'runs':>5} {'seconds (median)':>17} {'each':>24} {'MB':>6}")
    print(f"{result['versions']:>8} {result['runs']:>5} {result['median_seconds']:>17.2f} "
          f"{' '.join(f'{s:.2f}' for s in result['seconds']):>24} {result['megabytes']:>6.2f}")
    print(f"screenshot: {shot}")
    result.update(machine=platform.machine(), cpus=os.cpu_count(), python=platform.python_version(), screenshot=str(shot))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
