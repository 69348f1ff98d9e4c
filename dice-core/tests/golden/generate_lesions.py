#!/usr/bin/env python3
"""Lesion-wise golden values from the official BraTS 2023 metrics code, and IoU matching from
panoptica, on shared synthetic cases.

BraTS: `metrics.py` of github.com/rachitsaluja/BraTS-2023-Metrics (commit 43c9052), its
`get_LesionWiseScores` per region, aggregated exactly as its `get_LesionWiseResults` does
(that function itself needs pandas < 2 for DataFrame.append, so its aggregation is repeated
here line for line). Needs nibabel, scipy, cc3d (connected-components-3d), pandas.

    git clone https://github.com/rachitsaluja/BraTS-2023-Metrics /tmp/brats
    BRATS_METRICS=/tmp/brats python dice-core/tests/golden/generate_lesions.py \
        > dice-core/tests/golden/lesions_fixtures.rs

Volumes are [x, y, z] arrays (nibabel's order) written x fastest, dice-core's order.
"""
import math
import os
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
import numpy as np
import nibabel as nib
from scipy import ndimage

# The official code predates NumPy 2 (np.Inf); give it the old name, nothing else changes.
np.Inf = np.inf
sys.path.insert(0, os.environ.get("BRATS_METRICS", "/tmp/brats"))
import metrics as brats  # noqa: E402

rng = np.random.default_rng(20261128)
NX, NY, NZ = 40, 36, 28
SPACING = (1.0, 1.2, 0.9)
out = []


def emit(name, values, ty="f64"):
    arr = np.asarray(values).ravel(order="F") if np.asarray(values).ndim == 3 else np.asarray(values).ravel()
    if ty == "f64":
        body = ", ".join(repr(float(v)) for v in arr)
    else:
        body = ", ".join(str(int(v)) for v in arr)
    out.append(f"pub const {name}: [{ty}; {arr.size}] = [{body}];")


def ball(shape, centre, radius):
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius**2


def case(seed):
    """A BraTS-like label map pair: tumours with core (1), oedema (2), enhancing (3), small
    lesions under the volume threshold, lesions close enough to merge under dilation, false
    positives, one predicted blob spanning two lesions."""
    r = np.random.default_rng(seed)
    shape = (NX, NY, NZ)
    gt = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    for _ in range(4):
        c = r.integers([6, 6, 6], [NX - 6, NY - 6, NZ - 6])
        rad = r.uniform(1.5, 6.0)
        gt[ball(shape, c, rad + 1.5)] = 2
        gt[ball(shape, c, rad)] = 1
        gt[ball(shape, c + r.integers(-1, 2, 3), rad * 0.6)] = 3
        if r.random() < 0.8:  # detected, shifted and resized
            cp = c + r.integers(-2, 3, 3)
            rp = max(1.0, rad + r.uniform(-1.5, 1.5))
            pred[ball(shape, cp, rp + 1.5)] = 2
            pred[ball(shape, cp, rp)] = 1
            pred[ball(shape, cp, rp * 0.5)] = 3
    for _ in range(2):  # false positives
        c = r.integers([3, 3, 3], [NX - 3, NY - 3, NZ - 3])
        pred[ball(shape, c, r.uniform(1.0, 2.5)) & (gt == 0)] = r.integers(1, 4)
    # Two small nearby reference lesions (merged by dilation 3) and one predicted bridge.
    gt[5:7, 30:32, 3:5] = 3
    gt[9:11, 30:32, 3:5] = 3
    pred[5:11, 30:32, 3:5] = 3
    return pred, gt


