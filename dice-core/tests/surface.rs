//! Surface distances against brute force: the distance transform to 1e-12 on random volumes
//! with random anisotropic spacings, and every metric against its definition computed by
//! exhaustive search (surfaces by their definition, distances by trying every pair).

use dice_core::surface::{self, Grid, Norm, PercentileDefinition, SurfaceDistances, Surfaces};
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

fn dist2(a: [usize; 3], b: [usize; 3], s: [f64; 3]) -> f64 {
    (0..3)
        .map(|k| ((a[k] as f64 - b[k] as f64) * s[k]).powi(2))
        .sum()
}

/// Surface by definition: inside, with a face neighbour outside the mask or the image.
fn brute_surface(dims: [usize; 3], m: &[u8]) -> Vec<usize> {
    (0..m.len())
        .filter(|&i| {
            if m[i] == 0 {
                return false;
            }
            if dims == [1, 1, 1] {
                return true;
            }
            let c = coords(dims, i);
            (0..3).any(|k| {
                if dims[k] == 1 {
                    return false;
                }
                [-1i64, 1].iter().any(|&dlt| {
                    let n = c[k] as i64 + dlt;
                    if n < 0 || n >= dims[k] as i64 {
                        return true;
                    }
                    let mut cc = c;
                    cc[k] = n as usize;
                    m[cc[0] + dims[0] * (cc[1] + dims[1] * cc[2])] == 0
                })
            })
        })
        .collect()
}

fn percentile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let r = (s.len() - 1) as f64 * q / 100.0;
    let lo = r.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (r - lo as f64) * (s[hi] - s[lo])
}

