//! A picture of agreement on one 2-D slice: true positives green, false positives red, false
//! negatives blue, a voxel of one label predicted as another magenta; the reference's
//! background stays black and its foreground is the base the colours are drawn over.

use std::path::Path;

use crate::volume::Volume;

/// Colours of the overlay, also printed as its legend.
pub const LEGEND: &str =
    "green = true positive, red = false positive, blue = false negative, magenta = wrong label";

fn positive(v: &Volume, i: usize, threshold: f64) -> i64 {
    let x = v.data.get_f64(i);
    if v.data.is_float() {
        i64::from(x >= threshold)
    } else {
        x as i64
    }
}

/// Writes the overlay of slice `slice` (the middle one when `None`) of a checked pair.
pub fn write(
    path: &Path,
    pred: &Volume,
    gt: &Volume,
    slice: Option<usize>,
    threshold: f64,
    ignore: Option<i64>,
) -> Result<(), String> {
    let (w, h, offset) = gt.slice_2d(slice)?;
    let mut rgb = vec![0u8; w * h * 3];
    for k in 0..w * h {
        let (p, g) = (
            positive(pred, offset + k, threshold),
            positive(gt, offset + k, threshold),
        );
        let colour = if Some(g) == ignore {
            [64, 64, 64]
        } else {
            match (p != 0, g != 0) {
                (true, true) if p == g => [0, 200, 0],
                (true, true) => [220, 0, 220],
                (true, false) => [230, 0, 0],
                (false, true) => [0, 80, 255],
                (false, false) => [0, 0, 0],
            }
        };
        rgb[3 * k..3 * k + 3].copy_from_slice(&colour);
    }
    crate::formats::png::write_rgb(path, w, h, &rgb)
}
