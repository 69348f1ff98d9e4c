#!/usr/bin/env python3
"""exactdice (dice-py) beside MONAI and medpy on the same tensors, one thread, in one run.

* DiceLoss(softmax=True, to_onehot_y=True) forward + backward on logits [2, 4, 128, 128, 128]
  float32 and a label map [2, 1, 128, 128, 128]: best time of several runs and the peak memory
  the call adds (VmHWM after resetting it through /proc/self/clear_refs, each implementation
  in its own process), with torch's default allocator and with THP_MEM_ALLOC_ENABLE=1 (huge
  pages for large buffers: fresh buffers' page faults are most of a pass over them);
* DiceMetric of two 8-label uint8 label maps of 256³ (MONAI needs one-hot inputs: its time
  includes the one-hot of both maps), and medpy's `dc` once per label;
* `import exactdice` time (a fresh interpreter, best of 5).

Run in the PyTorch venv (`scripts/with-torch.sh python benches/python_losses.py`) after
`pip install ./dice-py` (and `pip install --no-deps monai==1.6.1 medpy` for the peers).
"""

import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, os, sys, time
import torch
torch.set_num_threads(1)
which, what = sys.argv[1], sys.argv[2]

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    return 0

def best(f, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return min(times)

if what == "loss":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 128, 128, 128, generator=g)
    y = torch.randint(0, 4, (2, 1, 128, 128, 128), generator=g)
    if which == "exactdice":
        from exactdice.torch import DiceLoss
    else:
        from monai.losses import DiceLoss
    loss_fn = DiceLoss(softmax=True, to_onehot_y=True)
    def step():
        a = x.detach().requires_grad_(True)
        loss_fn(a, y).backward()
        return a.grad
    step()
    base = rss("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    step()
    peak = rss("VmHWM") - base
    t = best(step, 5)
    print(json.dumps({"time_s": t, "peak_bytes": peak}))
elif what == "metric":
    import numpy as np
    rng = np.random.default_rng(0)
    n = 256
    ref = np.zeros((n, n, n), np.uint8)
    zz, yy, xx = np.ogrid[:n, :n, :n]
    for label in range(1, 8):
        c = rng.uniform(0.25, 0.75, 3) * n
        r = rng.uniform(0.08, 0.2) * n
        ref[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r * r] = label
    pred = np.roll(ref, 3, axis=0)
    if which == "exactdice":
        from exactdice.torch import DiceMetric
        m = DiceMetric(num_classes=8)
        p, r = torch.from_numpy(pred)[None, None], torch.from_numpy(ref)[None, None]
        def run():
            m.reset(); m(p, r); return m.aggregate()
    elif which == "monai":
        from monai.metrics import DiceMetric
        from monai.networks.utils import one_hot
        m = DiceMetric()
        p, r = torch.from_numpy(pred)[None, None].long(), torch.from_numpy(ref)[None, None].long()
        def run():
            m.reset(); m(one_hot(p, 8), one_hot(r, 8)); return m.aggregate()
    else:
        from medpy.metric.binary import dc
        def run():
            return [dc(pred == l, ref == l) for l in range(8)]
    print(json.dumps({"time_s": best(run, 3), "value": float(np.mean(np.asarray(run() if which == 'medpy' else run(), dtype=float)))}))
"""


def child(which, what, thp=False):
    env = dict(os.environ)
    env.pop("THP_MEM_ALLOC_ENABLE", None)
    if thp:
        env["THP_MEM_ALLOC_ENABLE"] = "1"
    out = subprocess.run([sys.executable, "-c", CHILD, which, what], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU: {cpu}; one thread")
    for thp in (False, True):
        loss = {w: child(w, "loss", thp) for w in ("exactdice", "monai")}
        label = "THP_MEM_ALLOC_ENABLE=1" if thp else "torch's default allocator"
        for w, r in loss.items():
            print(f"DiceLoss fwd+bwd [2,4,128^3] f32, {label}, {w}: {r}")
        if all("time_s" in r for r in loss.values()):
            e, m = loss["exactdice"], loss["monai"]
            print(f"  speed-up {m['time_s'] / e['time_s']:.2f}x, peak memory {e['peak_bytes'] / m['peak_bytes']:.3f} of MONAI's")
    metric = {w: child(w, "metric") for w in ("exactdice", "monai", "medpy")}
    for w, r in metric.items():
        print(f"DiceMetric 8 labels uint8 256^3, {w}: {r}")
    e = metric["exactdice"].get("time_s")
    for w in ("monai", "medpy"):
        if e and "time_s" in metric[w]:
            print(f"  speed-up over {w}: {metric[w]['time_s'] / e:.1f}x")
    times = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t = time.perf_counter(); import exactdice; print(time.perf_counter() - t)"],
            capture_output=True, text=True, check=True)
        times.append(float(out.stdout))
    print(f"import exactdice: {min(times) * 1e3:.1f} ms (best of 5)")


if __name__ == "__main__":
    main()