fn random_mask(next: &mut impl FnMut() -> u64, dims: [usize; 3], density: u64) -> Vec<u8> {
    // Blobs: a few boxes, so surfaces have interiors, plus scattered voxels.
    let n = dims[0] * dims[1] * dims[2];
    let mut m = vec![0u8; n];
    for _ in 0..1 + next() % 3 {
        let lo: Vec<usize> = (0..3).map(|k| (next() as usize) % dims[k]).collect();
        let hi: Vec<usize> = (0..3)
            .map(|k| (lo[k] + 1 + (next() as usize) % dims[k]).min(dims[k]))
            .collect();
        for (i, v) in m.iter_mut().enumerate() {
            let c = coords(dims, i);
            if (0..3).all(|k| c[k] >= lo[k] && c[k] < hi[k]) {
                *v = 1;
            }
        }
    }
    for v in m.iter_mut() {
        if next() % 100 < density {
            *v ^= 1;
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn distance_transform_matches_brute_force(
        seed in any::<u64>(),
        dx in 1usize..9, dy in 1usize..9, dz in 1usize..7,
        sx in 0.1f64..3.0, sy in 0.1f64..3.0, sz in 0.1f64..3.0,
        density in 0u64..40,
    ) {
        let mut next = xorshift(seed);
        let dims = [dx, dy, dz];
        let spacing = [sx, sy, sz];
        let n = dx * dy * dz;
        let feat: Vec<bool> = (0..n).map(|_| next() % 100 < density).collect();
        let mut out = vec![0.0; n];
        let mut scratch = vec![0.0; surface::line_scratch_len(dims)];
        surface::squared_distance_transform(dims, spacing, |i| feat[i], &mut out, &mut scratch).unwrap();
        for (i, &got) in out.iter().enumerate() {
            let want = (0..n).filter(|&j| feat[j]).map(|j| dist2(coords(dims, i), coords(dims, j), spacing)).fold(f64::INFINITY, f64::min);
            if want.is_infinite() {
                prop_assert!(got.is_infinite());
            } else {
                prop_assert!((got - want).abs() <= 1e-12 * want.max(1.0), "voxel {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn metrics_match_their_definitions(
        seed in any::<u64>(),
        dx in 1usize..10, dy in 1usize..10, dz in 1usize..6,
        sx in 0.2f64..2.5, sy in 0.2f64..2.5, sz in 0.2f64..2.5,
        q in 0.0f64..100.0,
        tol in 0.0f64..3.0,
    ) {
        let mut next = xorshift(seed);
        let dims = [dx, dy, dz];
        let spacing = [sx, sy, sz];
        let grid = Grid::new(dims, spacing).unwrap();
        let (p, t) = (random_mask(&mut next, dims, 5), random_mask(&mut next, dims, 5));
        let mut scratch = vec![0.0; surface::scratch_len(grid, &p, &t).unwrap()];
        let got = surface::surface_distances(grid, &p, &t, q, tol, &mut scratch).unwrap();
        let (sp, st) = (brute_surface(dims, &p), brute_surface(dims, &t));
        let directed = |a: &[usize], b: &[usize]| -> Vec<f64> {
            a.iter().map(|&i| b.iter().map(|&j| dist2(coords(dims, i), coords(dims, j), spacing)).fold(f64::INFINITY, f64::min).sqrt()).collect()
        };
        match got {
            Surfaces::BothEmpty => prop_assert!(sp.is_empty() && st.is_empty()),
            Surfaces::ReferenceEmpty => prop_assert!(st.is_empty() && !sp.is_empty()),
            Surfaces::PredictionEmpty => prop_assert!(sp.is_empty() && !st.is_empty()),
            Surfaces::Distances(d) => {
                let (dp, dt) = (directed(&sp, &st), directed(&st, &sp));
                let pooled: Vec<f64> = dp.iter().chain(&dt).copied().collect();
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1.0);
                prop_assert_eq!(d.pred_surface as usize, sp.len());
                prop_assert_eq!(d.ref_surface as usize, st.len());
                let hd = dp.iter().chain(&dt).copied().fold(0.0, f64::max);
                prop_assert!(close(d.hausdorff(), hd), "{} vs {hd}", d.hausdorff());
                let mx = percentile(&dp, q).max(percentile(&dt, q));
                prop_assert!(close(d.percentile_hausdorff(PercentileDefinition::MaxDirected), mx));
                prop_assert!(close(d.percentile_hausdorff(PercentileDefinition::Pooled), percentile(&pooled, q)));
                prop_assert!(close(d.assd(), pooled.iter().sum::<f64>() / pooled.len() as f64));
                let masd = (dp.iter().sum::<f64>() / dp.len() as f64 + dt.iter().sum::<f64>() / dt.len() as f64) / 2.0;
                prop_assert!(close(d.masd(), masd));
                let within = pooled.iter().filter(|&&x| x <= tol).count() as f64;
                prop_assert!(close(d.nsd(), within / pooled.len() as f64));
            }
        }
    }
}

/// Two concentric squares in 2-D with anisotropic spacing: every number by hand.
#[test]
fn concentric_squares_by_hand() {
    let dims = [7, 7, 1];
    let grid = Grid::new(dims, [2.0, 1.0, 1.0]).unwrap();
    let square = |lo: usize, hi: usize| -> Vec<u8> {
        (0..49)
            .map(|i| u8::from((lo..=hi).contains(&(i % 7)) && (lo..=hi).contains(&(i / 7))))
            .collect()
    };
    let (p, t) = (square(1, 5), square(2, 4));
    let mut scratch = vec![0.0; surface::scratch_len(grid, &p, &t).unwrap()];
    let Surfaces::Distances(d) =
        surface::surface_distances(grid, &p, &t, 95.0, 1.0, &mut scratch).unwrap()
    else {
        panic!()
    };
    // The 5×5 ring has 16 voxels, the 3×3 ring 8.
    assert_eq!((d.pred_surface, d.ref_surface), (16, 8));
    // Its corners are √(2² + 1²) from the inner ring's corners; its sides 1 (along y) or 2
    // (along x) away.
    assert!((d.max_pred_to_ref - 5f64.sqrt()).abs() < 1e-15);
    assert!((d.max_ref_to_pred - 2.0).abs() < 1e-15);
    assert_eq!(
        d.ref_within_tolerance, 6,
        "the inner ring's top and bottom rows: 1 mm along y"
    );
    assert!((d.hausdorff() - 5f64.sqrt()).abs() < 1e-15);
    let _: SurfaceDistances = d;
    // One voxel in a 1×1×1 image is its own surface.
    let g1 = Grid::new([1, 1, 1], [1.0; 3]).unwrap();
    let mut s1 = vec![0.0; surface::scratch_len(g1, &[1], &[1]).unwrap()];
    let Surfaces::Distances(d1) =
        surface::surface_distances(g1, &[1], &[1], 50.0, 0.0, &mut s1).unwrap()
    else {
        panic!()
    };
    assert_eq!((d1.pred_surface, d1.hausdorff()), (1, 0.0));
}

#[test]
fn empty_masks_and_bad_parameters() {
    let grid = Grid::new([3, 3, 1], [1.0; 3]).unwrap();
    let (z, one) = (vec![0u8; 9], {
        let mut v = vec![0u8; 9];
        v[4] = 1;
        v
    });
    let mut s = vec![0.0; 64];
    assert_eq!(
        surface::surface_distances(grid, &z, &z, 95.0, 1.0, &mut s).unwrap(),
        Surfaces::BothEmpty
    );
    assert_eq!(
        surface::surface_distances(grid, &one, &z, 95.0, 1.0, &mut s).unwrap(),
        Surfaces::ReferenceEmpty
    );
    assert_eq!(
        surface::surface_distances(grid, &z, &one, 95.0, 1.0, &mut s).unwrap(),
        Surfaces::PredictionEmpty
    );
    assert!(surface::surface_distances(grid, &one, &one, 101.0, 1.0, &mut s).is_err());
    assert!(surface::surface_distances(grid, &one, &one, 95.0, -1.0, &mut s).is_err());
    assert!(surface::surface_distances(grid, &one, &one, 95.0, 1.0, &mut s[..1]).is_err());
    assert!(surface::surface_distances(grid, &one[..8], &one, 95.0, 1.0, &mut s).is_err());
    assert!(Grid::new([3, 0, 1], [1.0; 3]).is_err());
    assert!(Grid::new([3, 3, 1], [1.0, 0.0, 1.0]).is_err());
    assert!(Grid::new([3, 3, 1], [1.0, f64::NAN, 1.0]).is_err());
    assert!(Grid::new([usize::MAX, 3, 1], [1.0; 3]).is_err());
    // A single voxel: its own surface, at distance 0 from itself.
    let Surfaces::Distances(d) =
        surface::surface_distances(grid, &one, &one, 95.0, 0.0, &mut s).unwrap()
    else {
        panic!()
    };
    assert_eq!((d.hausdorff(), d.nsd(), d.pred_surface), (0.0, 1.0, 1));
    assert!((grid.diagonal() - 8f64.sqrt()).abs() < 1e-15);
}

/// A larger volume (lines long enough for many parabolas in the envelope), sparse features.
#[test]
fn distance_transform_of_a_larger_volume() {
    let dims = [37, 29, 17];
    let spacing = [0.7, 1.3, 2.9];
    let n = dims[0] * dims[1] * dims[2];
    let mut next = xorshift(7);
    let feat: Vec<bool> = (0..n).map(|_| next() % 1000 < 4).collect();
    let mut out = vec![0.0; n];
    let mut scratch = vec![0.0; surface::line_scratch_len(dims)];
    surface::squared_distance_transform(dims, spacing, |i| feat[i], &mut out, &mut scratch)
        .unwrap();
    let features: Vec<usize> = (0..n).filter(|&j| feat[j]).collect();
    assert!(features.len() > 40);
    for (i, &got) in out.iter().enumerate() {
        let want = features
            .iter()
            .map(|&j| dist2(coords(dims, i), coords(dims, j), spacing))
            .fold(f64::INFINITY, f64::min);
        assert!(
            (got - want).abs() <= 1e-12 * want.max(1.0),
            "voxel {i}: {got} vs {want}"
        );
    }
}

#[test]
fn empty_policies_are_explicit() {
    use dice_core::hard::EmptyValue;
    use dice_core::surface::{DistanceMetric as M, EmptyDistance, SurfaceEmptyPolicy as P};
    let grid = Grid::new([4, 3, 2], [1.0, 2.0, 2.0]).unwrap();
    let diag = (9.0f64 + 16.0 + 4.0).sqrt();
    let one = Surfaces::ReferenceEmpty;
    assert_eq!(one.distance(M::Hausdorff, grid, P::DEFAULT), Some(diag));
    assert_eq!(one.distance(M::Assd, grid, P::MONAI), Some(f64::INFINITY));
    assert_eq!(
        Surfaces::BothEmpty.distance(M::Masd, grid, P::DEFAULT),
        None
    );
    assert!(Surfaces::BothEmpty
        .distance(M::Hausdorff, grid, P::MONAI)
        .unwrap()
        .is_nan());
    let brats = P {
        one_empty: EmptyDistance::Value(373.13),
        both_empty: EmptyDistance::Zero,
    };
    let pooled = M::PercentileHausdorff(PercentileDefinition::Pooled);
    assert_eq!(
        Surfaces::PredictionEmpty.distance(pooled, grid, brats),
        Some(373.13)
    );
    assert_eq!(Surfaces::BothEmpty.distance(pooled, grid, brats), Some(0.0));
    assert_eq!(one.nsd(EmptyValue::Skip), Some(0.0));
    assert_eq!(Surfaces::BothEmpty.nsd(EmptyValue::One), Some(1.0));
}

/// Every label's box in one pass, and distances of label maps through predicates within them
/// equal the distances of the labels' own masks.
#[test]
fn label_maps_through_their_bounds() {
    let dims = [9, 8, 5];
    let grid = Grid::new(dims, [1.0, 0.8, 1.7]).unwrap();
    let mut next = xorshift(11);
    let p: Vec<u8> = (0..grid.voxels()).map(|_| (next() % 9) as u8 % 4).collect();
    let g: Vec<u8> = (0..grid.voxels())
        .map(|i| {
            if next().is_multiple_of(5) {
                (next() % 4) as u8
            } else {
                p[i]
            }
        })
        .collect();
    let (mut pb, mut gb) = ([None; 4], [None; 4]);
    surface::label_bounds(grid, &p, &mut pb).unwrap();
    surface::label_bounds(grid, &g, &mut gb).unwrap();
    for l in 0..4u8 {
        let (pm, gm): (Vec<u8>, Vec<u8>) = (
            p.iter().map(|&v| u8::from(v == l)).collect(),
            g.iter().map(|&v| u8::from(v == l)).collect(),
        );
        assert_eq!(
            surface::union(pb[l as usize], gb[l as usize]),
            surface::bounding_box(grid, &pm, &gm)
        );
        let mut s1 = vec![0.0; surface::scratch_len(grid, &pm, &gm).unwrap()];
        let want = surface::surface_distances(grid, &pm, &gm, 90.0, 1.0, &mut s1).unwrap();
        let (fp, fg) = (|i: usize| p[i] == l, |i: usize| g[i] == l);
        let b = surface::union(pb[l as usize], gb[l as usize]);
        let mut s2 = vec![0.0; surface::scratch_len_in(grid, b, &fp, &fg)];
        let got = surface::surface_distances_in(grid, b, &fp, &fg, 90.0, 1.0, &mut s2).unwrap();
        assert_eq!(got, want, "label {l}");
    }
}

/// Every label of two label maps at once equals each label's own masks (ignore label outside).
#[test]
fn every_label_of_two_maps() {
    let dims = [10, 7, 4];
    let grid = Grid::new(dims, [0.9, 1.1, 2.0]).unwrap();
    let mut next = xorshift(5);
    let p: Vec<u16> = (0..grid.voxels()).map(|_| (next() % 4) as u16).collect();
    let mut g: Vec<u16> = p
        .iter()
        .map(|&v| {
            if next().is_multiple_of(4) {
                (next() % 4) as u16
            } else {
                v
            }
        })
        .collect();
    g[3] = 9; // the ignore label
    let ignore = Some(9);
    let mut out = [Surfaces::BothEmpty; 4];
    let tol = [1.0, 0.5, 2.0, 1.5];
    let mut scratch =
        vec![
            0.0;
            surface::label_scratch_len(surface::Elements::Voxels, grid, &p, &g, ignore, 4).unwrap()
        ];
    surface::label_surface_distances(
        surface::Elements::Voxels,
        grid,
        &p,
        &g,
        ignore,
        95.0,
        &tol,
        &mut scratch,
        &mut out,
    )
    .unwrap();
    for l in 0..4u16 {
        let keep = |i: usize| g[i] != 9;
        let pm: Vec<u8> = (0..p.len())
            .map(|i| u8::from(p[i] == l && keep(i)))
            .collect();
        let gm: Vec<u8> = (0..g.len())
            .map(|i| u8::from(g[i] == l && keep(i)))
            .collect();
        let mut s = vec![0.0; surface::scratch_len(grid, &pm, &gm).unwrap()];
        let want =
            surface::surface_distances(grid, &pm, &gm, 95.0, tol[l as usize], &mut s).unwrap();
        assert_eq!(out[l as usize], want, "label {l}");
    }
    assert!(surface::label_surface_distances(
        surface::Elements::Voxels,
        grid,
        &p,
        &g,
        ignore,
        95.0,
        &tol[..3],
        &mut scratch,
        &mut out
    )
    .is_err());
}

/// The one-pass label functions equal each label measured on its own (`distances_for` with the
/// label's predicates), field for field, for voxels and surfels, in 2-D and anisotropic 3-D,
/// with an ignore label, labels above 255 (a binary search), a label absent from one map or
/// both, and false-positive islands far from the objects (which make each label's box the
/// whole image).
#[test]
fn labels_in_one_pass_equal_each_label_alone() {
    use surface::Elements;
    for (dims, spacing) in [
        ([23, 19, 1], [0.8, 1.3, 1.0]),
        ([17, 13, 9], [0.7, 0.9, 2.5]),
    ] {
        let grid = Grid::new(dims, spacing).unwrap();
        let n = grid.voxels();
        let mut next = xorshift(11 + dims[2] as u64);
        // Blocky objects, a noisy copy, islands, an ignore label.
        let labels_in = [0i64, 3, 300, 7000];
        let mut g: Vec<i64> = (0..n)
            .map(|i| {
                let (x, y) = (i % dims[0], (i / dims[0]) % dims[1]);
                labels_in[(x / 6 + y / 5) % 4]
            })
            .collect();
        let mut p = g.clone();
        for v in p.iter_mut() {
            if next().is_multiple_of(9) {
                *v = labels_in[(next() % 4) as usize];
            }
        }
        // A band of background rows (skipped whole by the passes), an island inside it.
        for i in 0..n {
            if (i / dims[0]) % dims[1] < 4 {
                g[i] = 0;
                p[i] = 0;
            }
        }
        p[dims[0] + 2] = 7000;
        p[0] = 300;
        p[n - 1] = 3;
        g[5] = -1;
        p[n / 2] = -1;
        let ignore = Some(-1);
        // 42 occurs nowhere; 7000 in both; 5 in neither.
        let labels = [3i64, 5, 42, 300, 7000];
        let tol = [1.0, 0.5, 2.0, 1.5, 0.0];
        for el in [Elements::Voxels, Elements::Surfels] {
            let need = surface::labels_scratch_len(el, grid, &p, &g, ignore, &labels).unwrap();
            let mut scratch = vec![0.0; need];
            let mut out = [Surfaces::BothEmpty; 5];
            surface::labels_surface_distances(
                el,
                grid,
                &p,
                &g,
                ignore,
                &labels,
                95.0,
                &tol,
                &mut scratch,
                &mut out,
            )
            .unwrap();
            for (j, &l) in labels.iter().enumerate() {
                let keep = |i: usize| p[i] != -1 && g[i] != -1;
                let pm = |i: usize| p[i] == l && keep(i);
                let gm = |i: usize| g[i] == l && keep(i);
                let b = surface::union(surface::bounds_of(grid, pm), surface::bounds_of(grid, gm));
                let mut s = vec![0.0; surface::scratch_len_for(el, grid, b, &pm, &gm)];
                let want =
                    surface::distances_for(el, grid, b, &pm, &gm, 95.0, tol[j], &mut s).unwrap();
                assert_eq!(out[j], want, "{dims:?} {el:?} label {l}");
            }
            // Scratch one short is an error, not a wrong number.
            let mut short = vec![0.0; need - 1];
            assert!(surface::labels_surface_distances(
                el, grid, &p, &g, ignore, &labels, 95.0, &tol, &mut short, &mut out,
            )
            .is_err());
        }
        // Labels out of order are refused.
        assert!(
            surface::labels_scratch_len(Elements::Voxels, grid, &p, &g, ignore, &[5, 3]).is_err()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Surfels on random masks: never a panic, and the invariants of the definitions.
    #[test]
    fn surfels_keep_their_invariants(
        seed in any::<u64>(),
        dx in 1usize..9, dy in 1usize..9, dz in 1usize..5,
        sx in 0.2f64..2.5, sy in 0.2f64..2.5, sz in 0.2f64..2.5,
        q in 0.0f64..100.0,
        tol in 0.0f64..3.0,
    ) {
        use dice_core::surface::Elements;
        let mut next = xorshift(seed);
        let dims = [dx, dy, dz];
        let grid = Grid::new(dims, [sx, sy, sz]).unwrap();
        let (p, t) = (random_mask(&mut next, dims, 5), random_mask(&mut next, dims, 5));
        let (pf, tf) = (|i: usize| p[i] != 0, |i: usize| t[i] != 0);
        let b = surface::union(surface::bounds_of(grid, pf), surface::bounds_of(grid, tf));
        let mut s = vec![0.0; surface::scratch_len_for(Elements::Surfels, grid, b, &pf, &tf)];
        let r = surface::distances_for(Elements::Surfels, grid, b, &pf, &tf, q, tol, &mut s).unwrap();
        if let Surfaces::Distances(d) = r {
            prop_assert!(d.pred_area > 0.0 && d.ref_area > 0.0);
            prop_assert!((0.0..=1.0).contains(&d.nsd()));
            prop_assert!(d.percentile_pred_to_ref <= d.max_pred_to_ref && d.percentile_ref_to_pred <= d.max_ref_to_pred);
            prop_assert!(d.percentile_pooled <= d.hausdorff());
            prop_assert!(d.assd() <= d.hausdorff() + 1e-12 && d.masd() <= d.hausdorff() + 1e-12);
        } else {
            let vox = surface::distances_for(Elements::Voxels, grid, b, &pf, &tf, q, tol, &mut vec![0.0; surface::scratch_len_for(Elements::Voxels, grid, b, &pf, &tf)]).unwrap();
            prop_assert_eq!(r, vox, "the same masks are empty either way");
        }
    }
}

// --- The taxicab (L1) and chessboard (L∞) distances against brute force, and MONAI's
// chessboard/taxicab Hausdorff numbers of two spheres.

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
        let mut scratch = vec![0.0; surface::scratch_len_in_norm(grid, bounds, &|i| p[i] != 0, &|i| t[i] != 0, norm)];
        let got = surface::surface_distances_in_norm(
            grid, bounds, &|i| p[i] != 0, &|i| t[i] != 0, 95.0, 1.0, norm, &mut scratch,
        ).unwrap();
        let mut scratch = vec![0.0; surface::scratch_len(grid, &p, &t).unwrap()];
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
    for (norm, want) in [(Norm::Chessboard, 1.0), (Norm::Taxicab, 3.0)] {
        let mut scratch =
            vec![
                0.0;
                surface::scratch_len_in_norm(grid, bounds, &|i| p[i] != 0, &|i| t[i] != 0, norm)
            ];
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
