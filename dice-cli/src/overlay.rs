//! A picture of agreement on one 2-D slice, drawn from the same values the numbers come from
//! (labels chosen, threshold and ignore label applied): true positives green, false positives
//! red, false negatives blue, a voxel of one label predicted as another magenta, ignored
//! voxels grey, agreement on background black.

use crate::eval::{classes_at, Options, Pair, Row};

/// Colours of the overlay, also printed as its legend.
pub const LEGEND: &str = "green = true positive, red = false positive, blue = false negative, \
                          magenta = wrong label, grey = ignored";

/// The PNG bytes of the overlay of slice `slice` (the middle one when `None`) of a pair.
pub fn render(
    pair: &Pair,
    rows: &[Row],
    opts: &Options,
    slice: Option<usize>,
) -> Result<Vec<u8>, String> {
    let (w, h, offset) = pair.gt_vol.slice_2d(slice)?;
    let mut rgb = vec![0u8; w * h * 3];
    for k in 0..w * h {
        let colour = match classes_at(pair, rows, opts.threshold, opts.ignore_label, offset + k) {
            None => [96, 96, 96],
            Some((p, g)) => match (p, g) {
                (Some(a), Some(b)) if a == b => [0, 200, 0],
                (Some(_), Some(_)) => [220, 0, 220],
                (Some(_), None) => [230, 0, 0],
                (None, Some(_)) => [0, 80, 255],
                (None, None) => [0, 0, 0],
            },
        };
        rgb[3 * k..3 * k + 3].copy_from_slice(&colour);
    }
    let mut out = Vec::new();
    crate::formats::png::write_to(&mut out, w, h, png::ColorType::Rgb, &rgb)?;
    Ok(out)
}

/// The slice with the most disagreeing voxels (false positives, false negatives, wrong labels),
/// for pictures of where a model fails; the middle one when they all agree.
pub fn worst_slice(pair: &Pair, rows: &[Row], opts: &Options) -> Result<usize, String> {
    let (w, h, _) = pair.gt_vol.slice_2d(Some(0))?;
    let depth = pair.dims.iter().product::<usize>() / (w * h).max(1);
    let mut best = (0usize, depth / 2);
    for k in 0..depth {
        let errors = (0..w * h)
            .filter(|&i| {
                matches!(
                    classes_at(pair, rows, opts.threshold, opts.ignore_label, k * w * h + i),
                    Some((p, g)) if p != g
                )
            })
            .count();
        if errors > best.0 {
            best = (errors, k);
        }
    }
    Ok(best.1)
}
