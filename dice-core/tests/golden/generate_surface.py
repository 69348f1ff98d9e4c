#!/usr/bin/env python3
"""Golden surface-distance values from the peers themselves, written as Rust constants to
surface_fixtures.rs for tests/golden_surface.rs.

medpy (hd, hd95, asd, assd), MONAI (compute_hausdorff_distance with and without percentile,
directed; compute_average_surface_distance symmetric and directed; compute_surface_dice
without subvoxels) and SimpleITK (HausdorffDistanceImageFilter) on the same masks: 2-D and 3-D,
isotropic and anisotropic spacing, single voxels, masks touching the image edge, a concave
shape, nested masks. Arrays are (x, y, z) with x fastest in the flattened fixtures.

DeepMind's surface-distance (surfels with areas: robust Hausdorff, average distances, surface
Dice) is imported from a checkout of github.com/google-deepmind/surface-distance (its PyPI
namesakes are repackagings), and MONAI's surface Dice is also computed with use_subvoxels=True.

Regenerate (the LibTorch venv of the README, with the peers added without touching torch):
    pip install --no-deps monai==1.6.1 && pip install medpy==0.5.2 SimpleITK==2.5.7 scipy==1.17.1
    DEEPMIND_SURFACE_DISTANCE=path/to/surface-distance \
        python dice-core/tests/golden/generate_surface.py > dice-core/tests/golden/surface_fixtures.rs
"""
import os
import sys
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.environ["DEEPMIND_SURFACE_DISTANCE"])
import surface_distance as deepmind  # noqa: E402

import medpy
import medpy.metric.binary as mb
import monai
import numpy as np
import SimpleITK as sitk
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)


def ellipsoid(shape, centre, radii):
    g = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (sum(((g[k] - centre[k]) / radii[k]) ** 2 for k in range(len(shape))) <= 1).astype(np.uint8)


def cases():
    out = []
    s2 = (12, 9)
    out.append(("discs_2d_iso", ellipsoid(s2, (5, 4), (3.2, 3.0)), ellipsoid(s2, (6.5, 4.5), (3.5, 2.6)), (1.0, 1.0), 1.0))
    out.append(("discs_2d_aniso", ellipsoid(s2, (5, 4), (3.2, 3.0)), ellipsoid(s2, (6.5, 4.5), (3.5, 2.6)), (0.7, 1.9), 1.5))
    s3 = (14, 12, 9)
    out.append(("spheres_3d_iso", ellipsoid(s3, (6, 5, 4), (4, 3.5, 3)), ellipsoid(s3, (7.5, 6, 4.5), (3.6, 3.8, 2.8)), (1.0, 1.0, 1.0), 1.0))
    out.append(("ellipsoids_3d_aniso", ellipsoid(s3, (6, 5, 4), (4, 3.5, 3)), ellipsoid(s3, (7.5, 6, 4.5), (3.6, 3.8, 2.8)), (0.8, 1.2, 2.5), 2.0))
    a = np.zeros(s3, np.uint8)
    b = np.zeros(s3, np.uint8)
    a[2, 3, 1] = 1
    b[9, 7, 6] = 1
    out.append(("single_voxels", a, b, (0.9, 1.1, 1.7), 3.0))
    edge_a = np.zeros(s3, np.uint8)
    edge_a[:, :3, :] = 1
    edge_b = np.zeros(s3, np.uint8)
    edge_b[:, :5, 2:] = 1
    out.append(("touching_the_edge", edge_a, edge_b, (1.0, 0.5, 2.0), 1.0))
    ring = ellipsoid(s3, (7, 6, 4), (5, 5, 3)) - ellipsoid(s3, (7, 6, 4), (2.5, 2.5, 3))
    ring[ring > 1] = 0
    blob = ellipsoid(s3, (7, 6, 4), (4, 4, 2.5))
    out.append(("concave_ring_vs_blob", ring.astype(np.uint8), blob, (1.0, 1.0, 1.5), 1.0))
    inner = ellipsoid(s3, (7, 6, 4), (2, 2, 1.5))
    outer = ellipsoid(s3, (7, 6, 4), (5, 4.5, 3.5))
    out.append(("nested", inner, outer, (1.2, 0.8, 1.0), 2.0))
    return out


def monai_values(p, g, spacing, tol):
    yp = torch.tensor(p[None, None].astype(np.float64))
    yg = torch.tensor(g[None, None].astype(np.float64))
    sp = list(spacing)
    f = lambda t: float(t.flatten()[0])
    return {
        "monai_hd": f(compute_hausdorff_distance(yp, yg, include_background=True, spacing=sp)),
        "monai_hd95": f(compute_hausdorff_distance(yp, yg, include_background=True, percentile=95, spacing=sp)),
        "monai_hd95_pred_to_ref": f(compute_hausdorff_distance(yp, yg, include_background=True, percentile=95, directed=True, spacing=sp)),
        "monai_asd_symmetric": f(compute_average_surface_distance(yp, yg, include_background=True, symmetric=True, spacing=sp)),
        "monai_asd_pred_to_ref": f(compute_average_surface_distance(yp, yg, include_background=True, symmetric=False, spacing=sp)),
        "monai_nsd": f(compute_surface_dice(yp, yg, class_thresholds=[tol], include_background=True, spacing=sp, use_subvoxels=False)),
        "monai_nsd_subvoxels": f(compute_surface_dice(yp, yg, class_thresholds=[tol], include_background=True, spacing=sp, use_subvoxels=True)),
    }


