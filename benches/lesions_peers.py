#!/usr/bin/env python3
"""The peers of `benches/lesions.rs`, timed on the volumes that bench writes to /tmp:
cc3d's 26-connected components of the 512³ lesion mask, and the official BraTS 2023
metrics script (github.com/rachitsaluja/BraTS-2023-Metrics, `get_LesionWiseScores` for WT,
TC and ET) on the 240×240×155 case, whose numbers are printed beside ours.

Needs numpy, scipy, nibabel, pandas and cc3d (PyPI's connected-components-3d); point
BRATS_METRICS at a checkout of the official code. Run by `cargo bench --bench lesions` when
DICE_PEERS_PYTHON names this Python.
"""
import os
import sys
import tempfile
import time

import numpy as np

np.Inf = np.inf  # the official code predates NumPy 2
import cc3d
import nibabel as nib

m = np.load("/tmp/dice-bench-lesions-512.npy")
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    labels, n = cc3d.connected_components(m, connectivity=26, return_N=True)
    best = min(best, time.perf_counter() - t)
print(f"cc3d {cc3d.__version__ if hasattr(cc3d, '__version__') else ''} 26-connected, 512^3: "
      f"{best * 1e3:.1f} ms ({m.size / best / 1e9:.3f} Gvox/s), {n} components")

sys.path.insert(0, os.environ.get("BRATS_METRICS", "/tmp/brats"))
import metrics as brats  # noqa: E402

pred = np.load("/tmp/dice-bench-brats-pred.npy").transpose(2, 1, 0)  # to [x, y, z]
gt = np.load("/tmp/dice-bench-brats-gt.npy").transpose(2, 1, 0)
d = tempfile.mkdtemp()
pp, gp = os.path.join(d, "p.nii.gz"), os.path.join(d, "g.nii.gz")
nib.save(nib.Nifti1Image(pred, np.eye(4)), pp)
nib.save(nib.Nifti1Image(gt, np.eye(4)), gp)
t = time.perf_counter()
for region in ("WT", "TC", "ET"):
    tp, fn, fp, gt_tp, pairs, *_ = brats.get_LesionWiseScores(pp, gp, region, 3)
    kept = [(p[3], 374.0 if np.isinf(p[4]) else p[4]) for p in pairs if p[2] > 50]
    den = len(kept) + len(fp)
    dice = sum(x for x, _ in kept) / den if den else 1.0
    hd = (sum(h for _, h in kept) + len(fp) * 374) / den if den else 0.0
    tp_n = sum(1 for p in pairs if p[2] > 50 and len(p[0]) > 0)
    fn_n = sum(1 for p in pairs if p[2] > 50 and len(p[0]) == 0)
    print(f"official BraTS 2023 {region}: lesion-wise Dice {dice} HD95 {hd} TP {tp_n} FP {len(fp)} FN {fn_n}")
elapsed = time.perf_counter() - t
print(f"official BraTS 2023 script, three regions (NIfTI reads included): {elapsed:.2f} s")
