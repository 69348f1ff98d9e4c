#!/usr/bin/env python3
"""exactdice's DiceCELoss and DiceFocalLoss (the default composed path: dice-core's Dice term
and torch's voxel term; and fused=True, dice-core's fused kernel) beside MONAI 1.6.1's in one
process, interleaved (MONAI, exactdice, exactdice fused, …), forward + backward on logits [2, 4, 128³] float32
with a label map, median of 7 rounds, at one thread and at torch's default thread count; the
values and gradients of the two are compared first.

    scripts/with-torch.sh python benches/python_compound.py      # after pip install ./dice-py
"""

import statistics
import time

import torch
import monai.losses as ml

import exactdice.torch as ed


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 128, 128, 128, generator=g)
    y = torch.randint(0, 4, (2, 1, 128, 128, 128), generator=g)
    cases = [
        (f"DiceCELoss(softmax, to_onehot_y{', fused' if f else ''})", ed.DiceCELoss(softmax=True, to_onehot_y=True, fused=f), ml.DiceCELoss(softmax=True, to_onehot_y=True))
        for f in (False, True)
    ] + [
        (f"DiceFocalLoss(softmax, to_onehot_y{', fused' if f else ''})", ed.DiceFocalLoss(softmax=True, to_onehot_y=True, fused=f), ml.DiceFocalLoss(softmax=True, to_onehot_y=True))
        for f in (False, True)
    ]
    default_threads = torch.get_num_threads()
    print(f"CPU: {cpu_model()}; torch {torch.__version__}; [2, 4, 128³] float32, fwd+bwd, median of 7, interleaved")
    for name, ours, theirs in cases:
        def step(loss):
            a = x.detach().requires_grad_(True)
            v = loss(a, y)
            v.backward()
            return v.detach(), a.grad

        (va, ga), (vb, gb) = step(ours), step(theirs)
        dv = abs(float(va) - float(vb))
        dg = float((ga - gb).abs().max())
        for threads in sorted({1, default_threads}):
            torch.set_num_threads(threads)
            t = {"exactdice": [], "monai": []}
            for _ in range(7):
                for who, loss in (("monai", theirs), ("exactdice", ours)):
                    s = time.perf_counter()
                    step(loss)
                    t[who].append(time.perf_counter() - s)
            me, mm = statistics.median(t["exactdice"]), statistics.median(t["monai"])
            print(f"{name}, {threads} thread(s): exactdice {me * 1e3:.1f} ms, MONAI {mm * 1e3:.1f} ms, "
                  f"{mm / me:.2f}x (|Δvalue| {dv:.1e}, max |Δgrad| {dg:.1e})")
        torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
