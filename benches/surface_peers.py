"""MONAI 1.6 and medpy 0.5.2 on the organ pair of benches/surface.rs, one thread, with their
values checked against `dice eval`'s on the same files.

    cargo run --release --example organ_pair -- 256 /tmp/organs
    OMP_NUM_THREADS=1 python benches/surface_peers.py target/release/dice /tmp/organs 256

(The LibTorch venv of the README with MONAI and medpy added: see
dice-core/tests/golden/generate_surface.py.)
"""
import json
import subprocess
import sys
import time

import numpy as np
import nibabel as nib
import torch
import medpy.metric.binary as mb
from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

torch.set_num_threads(1)
dice_bin, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
pf, gf = f"{d}/pred_{n}.nii.gz", f"{d}/gt_{n}.nii.gz"
p, g = np.asarray(nib.load(pf).dataobj), np.asarray(nib.load(gf).dataobj)

t = time.perf_counter()
out = subprocess.run([dice_bin, "eval", pf, gf, "--metrics", "dice,hd,hd95,assd,nsd", "--tolerance", "1", "--format", "json"], capture_output=True, text=True, check=True)
t_dice = time.perf_counter() - t
ours = {r["label"]: r for r in json.loads(out.stdout)["cases"][0]["labels"]}

labels = range(1, 9)
t = time.perf_counter()
monai = {}
for l in labels:
    yp = torch.from_numpy((p == l)[None, None].astype(np.float32))
    yg = torch.from_numpy((g == l)[None, None].astype(np.float32))
    monai[l] = (
        float(compute_hausdorff_distance(yp, yg, include_background=True)),
        float(compute_hausdorff_distance(yp, yg, include_background=True, percentile=95)),
        float(compute_average_surface_distance(yp, yg, include_background=True, symmetric=True)),
        float(compute_surface_dice(yp, yg, class_thresholds=[1.0], include_background=True)),
    )
t_monai = time.perf_counter() - t

t = time.perf_counter()
medpy = {}
for l in labels:
    a, b = p == l, g == l
    medpy[l] = (mb.dc(a, b), mb.hd(a, b), mb.hd95(a, b), mb.assd(a, b))
t_medpy = time.perf_counter() - t

worst = 0.0
for l in labels:
    o = ours[l]
    for got, want in [(o["hd"], monai[l][0]), (o["hd95"], monai[l][1]), (o["assd"], monai[l][2]), (o["nsd"], monai[l][3]), (o["hd"], medpy[l][1]), (o["assd"], medpy[l][3]), (o["dice"], medpy[l][0])]:
        worst = max(worst, abs(got - want) / max(abs(want), 1.0))
print(f"{n}^3, 8 labels: dice eval {t_dice:.3f} s (whole command: decode + all metrics), MONAI {t_monai:.2f} s ({t_monai / t_dice:.0f}x), medpy {t_medpy:.2f} s ({t_medpy / t_dice:.0f}x); largest relative difference of values {worst:.1e}")
