"""Writes the committed sample files of every format dice reads, each written by the tool its
users write it with (nibabel, SimpleITK, tifffile, Pillow, NumPy), all holding the same
12×10×7 label map (x fastest; labels 0-3) or its middle slice.

    ~/.cache/dice/eval-ref/bin/python dice-cli/tests/data/generate.py

(`run-tests.sh` provisions that environment.) `tests/formats.rs` checks that dice reads each
file as that label map with the geometry written here, and sweeps truncations and bit flips
over them. `expected.json` records what each file must decode to.
"""

import json
import os
import shutil

import nibabel as nib
import numpy as np
import SimpleITK as sitk
import tifffile
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "formats")
NX, NY, NZ = 12, 10, 7


def labels_xyz():
    """The label map as an (x, y, z) array."""
    x, y, z = np.meshgrid(np.arange(NX), np.arange(NY), np.arange(NZ), indexing="ij")
    v = np.zeros((NX, NY, NZ), np.uint8)
    v[((x - 5.5) / 4.5) ** 2 + ((y - 4.5) / 3.5) ** 2 + ((z - 3) / 2.5) ** 2 <= 1] = 1
    v[(x >= 8) & (y <= 2)] = 2
    v[(x == 2) & (y == 7) & (z >= 2) & (z <= 4)] = 3
    return v


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    v = labels_xyz()
    # An oblique-free affine with anisotropic spacing and an origin: RAS, x flipped (LAS storage).
    affine = np.array(
        [[-1.5, 0, 0, 40.25], [0, 1.25, 0, -30.5], [0, 0, 2.5, -12.0], [0, 0, 0, 1]]
    )
    expected = {}

    def record(name, kind, dims, affine=None, notes=()):
        expected[name] = {"kind": kind, "dims": dims, "affine": None if affine is None else np.asarray(affine)[:3].tolist(), "notes": list(notes)}

    # --- nibabel: NIfTI-1 (both byte orders), NIfTI-2, pairs, Analyze, a reoriented copy.
    img = nib.Nifti1Image(v, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=2)
    nib.save(img, os.path.join(OUT, "labels.nii"))
    nib.save(img, os.path.join(OUT, "labels.nii.gz"))
    record("labels.nii", "volume", [NX, NY, NZ], affine)
    record("labels.nii.gz", "volume", [NX, NY, NZ], affine)
    be = nib.Nifti1Image(v.astype(">i2"), affine)
    be.set_sform(affine, code=2)
    nib.save(be, os.path.join(OUT, "labels_be_int16.nii"))
    record("labels_be_int16.nii", "volume", [NX, NY, NZ], affine)
    # qform only (sform_code 0): the quaternion path.
    q = nib.Nifti1Image(v, affine)
    q.set_sform(None, code=0)
    q.set_qform(affine, code=1)
    nib.save(q, os.path.join(OUT, "labels_qform.nii.gz"))
    record("labels_qform.nii.gz", "volume", [NX, NY, NZ], q.get_qform())
    n2 = nib.Nifti2Image(v.astype(np.int32), affine)
    nib.save(n2, os.path.join(OUT, "labels_nifti2.nii.gz"))
    record("labels_nifti2.nii.gz", "volume", [NX, NY, NZ], affine)
    pair = nib.Nifti1Pair(v, affine)
    nib.save(pair, os.path.join(OUT, "labels_pair.img"))
    record("labels_pair.hdr", "volume", [NX, NY, NZ], affine)
    gzpair = nib.Nifti1Pair(v, affine)
    nib.save(gzpair, os.path.join(OUT, "labels_gzpair.img.gz"))
    record("labels_gzpair.hdr.gz", "volume", [NX, NY, NZ], affine)
    an = nib.AnalyzeImage(v, np.diag([1.5, 1.25, 2.5, 1]))
    nib.save(an, os.path.join(OUT, "labels_analyze.img"))
    record("labels_analyze.hdr", "volume", [NX, NY, NZ], np.diag([1.5, 1.25, 2.5, 1]))
    # The same image stored with axes permuted and reversed, affine adjusted: reorient.
    ornt = np.array([[1, -1], [0, 1], [2, -1]])  # new axis 0 = old y reversed, 1 = x, 2 = z reversed
    ro = img.as_reoriented(ornt)
    ro_img = nib.Nifti1Image(np.asarray(ro.dataobj).astype(np.uint8), ro.affine)
    ro_img.set_sform(ro.affine, code=2)
    nib.save(ro_img, os.path.join(OUT, "labels_reoriented.nii.gz"))
    record("labels_reoriented.nii.gz", "reoriented", list(ro_img.shape), ro.affine)
    # A probability map stored as uint8 with scl_slope = 1/255 (the label-1 mask, p = 1 there).
    prob = (v == 1).astype(np.float64)
    pimg = nib.Nifti1Image((prob * 255).astype(np.uint8), affine)
    pimg.header.set_slope_inter(1 / 255, 0)
    pimg.set_sform(affine, code=2)
    nib.save(pimg, os.path.join(OUT, "prob_uint8_scaled.nii.gz"))
    record("prob_uint8_scaled.nii.gz", "probability", [NX, NY, NZ], affine)
    # A label map saved as float32.
    fimg = nib.Nifti1Image(v.astype(np.float32), affine)
    fimg.set_sform(affine, code=2)
    nib.save(fimg, os.path.join(OUT, "labels_float32.nii.gz"))
    record("labels_float32.nii.gz", "volume", [NX, NY, NZ], affine)

    # --- SimpleITK: NRRD (gzip, raw, detached), MetaImage (compressed, raw, detached).
    s = sitk.GetImageFromArray(np.ascontiguousarray(v.transpose(2, 1, 0)))  # (z, y, x)
    # ITK is LPS: RAS affine diag(-1.5, 1.25, 2.5) is LPS diag(1.5, -1.25, 2.5).
    s.SetSpacing((1.5, 1.25, 2.5))
    s.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    s.SetOrigin((-40.25, 30.5, -12.0))
    for name, compress in [
        ("labels.nrrd", True),
        ("labels_raw.nrrd", False),
        ("labels_detached.nhdr", False),
        ("labels.mha", True),
        ("labels_raw.mha", False),
        ("labels_detached_meta.mhd", True),
    ]:
        sitk.WriteImage(s, os.path.join(OUT, name), useCompression=compress)
        record(name, "volume", [NX, NY, NZ], affine)

    # --- NumPy: C order (SimpleITK's array, (z, y, x)) and Fortran order (nibabel's (x, y, z)).
    np.save(os.path.join(OUT, "labels_c.npy"), sitk.GetArrayFromImage(s))
    record("labels_c.npy", "volume", [NX, NY, NZ])
    np.save(os.path.join(OUT, "labels_fortran.npy"), np.asfortranarray(v.astype("<u2")))
    record("labels_fortran.npy", "volume", [NX, NY, NZ])

    # --- tifffile: a multi-page stack (pages = z), ImageJ style.
    tifffile.imwrite(os.path.join(OUT, "labels_stack.tif"), np.ascontiguousarray(v.transpose(2, 1, 0)), imagej=True)
    record("labels_stack.tif", "volume", [NX, NY, NZ])

    # --- 2-D: the middle slice (z = 3) in PNG and TIFF variants, (row = y, column = x).
    sl = np.ascontiguousarray(v[:, :, 3].T)
    Image.fromarray(sl, mode="L").save(os.path.join(OUT, "slice.png"))
    record("slice.png", "slice", [NX, NY])
    Image.fromarray((sl == 1)).convert("1").save(os.path.join(OUT, "slice_1bit.png"))
    record("slice_1bit.png", "mask1", [NX, NY])
    pal = Image.fromarray(sl, mode="L").convert("P")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    pal = Image.frombytes("P", (NX, NY), sl.tobytes())
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    pal.save(os.path.join(OUT, "slice_palette.png"))
    record("slice_palette.png", "slice", [NX, NY])
    la = np.stack([sl, np.full_like(sl, 200)], axis=-1)
    Image.fromarray(la, mode="LA").save(os.path.join(OUT, "slice_gray_alpha.png"))
    record("slice_gray_alpha.png", "slice", [NX, NY], notes=["alpha"])
    Image.fromarray(sl == 1).convert("1").save(os.path.join(OUT, "slice_1bit.tif"))
    record("slice_1bit.tif", "mask1", [NX, NY])
    tifffile.imwrite(os.path.join(OUT, "slice_miniswhite.tif"), sl, photometric="miniswhite")
    record("slice_miniswhite.tif", "slice", [NX, NY])

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(
            {
                "labels_xyz_flat": v.flatten(order="F").tolist(),
                "files": expected,
                "written_by": {
                    "nibabel": nib.__version__,
                    "SimpleITK": sitk.Version_VersionString(),
                    "tifffile": tifffile.__version__,
                    "numpy": np.__version__,
                    "Pillow": Image.__version__,
                },
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
