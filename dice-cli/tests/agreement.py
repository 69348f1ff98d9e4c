"""Agreement of `dice eval` with independent tools on real files.

Pairs are made from the MNI152 grey- and white-matter maps that nilearn ships (197×233×189,
1 mm, written by nilearn's maintainers), saved by nibabel and SimpleITK in several formats,
byte orders and storage orders. For each pair, dice's per-label counts must equal the counts of
the nibabel-loaded NumPy arrays exactly, and its Dice, IoU, recall, precision and volume
similarity must equal SimpleITK's LabelOverlapMeasuresImageFilter to 1e-12.

    python agreement.py DICE_BINARY WORK_DIR

Run by tests/agreement.rs with the environment run-tests.sh provisions. Exit status 0 when
everything agrees; the failures are printed otherwise.
"""

import importlib.util
import json
import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import SimpleITK as sitk

DICE, WORK = sys.argv[1], sys.argv[2]
os.makedirs(WORK, exist_ok=True)
failures = []


def nilearn_data(name):
    # Located without importing nilearn (it is installed without its dependencies).
    spec = importlib.util.find_spec("nilearn")
    return os.path.join(spec.submodule_search_locations[0], "datasets", "data", name)


gm_img = nib.load(nilearn_data("mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"))
wm_img = nib.load(nilearn_data("mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"))
gm = np.asarray(gm_img.dataobj)
wm = np.asarray(wm_img.dataobj)
affine = gm_img.affine


def tissue(gm_t, wm_t):
    """A 3-label map: 1 grey matter, 2 white matter, 3 a small 'lesion' in white matter."""
    v = np.zeros(gm.shape, np.uint8)
    v[(gm > gm_t) & (gm >= wm)] = 1
    v[(wm > wm_t) & (wm > gm)] = 2
    x, y, z = np.ogrid[: gm.shape[0], : gm.shape[1], : gm.shape[2]]
    v[((x - 120) ** 2 + (y - 130) ** 2 + (z - 100) ** 2 < 36) & (v == 2)] = 3
    return v


ref = tissue(128, 128)
pred = tissue(96, 160)
# Make the lesion miss partly: shift it by two voxels in the prediction.
lesion = np.argwhere(pred == 3)
pred[pred == 3] = 2
for x, y, z in lesion:
    if x + 2 < pred.shape[0] and pred[x + 2, y, z] == 2:
        pred[x + 2, y, z] = 3


def save_nii(arr, path, aff=affine, dtype=None, cls=nib.Nifti1Image):
    img = cls(arr.astype(dtype) if dtype else arr, aff)
    img.set_sform(aff, code=2)
    if cls is nib.Nifti1Image:
        img.set_qform(aff, code=1)
    nib.save(img, path)
    return path


def to_sitk(arr, aff):
    """A SimpleITK image of an (x, y, z) array with a RAS affine (ITK is LPS)."""
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    lps = np.diag([-1, -1, 1]) @ aff[:3, :3]
    spacing = np.linalg.norm(lps, axis=0)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetDirection(tuple(float(v) for v in (lps / spacing).flatten()))
    img.SetOrigin(tuple(float(v) for v in np.diag([-1, -1, 1]) @ aff[:3, 3]))
    return img


ref_nii = save_nii(ref, os.path.join(WORK, "ref.nii.gz"))
pairs = {
    "nifti u8 pair": (save_nii(pred, os.path.join(WORK, "pred.nii.gz")), ref_nii),
    "big-endian int16 prediction": (save_nii(pred, os.path.join(WORK, "pred_be.nii"), dtype=">i2"), ref_nii),
    "NIfTI-2 int32 prediction": (save_nii(pred, os.path.join(WORK, "pred_n2.nii.gz"), dtype=np.int32, cls=nib.Nifti2Image), ref_nii),
}
# The prediction stored in another axis order (x↔y swapped, z reversed), affine adjusted.
ornt = np.array([[1, 1], [0, 1], [2, -1]])
ro = nib.Nifti1Image(pred, affine).as_reoriented(ornt)
pairs["reoriented prediction"] = (save_nii(np.asarray(ro.dataobj), os.path.join(WORK, "pred_reoriented.nii.gz"), aff=ro.affine), ref_nii)
# SimpleITK writes NRRD and MetaImage in LPS with its own direction matrices.
sitk.WriteImage(to_sitk(pred, affine), os.path.join(WORK, "pred.nrrd"), useCompression=True)
sitk.WriteImage(to_sitk(ref, affine), os.path.join(WORK, "ref.mha"), useCompression=True)
pairs["NRRD prediction, NIfTI reference"] = (os.path.join(WORK, "pred.nrrd"), ref_nii)
pairs["NRRD prediction, MetaImage reference"] = (os.path.join(WORK, "pred.nrrd"), os.path.join(WORK, "ref.mha"))

