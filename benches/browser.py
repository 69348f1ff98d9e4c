#!/usr/bin/env python3
"""The browser evaluator's time on a pair, beside native `dice eval` in the same run.

    scripts/web.sh && cargo build --release -p dice-cli
    cargo run --release --example organ_pair -- 256 /tmp/organs --network-like
    python3 benches/browser.py /tmp/organs/pred_net_256.nii.gz /tmp/organs/gt_256.nii.gz \\
        [--site web] [--baseline-site OTHER_WEB_DIR] [--runs 5]

Each run opens `index.html?test=…` in a fresh headless Chromium (file://, as a user opening the
page from disk) with the pair embedded, and reads the time the page measured around its
`dice eval` call (`#status[data-ms]`: instantiating the wasm and evaluating dice, IoU, HD95 and
NSD at 1 mm; not the page load nor the overlay). The native figure is the whole `dice eval`
process with the same metrics. Prints medians (and the range), the CPU model and Chromium's
version; `--baseline-site` times another build of the page in the same run (an older commit's
`web/`, say), interleaved with this one.
"""
import argparse
import base64
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def page(site, pred, gt, tmp, tag):
    """A copy of the page with a test script embedding the pair; returns its index.html."""
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    for f in ("index.html", "app.js", "wasi.js", "dice-wasm.js"):
        shutil.copy(os.path.join(site, f), d)
    b64 = lambda p: base64.b64encode(open(p, "rb").read()).decode()
    with open(os.path.join(d, "t.js"), "w") as f:
        f.write(
            'var DICE_TEST = {pred: [{name: "%s", base64: "%s"}], ref: [{name: "%s", base64: "%s"}], '
            'tolerance: "1"};' % (os.path.basename(pred), b64(pred), os.path.basename(gt), b64(gt))
        )
    return os.path.join(d, "index.html")


def browser_ms(chromium, index):
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=600000",
         "--dump-dom", f"file://{index}?test=t.js"],
        capture_output=True, text=True, timeout=600,
    ).stdout
    if 'data-done="1"' not in out or "data-errors" in out:
        sys.exit(f"the page did not finish cleanly:\n{out[-2000:]}")
    return float(re.search(r'data-ms="([0-9.]+)"', out).group(1))


def native_ms(dice, pred, gt):
    t = time.perf_counter()
    subprocess.run([dice, "eval", pred, gt, "--metrics", "dice,iou,hd95,nsd", "--tolerance", "1"],
                   check=True, capture_output=True)
    return 1000 * (time.perf_counter() - t)


def summary(v):
    return f"{statistics.median(v):8.0f} ms  ({min(v):.0f}–{max(v):.0f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pred")
    ap.add_argument("gt")
    ap.add_argument("--site", default=os.path.join(ROOT, "web"))
    ap.add_argument("--baseline-site")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dice", default=os.path.join(ROOT, "target/release/dice"))
    ap.add_argument("--chromium", default=os.environ.get("DICE_CHROMIUM", "chromium"))
    a = ap.parse_args()
    version = subprocess.run([a.chromium, "--version"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        sites = {"this page": page(a.site, a.pred, a.gt, tmp, "this")}
        if a.baseline_site:
            sites["baseline page"] = page(a.baseline_site, a.pred, a.gt, tmp, "base")
        times = {k: [] for k in list(sites) + ["native dice eval"]}
        for _ in range(a.runs):
            for k, index in sites.items():
                times[k].append(browser_ms(a.chromium, index))
            times["native dice eval"].append(native_ms(a.dice, a.pred, a.gt))
    print(f"{os.path.basename(a.pred)} vs {os.path.basename(a.gt)}; {cpu()}; {version}; "
          f"median of {a.runs}, interleaved")
    for k, v in times.items():
        print(f"  {k:18} {summary(v)}")
    if a.baseline_site:
        r = statistics.median(times["baseline page"]) / statistics.median(times["this page"])
        print(f"  this page is {r:.1f}x faster than the baseline page")


if __name__ == "__main__":
    main()