def deepmind_values(p, g, spacing, tol):
    d = deepmind.compute_surface_distances(g.astype(bool), p.astype(bool), spacing)
    avg_gt_to_pred, avg_pred_to_gt = deepmind.compute_average_surface_distance(d)
    return {
        "deepmind_hd": deepmind.compute_robust_hausdorff(d, 100),
        "deepmind_hd95": deepmind.compute_robust_hausdorff(d, 95),
        "deepmind_avg_pred_to_ref": avg_pred_to_gt,
        "deepmind_avg_ref_to_pred": avg_gt_to_pred,
        "deepmind_nsd": deepmind.compute_surface_dice_at_tolerance(d, tol),
        "deepmind_pred_surfels": float(len(d["distances_pred_to_gt"])),
        "deepmind_pred_area": float(np.sum(d["surfel_areas_pred"])),
    }


def sitk_set_hausdorff(p, g, spacing):
    def img(a):
        i = sitk.GetImageFromArray(np.ascontiguousarray(a.T))  # (x, y[, z]) -> ITK index order
        i.SetSpacing(tuple(float(s) for s in spacing))
        return i

    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(img(p), img(g))
    return f.GetHausdorffDistance()


def rust_f64(v):
    r = repr(float(v))
    return "f64::INFINITY" if r == "inf" else ("f64::NAN" if r == "nan" else r)


def main():
    print("// Generated by dice-core/tests/golden/generate_surface.py; do not edit.")
    print(f"// medpy {medpy.__version__}, monai {monai.__version__}, SimpleITK {sitk.Version_VersionString()}, torch {torch.__version__}, numpy {np.__version__}.")
    print("#![allow(dead_code, clippy::excessive_precision, clippy::approx_constant)]")
    print("pub struct SurfaceCase {")
    for field, ty in [("name", "&'static str"), ("dims", "[usize; 3]"), ("spacing", "[f64; 3]"), ("pred", "&'static [u8]"), ("reference", "&'static [u8]"), ("tolerance", "f64")]:
        print(f"    pub {field}: {ty},")
    names = ["medpy_hd", "medpy_hd95", "medpy_asd", "medpy_assd", "monai_hd", "monai_hd95", "monai_hd95_pred_to_ref", "monai_asd_symmetric", "monai_asd_pred_to_ref", "monai_nsd", "monai_nsd_subvoxels", "sitk_set_hausdorff",
             "deepmind_hd", "deepmind_hd95", "deepmind_avg_pred_to_ref", "deepmind_avg_ref_to_pred", "deepmind_nsd", "deepmind_pred_surfels", "deepmind_pred_area"]
    for n in names:
        print(f"    pub {n}: f64,")
    print("}")
    print("#[rustfmt::skip]")
    print("pub const CASES: &[SurfaceCase] = &[")
    for name, p, g, spacing, tol in cases():
        vals = {
            "medpy_hd": mb.hd(p, g, voxelspacing=spacing),
            "medpy_hd95": mb.hd95(p, g, voxelspacing=spacing),
            "medpy_asd": mb.asd(p, g, voxelspacing=spacing),
            "medpy_assd": mb.assd(p, g, voxelspacing=spacing),
            "sitk_set_hausdorff": sitk_set_hausdorff(p, g, spacing),
        }
        vals.update(monai_values(p, g, spacing, tol))
        vals.update(deepmind_values(p, g, spacing, tol))
        dims = list(p.shape) + [1] * (3 - p.ndim)
        sp = list(spacing) + [1.0] * (3 - len(spacing))
        flat = lambda a: ", ".join(str(int(x)) for x in a.flatten(order="F"))
        print("    SurfaceCase {")
        print(f'        name: "{name}", dims: [{dims[0]}, {dims[1]}, {dims[2]}], spacing: [{", ".join(rust_f64(s) for s in sp)}], tolerance: {rust_f64(tol)},')
        print(f"        pred: &[{flat(p)}],")
        print(f"        reference: &[{flat(g)}],")
        for n in names:
            print(f"        {n}: {rust_f64(vals[n])},")
        print("    },")
    print("];")
    # Empty masks: what each peer returns (medpy raises).
    print("pub struct EmptyCase {")
    for n in ["name: &'static str", "pred_empty: bool", "ref_empty: bool"] + [f"{k}: f64" for k in EMPTY_KEYS] + ["medpy_raises: bool"]:
        print(f"    pub {n},")
    print("}")
    print("#[rustfmt::skip]")
    print("pub const EMPTY_CASES: &[EmptyCase] = &[")
    z = np.zeros((6, 5, 4), np.uint8)
    a = z.copy()
    a[1:3, 1:3, 1:3] = 1
    for name, p, g in [("pred_empty", z, a), ("ref_empty", a, z), ("both_empty", z, z)]:
        vals = monai_values(p, g, (1.0, 1.0, 1.0), 1.0)
        with np.errstate(all="ignore"):
            d = deepmind.compute_surface_distances(g.astype(bool), p.astype(bool), (1.0, 1.0, 1.0))
            vals["deepmind_hd"] = deepmind.compute_robust_hausdorff(d, 100)
            vals["deepmind_hd95"] = deepmind.compute_robust_hausdorff(d, 95)
            vals["deepmind_nsd"] = deepmind.compute_surface_dice_at_tolerance(d, 1.0)
        try:
            mb.hd(p, g)
            raises = "false"
        except RuntimeError:
            raises = "true"
        fields = ", ".join(f"{k}: {rust_f64(vals[k])}" for k in EMPTY_KEYS)
        print(f'    EmptyCase {{ name: "{name}", pred_empty: {str(not p.any()).lower()}, ref_empty: {str(not g.any()).lower()}, {fields}, medpy_raises: {raises} }},')
    print("];")


EMPTY_KEYS = ["monai_hd", "monai_hd95", "monai_asd_symmetric", "monai_nsd", "deepmind_hd", "deepmind_hd95", "deepmind_nsd"]


if __name__ == "__main__":
    main()
