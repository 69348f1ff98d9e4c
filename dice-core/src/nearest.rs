//! Exact nearest-point distances between two point sets on a voxel grid: an implicit k-d tree.
//!
//! The surface distances only need, for every surface element of one mask, the distance to the
//! nearest surface element of the other. A distance transform answers that for every voxel of
//! the masks' box, so its cost follows the box; when a prediction has false-positive islands far
//! from the organ (as network outputs do), the box is nearly the whole volume. A k-d tree over
//! the other surface's points answers it for the surface points only: `O(n log n)` to build,
//! about `O(log n)` a query, whatever the box, and exact.
//!
//! ## The tree
//! Points are `[f64; N]` rows whose first three entries are integer grid coordinates (the rest
//! travel with the point: an area, say). The tree is implicit, in the slice itself, without
//! allocation: the median along the split axis (by depth, cycling through the axes the grid
//! has) goes to the middle (`select_nth_unstable_by`), the two halves recursively, down to
//! leaves of at most [`LEAF`] points that are scanned. Depth is `log₂(n / LEAF)`, so the
//! recursion's stack stays small (about 20 frames for 10⁷ points).
//!
//! ## The distance, to the bit
//! The squared distance between points `Δ` voxels apart is computed as the separable distance
//! transform of [`crate::surface`] computes it, `((w_z·Δz)·Δz) + (((w_y·Δy)·Δy) + ((w_x·Δx)·Δx))`
//! with `w_k = s_k²`, so both give the same `f64` (the minimum is exact; rounding is monotone,
//! so pruning a half whose split-axis term alone is not below the best is exact too).

/// Points a leaf holds at most (scanned without further splitting).
pub(crate) const LEAF: usize = 8;

/// The squared distance (mm²) between grid points `a` and `b` with per-axis weights `w = s²`,
/// in the separable transform's order of operations.
#[inline(always)]
pub(crate) fn squared(w: [f64; 3], a: &[f64], b: &[f64]) -> f64 {
    let t = |k: usize| {
        let m = (a[k] - b[k]).abs();
        w[k] * m * m
    };
    t(2) + (t(1) + t(0))
}

/// The axes along which the grid has more than one point (the others never separate points).
pub(crate) fn split_axes(dims: [usize; 3]) -> ([usize; 3], usize) {
    let mut axes = [0; 3];
    let mut n = 0;
    for (k, &d) in dims.iter().enumerate() {
        if d > 1 {
            axes[n] = k;
            n += 1;
        }
    }
    if n == 0 {
        n = 1;
    }
    (axes, n)
}

/// Orders `pts` into the implicit tree (split axes `axes`, cycled by depth).
pub(crate) fn build<const N: usize>(pts: &mut [[f64; N]], axes: &[usize]) {
    build_at(pts, axes, 0);
}

fn build_at<const N: usize>(pts: &mut [[f64; N]], axes: &[usize], depth: usize) {
    if pts.len() <= LEAF {
        return;
    }
    let a = axes[depth % axes.len()];
    let mid = pts.len() / 2;
    pts.select_nth_unstable_by(mid, |p, q| p[a].total_cmp(&q[a]));
    let (left, right) = pts.split_at_mut(mid);
    build_at(left, axes, depth + 1);
    build_at(&mut right[1..], axes, depth + 1);
}

/// The squared distance from `q` to the nearest point of the tree `pts` (built by [`build`]
/// with the same `axes`), `+∞` when `pts` is empty. `best` is an upper bound to start from
/// (`+∞`, or the distance to a point known to be in the set).
pub(crate) fn nearest<const N: usize>(
    pts: &[[f64; N]],
    axes: &[usize],
    w: [f64; 3],
    q: &[f64],
    best: f64,
) -> f64 {
    let mut best = best;
    nearest_at(pts, axes, w, q, 0, &mut best);
    best
}

fn nearest_at<const N: usize>(
    pts: &[[f64; N]],
    axes: &[usize],
    w: [f64; 3],
    q: &[f64],
    depth: usize,
    best: &mut f64,
) {
    if pts.len() <= LEAF {
        for p in pts {
            let d = squared(w, p, q);
            if d < *best {
                *best = d;
            }
        }
        return;
    }
    let a = axes[depth % axes.len()];
    let mid = pts.len() / 2;
    let p = &pts[mid];
    let d = squared(w, p, q);
    if d < *best {
        *best = d;
    }
    // Left of the median: coordinates ≤ p[a]; right: ≥ p[a].
    let diff = q[a] - p[a];
    let (near, far) = if diff < 0.0 {
        (&pts[..mid], &pts[mid + 1..])
    } else {
        (&pts[mid + 1..], &pts[..mid])
    };
    nearest_at(near, axes, w, q, depth + 1, best);
    // Every point of the far half is at least |diff| away along `a`: its squared distance is
    // at least that axis's term, computed as `squared` computes it.
    let m = diff.abs();
    if w[a] * m * m < *best {
        nearest_at(far, axes, w, q, depth + 1, best);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Against brute force, bit for bit, on random point sets of a 2-D and an anisotropic 3-D
    /// grid, including duplicates and empty sets.
    #[test]
    fn nearest_equals_brute_force() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % n) as f64
        };
        for (dims, spacing) in [
            ([40usize, 30, 1], [1.0, 1.0, 1.0]),
            ([20, 25, 30], [0.7, 0.7, 3.3]),
            ([9, 1, 1], [1.5, 1.0, 1.0]),
        ] {
            let w = spacing.map(|v: f64| v * v);
            let (axes, na) = split_axes(dims);
            for n in [0usize, 1, 5, 8, 9, 100, 1000] {
                let mut pts: Vec<[f64; 4]> = (0..n)
                    .map(|i| {
                        [
                            next(dims[0] as u64),
                            next(dims[1] as u64),
                            next(dims[2] as u64),
                            i as f64,
                        ]
                    })
                    .collect();
                let orig = pts.clone();
                build(&mut pts, &axes[..na]);
                let mut ids: Vec<u64> = pts.iter().map(|p| p[3] as u64).collect();
                ids.sort_unstable();
                assert_eq!(ids, (0..n as u64).collect::<Vec<_>>());
                for _ in 0..200 {
                    let q = [
                        next(dims[0] as u64),
                        next(dims[1] as u64),
                        next(dims[2] as u64),
                    ];
                    let want = orig
                        .iter()
                        .map(|p| squared(w, p, &q))
                        .fold(f64::INFINITY, f64::min);
                    let got = nearest(&pts, &axes[..na], w, &q, f64::INFINITY);
                    assert_eq!(got.to_bits(), want.to_bits(), "{dims:?} n={n} q={q:?}");
                }
            }
        }
    }
}
