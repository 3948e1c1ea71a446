"""The report's per-example view at size: page weight and time to interactive in headless Debian chromium.

    .venv/bin/python benchmarks/report_drilldown.py [--sizes 1000x10,10000x10,20000x10]

For each size (test items x trials, two of them retrieving 4 chunks) a run folder is constructed with
made-up answers (benchmarks/report_page.py), its report rendered, and the page opened with the network
refused (a proxy that does not exist). Measured: report.html size, render time, page load, the moment
the drill-down finished its first draw (ms after navigation start: the page is interactive), and the
time one filter click and one column sort take, layout included. The budget is 10 MB and 2 s.
Prints a table; writes benchmarks/results/report_drilldown.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from report_page import Chromium, constructed_run  # noqa: E402

from reports import render_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MB, BUDGET_S = 10.0, 2.0
CLICK = """(function () {
  var root = document.getElementById("dd-root"), t = performance.now();
  document.getElementById("dd-disagree").click(); document.body.offsetHeight;
  var filter = performance.now() - t, matching = +root.dataset.matching;
  t = performance.now();
  document.querySelector(".dd-table th:last-child").click(); document.body.offsetHeight;
  return {filter_ms: filter, sort_ms: performance.now() - t, matching: matching};
})()"""


def _open(page: Path, profile: Path) -> dict:
    with Chromium(profile, proxy="http://127.0.0.1:9") as browser:  # nothing listens there: the network is refused
        load_s = browser.open(page.as_uri())
        shown = browser.js("[+document.getElementById('dd-root').dataset.readyMs, +document.getElementById('dd-root').dataset.matching,"
                           " document.querySelectorAll('.dd-table tbody tr').length]")
        return {"load_s": load_s, "interactive_ms": shown[0], "items_in_view": shown[1], "rows_drawn": shown[2], **browser.js(CLICK),
                "sampled": browser.js("JSON.parse(document.getElementById('dd-data').textContent).sampled")}


def measure(items: int, trials: int, work: Path, repeat: int) -> dict:
    """The page of a constructed run, opened `repeat` times in a fresh browser each: the median and the slowest."""
    run = constructed_run(work / f"run-{items}x{trials}", items, trials)
    began = time.perf_counter()
    page = render_report(run)
    render_s = time.perf_counter() - began
    opens = [_open(page, work / f"profile-{items}x{trials}-{k}") for k in range(repeat)]
    row = {"items": items, "trials": trials, "html_mb": round(page.stat().st_size / 1e6, 2), "render_s": round(render_s, 2),
           **{k: opens[0][k] for k in ("items_in_view", "rows_drawn", "matching", "sampled")}}
    for key in ("load_s", "interactive_ms", "filter_ms", "sort_ms"):
        values = [o[key] for o in opens]
        row[key], row[f"{key}_max"] = round(statistics.median(values), 2), round(max(values), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000x10,10000x10,20000x10", help="comma-separated ITEMSxTRIALS")
    parser.add_argument("--repeat", type=int, default=3, help="page opens per size (fresh browser each); median and max reported")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(items, trials, Path(tmp), args.repeat) for items, trials in sizes]
    header = ["items", "trials", "html_mb", "render_s", "load_s", "interactive_ms", "interactive_ms_max", "filter_ms", "filter_ms_max",
              "sort_ms", "items_in_view"]
    print(" ".join(f"{h:>18}" for h in header))
    for r in rows:
        print(" ".join(f"{r[h]!s:>18}" for h in header))
        if r["sampled"]:
            print(f"{'':>18} sampled: {r['sampled']}")
    def within(suffix: str) -> bool:
        return all(r["html_mb"] < BUDGET_MB and r[f"interactive_ms{suffix}"] < 1000 * BUDGET_S and r[f"filter_ms{suffix}"] < 1000 * BUDGET_S
                   for r in rows)

    ok = {"median": within(""), "slowest": within("_max")}
    print(f"budget ({BUDGET_MB:.0f} MB; interactive and a filter click under {BUDGET_S:.0f} s): median open "
          f"{'met' if ok['median'] else 'MISSED'}, slowest open {'met' if ok['slowest'] else 'MISSED'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    out = ROOT / "benchmarks" / "results" / "report_drilldown.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": {"platform": platform.platform(), "python": platform.python_version(),
                                           "cores": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 1)},
                               "budget": {"mb": BUDGET_MB, "s": BUDGET_S}, "met": ok, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