# The reference numbers, computed once on the arrays as nibabel loads them.
ref_s = sitk.Cast(to_sitk(ref, affine), sitk.sitkUInt8)
pred_s = sitk.Cast(to_sitk(pred, affine), sitk.sitkUInt8)
f = sitk.LabelOverlapMeasuresImageFilter()
f.Execute(pred_s, ref_s)  # ITK: (source = prediction, target = reference)
expected = {}
for label in (1, 2, 3):
    p, g = pred == label, ref == label
    tp, fp, fn = int(np.sum(p & g)), int(np.sum(p & ~g)), int(np.sum(~p & g))
    vs_itk = f.GetVolumeSimilarity(label)  # 2(|S| - |T|)/(|S| + |T|), signed
    expected[label] = {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": int(pred.size) - tp - fp - fn,
        "dice": f.GetDiceCoefficient(label),
        "iou": f.GetJaccardCoefficient(label),
        "recall": 1.0 - f.GetFalseNegativeError(label),
        # ITK's "false positive error" is FP/(FP + TN), one minus specificity (not one minus
        # precision): precision comes from the NumPy counts, specificity is checked against ITK.
        "precision": tp / (tp + fp),
        "specificity": 1.0 - f.GetFalsePositiveError(label),
        "volume_similarity": 1.0 - abs(vs_itk) / 2.0,
    }

report = []
for name, (p, g) in pairs.items():
    out = subprocess.run([DICE, "eval", p, g, "--format", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        failures.append(f"{name}: dice exited {out.returncode}: {out.stderr}")
        continue
    case = json.loads(out.stdout)["cases"][0]
    rows = {r["label"]: r for r in case["labels"]}
    if sorted(rows) != [1, 2, 3]:
        failures.append(f"{name}: labels {sorted(rows)}")
        continue
    for label, want in expected.items():
        got = rows[label]
        for k in ("tp", "fp", "fn", "tn"):
            if got[k] != want[k]:
                failures.append(f"{name} label {label}: {k} {got[k]} != {want[k]} (numpy)")
        for k in ("dice", "iou", "recall", "precision", "volume_similarity"):
            if abs(got[k] - want[k]) > 1e-12:
                failures.append(f"{name} label {label}: {k} {got[k]!r} != {want[k]!r} (SimpleITK)")
        specificity = got["tn"] / (got["tn"] + got["fp"])
        if abs(specificity - want["specificity"]) > 1e-12:
            failures.append(f"{name} label {label}: specificity {specificity!r} != {want['specificity']!r} (SimpleITK)")
    notes = " | ".join(case.get("notes", []))
    dices = ", ".join("%.6f" % rows[lab]["dice"] for lab in (1, 2, 3))
    report.append(f"{name}: Dice {dices}" + (f"  [{notes}]" if notes else ""))

# The reoriented pair must say it was reoriented.
out = subprocess.run([DICE, "eval", *pairs["reoriented prediction"], "--format", "json"], capture_output=True, text=True)
if "reoriented" not in out.stdout:
    failures.append("reoriented prediction: no note says it was reoriented")
# Shifting the reference's origin by half a voxel makes it another grid: an error naming both.
shifted = affine.copy()
shifted[0, 3] += 0.5
bad = save_nii(ref, os.path.join(WORK, "ref_shifted.nii.gz"), aff=shifted)
out = subprocess.run([DICE, "eval", pairs["nifti u8 pair"][0], bad], capture_output=True, text=True)
if out.returncode != 1 or "not on the same grid" not in out.stderr or "ref_shifted" not in out.stderr:
    failures.append(f"shifted reference: exit {out.returncode}, {out.stderr}")

print("\n".join(report))
print(f"SimpleITK {sitk.Version_VersionString()}, nibabel {nib.__version__}, numpy {np.__version__}")
if failures:
    print("\n".join(["FAILURES:"] + failures))
    sys.exit(1)
print(f"{len(pairs)} pairs agree with SimpleITK and NumPy")