def brats_region(pred_path, gt_path, region, dilation, thresh):
    tp, fn, fp, gt_tp, pairs, full_dice, full_hd95, full_gt_vol, full_pred_vol, sens, spec = \
        brats.get_LesionWiseScores(pred_path, gt_path, region, dilation)
    rows = sorted(pairs, key=lambda p: p[1])
    lens = [len(p[0]) for p in rows]
    fn_sub = sum(1 for p, n in zip(rows, lens) if n == 0 and p[2] <= thresh)
    gt_tp_sub = sum(1 for p, n in zip(rows, lens) if n != 0 and p[2] <= thresh)
    kept = [(p[3], 374.0 if np.isinf(p[4]) else p[4]) for p in rows if p[2] > thresh]
    try:
        lw_dice = sum(d for d, _ in kept) / (len(kept) + len(fp))
    except ZeroDivisionError:
        lw_dice = float("nan")
    try:
        lw_hd = (sum(h for _, h in kept) + len(fp) * 374) / (len(kept) + len(fp))
    except ZeroDivisionError:
        lw_hd = float("nan")
    if math.isnan(lw_dice):
        lw_dice = 1
    if math.isnan(lw_hd):
        lw_hd = 0
    summary = [len(gt_tp) - gt_tp_sub, len(fp), len(fn) - fn_sub, lw_dice, lw_hd, full_dice]
    lesions = [[p[1], p[2], p[3], 374.0 if np.isinf(p[4]) else p[4], len(p[0])] for p in rows]
    return summary, lesions


tmp = tempfile.mkdtemp()
cases = [case(s) for s in (1, 2, 3)]
emit("NX", [NX], "usize")
emit("NY", [NY], "usize")
emit("NZ", [NZ], "usize")
emit("SPACING", SPACING)
def rle(vol):
    """(value, run) pairs of the x-fastest voxel sequence: the volumes stay small in the file."""
    flat = np.asarray(vol).ravel(order="F")
    pairs, start = [], 0
    for i in range(1, flat.size + 1):
        if i == flat.size or flat[i] != flat[start]:
            pairs += [int(flat[start]), i - start]
            start = i
    return pairs


for k, (pred, gt) in enumerate(cases):
    emit(f"PRED_{k}", rle(pred), "u32")
    emit(f"GT_{k}", rle(gt), "u32")
    aff = np.diag([*SPACING, 1.0])
    pp, gp = os.path.join(tmp, f"p{k}.nii.gz"), os.path.join(tmp, f"g{k}.nii.gz")
    nib.save(nib.Nifti1Image(pred.astype(np.float32), aff), pp)
    nib.save(nib.Nifti1Image(gt.astype(np.float32), aff), gp)
    for challenge, (dil, thresh) in {"GLI": (3, 50), "MET": (1, 2)}.items():
        for region in ("WT", "TC", "ET"):
            summary, lesions = brats_region(pp, gp, region, dil, thresh)
            emit(f"BRATS_{challenge}_{k}_{region}", summary)
            emit(f"LESIONS_{challenge}_{k}_{region}", np.asarray(lesions, dtype=float).ravel() if lesions else [])

# panoptica: IoU matching (threshold 0.5) of the whole-tumour components, 26-connectivity.
import contextlib
import io

try:
    banner = io.StringIO()  # panoptica prints a banner on stdout
    with contextlib.redirect_stdout(banner):
        from panoptica import InputType, Panoptica_Evaluator, ConnectedComponentsInstanceApproximator, NaiveThresholdMatching
        from panoptica.utils.constants import CCABackend

    for k, (pred, gt) in enumerate(cases):
        ev = Panoptica_Evaluator(
            expected_input=InputType.SEMANTIC,
            instance_approximator=ConnectedComponentsInstanceApproximator(cca_backend=CCABackend.cc3d),
            instance_matcher=NaiveThresholdMatching(),
        )
        with contextlib.redirect_stdout(banner):
            res = ev.evaluate((pred > 0).astype(np.uint8), (gt > 0).astype(np.uint8), verbose=False)
        r = res["ungrouped"] if isinstance(res, dict) else res
        r = r[0] if isinstance(r, tuple) else r
        emit(f"PANOPTICA_{k}", [r.tp, r.fp, r.fn, r.pq, r.sq, r.rq])
    panoptica_version = __import__("panoptica").__version__ if hasattr(__import__("panoptica"), "__version__") else "2.1.7"
except ImportError:
    panoptica_version = None

print("// Generated by dice-core/tests/golden/generate_lesions.py; do not edit.")
print(f"// BraTS-2023-Metrics 43c9052, numpy {np.__version__}, nibabel {nib.__version__}"
      + (f", panoptica {panoptica_version}" if panoptica_version else ", panoptica absent") + ".")
print("#![allow(dead_code, clippy::excessive_precision, clippy::approx_constant)]")
print("\n".join(out))
