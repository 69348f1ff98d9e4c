"""Surface metrics of `dice eval` against plastimatch, SimpleITK, MONAI 1.6 and medpy 0.5.2 on
one pair, in the same run, with the values checked where the definitions agree.

    cargo build --release -p dice-cli
    cargo run --release --example organ_pair -- 256 /tmp/organs --network-like
    PY=~/.cache/dice/torch-2.13.0/bin/python   # the README's LibTorch venv, with MONAI and scipy
    $PY -m pip install --no-deps nibabel==5.4.2 SimpleITK==2.5.7 medpy==0.5.2
    apt-get install plastimatch
    OMP_NUM_THREADS=1 $PY benches/surface_peers.py target/release/dice \\
        /tmp/organs/pred_net_256.nii.gz /tmp/organs/gt_256.nii.gz [--skip medpy,...]

The task, for every label 1..8: Hausdorff distance, HD95, ASSD (and NSD at 1 mm where the peer
has it). `dice eval` is timed as a whole process (reading and decoding both files, every
metric); the Python peers from arrays already in memory (reading is not counted for them, which
favours them); plastimatch as one process per label on binary masks written beforehand (the
masks are not counted), with `plastimatch dice --hausdorff`. Prints each time, the ratio to
`dice eval`'s, the CPU model, and a Markdown table (`--markdown FILE` writes it too).

Values: MONAI computes in float32 (checked to 1e-5 relative); medpy's HD and ASSD to 1e-9
(its hd95 pools both directions, a different definition); SimpleITK's recipe (label contours
sampled in Maurer distance maps) and plastimatch measure between their own boundary
definitions: their largest difference is printed, not asserted.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import nibabel as nib
import numpy as np

LABELS = range(1, 9)


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def timed(f):
    t = time.perf_counter()
    v = f()
    return v, time.perf_counter() - t


def run_dice(dice, pf, gf):
    out = subprocess.run(
        [dice, "eval", pf, gf, "--metrics", "dice,hd,hd95,assd,nsd", "--tolerance", "1",
         "--threads", "1", "--format", "json"], capture_output=True, text=True, check=True)
    return {r["label"]: r for r in json.loads(out.stdout)["cases"][0]["labels"]}


def run_monai(p, g, spacing):
    import torch
    from monai.metrics import (compute_average_surface_distance, compute_hausdorff_distance,
                               compute_surface_dice)
    out = {}
    for l in LABELS:
        yp = torch.from_numpy((p == l)[None, None].astype(np.float32))
        yg = torch.from_numpy((g == l)[None, None].astype(np.float32))
        kw = dict(include_background=True, spacing=list(spacing))
        out[l] = dict(
            hd=float(compute_hausdorff_distance(yp, yg, **kw)),
            hd95=float(compute_hausdorff_distance(yp, yg, percentile=95, **kw)),
            assd=float(compute_average_surface_distance(yp, yg, symmetric=True, **kw)),
            nsd=float(compute_surface_dice(yp, yg, class_thresholds=[1.0], **kw)),
        )
    return out


def run_medpy(p, g, spacing):
    import medpy.metric.binary as mb
    out = {}
    for l in LABELS:
        a, b = p == l, g == l
        out[l] = dict(hd=mb.hd(a, b, spacing), hd95=mb.hd95(a, b, spacing), assd=mb.assd(a, b, spacing))
    return out


def run_sitk(p, g, spacing):
    """The usual SimpleITK recipe: HausdorffDistanceImageFilter for HD; each mask's label contour
    sampled in the other's absolute signed Maurer distance map for HD95 and ASSD."""
    import SimpleITK as sitk

    def image(m):
        im = sitk.GetImageFromArray(m.astype(np.uint8).transpose(2, 1, 0).copy())
        im.SetSpacing(tuple(float(s) for s in spacing))
        return im

    out = {}
    for l in LABELS:
        a, b = image(p == l), image(g == l)
        hd = sitk.HausdorffDistanceImageFilter()
        hd.Execute(a, b)
        dists = []
        for x, y in ((a, b), (b, a)):
            dmap = sitk.Abs(sitk.SignedMaurerDistanceMap(y, squaredDistance=False, useImageSpacing=True))
            contour = sitk.GetArrayViewFromImage(sitk.LabelContour(x)) > 0
            dists.append(sitk.GetArrayViewFromImage(dmap)[contour])
        out[l] = dict(
            hd=hd.GetHausdorffDistance(),
            hd95=max(np.percentile(d, 95) for d in dists),
            assd=float(np.concatenate(dists).mean()),
        )
    return out


