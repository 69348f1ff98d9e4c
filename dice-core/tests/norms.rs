//! The taxicab (L1) and chessboard (L∞) distance transforms and surface distances against
//! brute force, on random volumes with random anisotropic spacings (every feature tried for
//! every voxel), and MONAI's chessboard/taxicab Hausdorff numbers of two spheres.

use dice_core::surface::{self, Grid, Norm, Surfaces};
use proptest::prelude::*;

fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
    s |= 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn coords(dims: [usize; 3], i: usize) -> [usize; 3] {
    [
        i % dims[0],
        (i / dims[0]) % dims[1],
        i / (dims[0] * dims[1]),
    ]
}

fn norm_distance(norm: Norm, a: [usize; 3], b: [usize; 3], s: [f64; 3]) -> f64 {
    let d = (0..3).map(|k| (a[k] as f64 - b[k] as f64).abs() * s[k]);
    match norm {
        Norm::Taxicab => d.sum(),
        Norm::Chessboard => d.fold(0.0, f64::max),
        Norm::Euclidean => d.map(|x| x * x).sum::<f64>().sqrt(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn norm_transforms_match_brute_force(
        seed in any::<u64>(),
        dx in 1usize..10, dy in 1usize..9, dz in 1usize..7,
        sx in 0.1f64..3.0, sy in 0.1f64..3.0, sz in 0.1f64..3.0,
        density in 0u64..30,
        chess in any::<bool>(),
    ) {
        let mut next = xorshift(seed);
        let dims = [dx, dy, dz];
        let spacing = [sx, sy, sz];
        let norm = if chess { Norm::Chessboard } else { Norm::Taxicab };
        let n = dx * dy * dz;
        let feat: Vec<bool> = (0..n).map(|_| next() % 100 < density).collect();
        let mut out = vec![0.0; n];
        let mut scratch = vec![0.0; surface::line_scratch_len(dims)];
        surface::distance_transform(dims, spacing, norm, |i| feat[i], &mut out, &mut scratch).unwrap();
        for (i, &got) in out.iter().enumerate() {
            let want = (0..n)
                .filter(|&j| feat[j])
                .map(|j| norm_distance(norm, coords(dims, i), coords(dims, j), spacing))
                .fold(f64::INFINITY, f64::min);
            if want.is_infinite() {
                prop_assert!(got.is_infinite());
            } else {
                prop_assert!((got - want).abs() <= 1e-12 * want.max(1.0), "{norm:?} voxel {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn norm_surface_distances_match_brute_force(
        seed in any::<u64>(),
        dx in 2usize..10, dy in 2usize..10, dz in 1usize..6,
        chess in any::<bool>(),
    ) {
        let mut next = xorshift(seed);
        let dims = [dx, dy, dz];
        let spacing = [1.0, 1.0, 1.0];
        let grid = Grid::new(dims, spacing).unwrap();
        let n = dx * dy * dz;
        let p: Vec<u8> = (0..n).map(|_| u8::from(next().is_multiple_of(3))).collect();
        let t: Vec<u8> = (0..n).map(|_| u8::from(next().is_multiple_of(3))).collect();
        let norm = if chess { Norm::Chessboard } else { Norm::Taxicab };
        let bounds = surface::bounds_of(grid, |i| p[i] != 0 || t[i] != 0);
        let mut scratch = vec![0.0; surface::scratch_len(grid, &p, &t).unwrap()];
        let got = surface::surface_distances_in_norm(
            grid, bounds, &|i| p[i] != 0, &|i| t[i] != 0, 95.0, 1.0, norm, &mut scratch,
        ).unwrap();
        let euclid = surface::surface_distances(grid, &p, &t, 95.0, 1.0, &mut scratch).unwrap();
        // The surfaces are the Euclidean run's; only the distances between them change.
        if let (Surfaces::Distances(d), Surfaces::Distances(e)) = (got, euclid) {
            prop_assert_eq!(d.pred_surface, e.pred_surface);
            prop_assert!(d.max_pred_to_ref >= e.max_pred_to_ref / 3f64.sqrt() - 1e-12);
            if norm == Norm::Chessboard {
                prop_assert!(d.max_pred_to_ref <= e.max_pred_to_ref + 1e-12);
            } else {
                prop_assert!(d.max_pred_to_ref >= e.max_pred_to_ref - 1e-12);
            }
        } else {
            prop_assert_eq!(format!("{got:?}"), format!("{euclid:?}"));
        }
    }
}

/// Two spheres of radius 20 whose centres are one voxel apart on every axis: MONAI's
/// `compute_hausdorff_distance` gives 1 with chessboard and 3 with taxicab (its tests).
#[test]
fn shifted_spheres_as_monai_measures_them() {
    let dims = [50, 50, 50];
    let grid = Grid::new(dims, [1.0; 3]).unwrap();
    let sphere = |c: f64| -> Vec<u8> {
        (0..dims.iter().product::<usize>())
            .map(|i| {
                let x = coords(dims, i).map(|v| v as f64 - c);
                u8::from(x.iter().map(|v| v * v).sum::<f64>() <= 400.0)
            })
            .collect()
    };
    let (p, t) = (sphere(20.0), sphere(19.0));
    let bounds = surface::bounds_of(grid, |i| p[i] != 0 || t[i] != 0);
    let mut scratch = vec![0.0; surface::scratch_len(grid, &p, &t).unwrap()];
    for (norm, want) in [(Norm::Chessboard, 1.0), (Norm::Taxicab, 3.0)] {
        let Surfaces::Distances(d) = surface::surface_distances_in_norm(
            grid,
            bounds,
            &|i| p[i] != 0,
            &|i| t[i] != 0,
            95.0,
            1.0,
            norm,
            &mut scratch,
        )
        .unwrap() else {
            panic!("both spheres have surfaces")
        };
        assert_eq!(d.hausdorff(), want, "{norm:?}");
    }
}
