//! The small sample pair committed under `dice-cli/data/sample/` (a few KB of `.nii.gz`):
//! a 40×40×24 volume, 1 mm × 1 mm × 2 mm voxels, with three structures (labels 1–3) in the
//! reference and slightly shifted, resized ones in the prediction; label 3 is a small lesion.
//! Regenerate with `cargo run -p dice-cli --example make_sample`; a test checks the committed
//! files are what this code writes.

use crate::geometry::Geometry;
use crate::volume::{Data, Volume};

/// (prediction, reference).
pub fn pair() -> (Volume, Volume) {
    let (nx, ny, nz) = (40usize, 40usize, 24usize);
    // centre (x, y, z) and radii in voxels: reference, then prediction.
    let structures = [
        (
            [20.0, 20.0, 12.0],
            [12.0, 9.0, 6.0],
            [21.0, 20.5, 12.0],
            [11.5, 9.5, 6.0],
        ),
        (
            [9.0, 30.0, 8.0],
            [4.0, 5.0, 3.0],
            [9.5, 29.0, 8.5],
            [4.5, 4.0, 3.0],
        ),
        (
            [31.0, 10.0, 16.0],
            [1.6, 1.6, 1.2],
            [31.8, 10.4, 16.0],
            [1.5, 1.7, 1.2],
        ),
    ];
    let mut gt = vec![0u8; nx * ny * nz];
    let mut pred = vec![0u8; nx * ny * nz];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = (z * ny + y) * nx + x;
                let pos = [x as f64, y as f64, z as f64];
                let inside = |c: [f64; 3], r: [f64; 3]| {
                    (0..3)
                        .map(|k| ((pos[k] - c[k]) / r[k]).powi(2))
                        .sum::<f64>()
                        <= 1.0
                };
                for (l, (gc, gr, pc, pr)) in structures.iter().enumerate() {
                    if inside(*gc, *gr) {
                        gt[i] = l as u8 + 1;
                    }
                    if inside(*pc, *pr) {
                        pred[i] = l as u8 + 1;
                    }
                }
            }
        }
    }
    let vol = |d| {
        let mut v = Volume::new(vec![nx, ny, nz], Data::U8(d));
        v.geometry = Some(Geometry::diagonal([1.0, 1.0, 2.0], "pixdim"));
        v
    };
    (vol(pred), vol(gt))
}