def plastimatch_masks(p, g, affine, tmp):
    paths = {}
    for l in LABELS:
        for name, m in (("p", p), ("g", g)):
            path = os.path.join(tmp, f"{name}{l}.nii")
            nib.save(nib.Nifti1Image((m == l).astype(np.uint8), affine), path)
            paths[name, l] = path
    return paths


def run_plastimatch(paths):
    out = {}
    for l in LABELS:
        r = subprocess.run(["plastimatch", "dice", "--hausdorff", paths["g", l], paths["p", l]],
                           capture_output=True, text=True, check=True).stdout
        vals = {}
        for line in r.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                try:
                    vals[k.strip()] = float(v.split()[0])
                except (ValueError, IndexError):
                    pass
        # Its "(boundary)" figures are between surfaces, as ours; the others between voxel sets.
        out[l] = dict(hd=vals.get("Hausdorff distance (boundary)"),
                      hd95=vals.get("Percent (0.95) Hausdorff distance (boundary)"),
                      assd=vals.get("Avg average Hausdorff distance (boundary)"))
    return out


def worst(ours, theirs, keys):
    w = 0.0
    for l in LABELS:
        for k in keys:
            want = theirs[l].get(k)
            if want is None or not np.isfinite(want):
                continue
            w = max(w, abs(ours[l][k] - want) / max(abs(want), 1.0))
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dice")
    ap.add_argument("pred")
    ap.add_argument("gt")
    ap.add_argument("--skip", default="", help="peers to leave out: plastimatch,sitk,monai,medpy")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    pi, gi = nib.load(a.pred), nib.load(a.gt)
    p, g = np.asarray(pi.dataobj), np.asarray(gi.dataobj)
    spacing = tuple(float(s) for s in gi.header.get_zooms()[:3])
    ours, t_dice = timed(lambda: run_dice(a.dice, a.pred, a.gt))
    rows = []
    peers = [
        ("plastimatch (C++, `plastimatch dice --hausdorff` per label)", "plastimatch", None, ()),
        ("SimpleITK recipe (Hausdorff filter + Maurer maps)", "sitk", run_sitk, ()),
        ("MONAI 1.6.1 (`compute_hausdorff_distance` ×2, ASSD, NSD)", "monai", run_monai, ("hd", "hd95", "assd", "nsd")),
        ("medpy 0.5.2 (`hd`, `hd95`, `assd`)", "medpy", run_medpy, ("hd", "assd")),
    ]
    for label, key, fn, checked in peers:
        if key in skip:
            continue
        if key == "plastimatch":
            with tempfile.TemporaryDirectory() as tmp:
                paths = plastimatch_masks(p, g, gi.affine, tmp)
                theirs, t = timed(lambda: run_plastimatch(paths))
        else:
            theirs, t = timed(lambda: fn(p, g, spacing))
        w = worst(ours, theirs, checked or ("hd", "hd95", "assd"))
        if checked:
            tol = 1e-5 if key == "monai" else 1e-9
            assert w <= tol, f"{key}: values differ from dice eval's by {w:.2e} (relative)"
        rows.append((label, t, t / t_dice, w, bool(checked)))
    head = (f"{os.path.basename(a.pred)} against {os.path.basename(a.gt)}, {p.shape}, labels 1–8, "
            f"spacing {spacing}; {cpu()}; one thread")
    lines = [head, "", "| tool | time | dice eval is | values |", "|---|---|---|---|",
             f"| `dice eval --metrics dice,hd,hd95,assd,nsd --threads 1` (whole process) | {t_dice:.2f} s | — | — |"]
    for label, t, r, w, checked in rows:
        what = f"equal to {w:.0e}" if checked else f"differ up to {w:.0%} (other definitions)"
        lines.append(f"| {label} | {t:.2f} s | **{r:.0f}×** faster | {what} |")
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        open(a.markdown, "w").write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
