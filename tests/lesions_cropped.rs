//! `dice eval` crops each pair to the box of its foreground (grown by the reference's
//! dilation) before the lesion-wise evaluation. These tests check that the crop changes
//! nothing: every lesion's Dice and HD95, the counts and the region's scores equal dice-core's
//! on the whole grid, for random sparse volumes with lesions on the grid's faces and corners,
//! thin (one-slice) lesions, 2-D grids and empty masks.

use dice_cli::lesionwise::{values, LesionOptions, Matching};
use dice_core::components;
use dice_core::lesions::{self, BratsBuffers, BratsParams, BratsTables, Lesion, Overlap};
use dice_core::surface::{self, Bounds, Grid};
use dice_suite::Rng;

/// dice-core's BraTS evaluation on the whole grid, with generous buffers.
fn whole_grid(
    pred: &[u8],
    reference: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> (lesions::LesionWise, Vec<Lesion>) {
    let n = grid.voxels();
    let (mut pl, mut ll, mut dil) = (vec![0u32; n], vec![0u32; n], vec![0u8; n]);
    let mut uf = vec![0u32; components::scratch_len(grid.dims)];
    let (np, nl) = lesions::brats_label(
        pred,
        reference,
        grid,
        params,
        &mut BratsBuffers {
            pred_labels: &mut pl,
            lesion_labels: &mut ll,
            dilated: &mut dil,
            union_find: &mut uf,
        },
    )
    .unwrap();
    let nothing = Bounds {
        lo: [0; 3],
        hi: [0; 3],
    };
    let mut touching = vec![Overlap::default(); 4 * (np + nl) as usize + 16];
    let (mut ps, mut pb) = (vec![0u64; np as usize + 1], vec![nothing; np as usize + 1]);
    let (mut ls, mut lb) = (vec![0u64; nl as usize + 1], vec![nothing; nl as usize + 1]);
    let mut les = vec![Lesion::default(); nl as usize];
    let mut scratch = vec![0.0; 4 * (n + 64 * 64 * 8) + 1024];
    let r = lesions::brats_scores(
        pred,
        reference,
        grid,
        params,
        (&pl, &ll),
        (np, nl),
        &mut BratsTables {
            touching: &mut touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut scratch,
        },
    )
    .unwrap();
    (r, les)
}

/// Random balls and boxes, some touching the grid's faces, some one slice thick.
fn sparse(rng: &mut Rng, dims: [usize; 3], shapes: usize) -> Vec<u8> {
    let mut v = vec![0u8; dims.iter().product()];
    for _ in 0..shapes {
        let c: [usize; 3] = std::array::from_fn(|k| match rng.below(4) {
            0 => 0,
            1 => dims[k] - 1,
            _ => rng.below(dims[k] as u64) as usize,
        });
        let r: [usize; 3] = std::array::from_fn(|k| {
            if k == 2 && rng.below(3) == 0 {
                0
            } else {
                rng.below(4) as usize
            }
        });
        for z in c[2].saturating_sub(r[2])..(c[2] + r[2] + 1).min(dims[2]) {
            for y in c[1].saturating_sub(r[1])..(c[1] + r[1] + 1).min(dims[1]) {
                for x in c[0].saturating_sub(r[0])..(c[0] + r[0] + 1).min(dims[0]) {
                    v[x + dims[0] * (y + dims[1] * z)] = 1;
                }
            }
        }
    }
    v
}

#[test]
fn cropping_changes_no_lesion_wise_number() {
    let mut rng = Rng::new(31);
    let mut ws = dice_cli::lesionwise::Workspace::default();
    let (mut matched, mut flat_hd) = (0, 0);
    for case in 0..300 {
        let dims = match case % 5 {
            0 => [17, 13, 1],
            _ => [
                8 + rng.below(40) as usize,
                8 + rng.below(40) as usize,
                2 + rng.below(30) as usize,
            ],
        };
        let spacing = [0.5 + rng.f64(), 0.5 + rng.f64(), 0.5 + 3.0 * rng.f64()];
        let grid = Grid::new(dims, spacing).unwrap();
        let (np, nr) = (rng.below(5) as usize, rng.below(5) as usize);
        let reference = sparse(&mut rng, dims, nr);
        // The reference shifted by one voxel along x (most lesions match), plus false positives.
        let mut pred = sparse(&mut rng, dims, np);
        for (i, &r) in reference.iter().enumerate() {
            if r != 0 && (i + 1) % dims[0] != 0 && rng.below(8) != 0 {
                pred[i + 1] = 1;
            }
        }
        let params = match case % 3 {
            0 => BratsParams::GLI,
            1 => BratsParams::MEN,
            _ => BratsParams {
                dilation: 0,
                min_volume: 0.0,
                ..BratsParams::MET
            },
        };
        let (want, want_lesions) = whole_grid(&pred, &reference, grid, &params);
        let (got, got_lesions) =
            dice_cli::lesionwise::brats_in(&mut ws, &pred, &reference, grid, &params).unwrap();
        assert_eq!(got, want, "case {case}: dims {dims:?}");
        assert_eq!(got_lesions, want_lesions, "case {case}: dims {dims:?}");
        // Every lesion-wise column (both matchings) is the same with the case embedded at an
        // offset in a larger empty grid.
        let off = [1 + rng.below(5) as usize, rng.below(3) as usize, 2];
        let big = [dims[0] + off[0] + 3, dims[1] + off[1], dims[2] + off[2] + 1];
        let embed = |v: &[u8]| {
            let mut out = vec![0u8; big.iter().product()];
            for (i, &x) in v.iter().enumerate() {
                let c = [
                    i % dims[0],
                    (i / dims[0]) % dims[1],
                    i / (dims[0] * dims[1]),
                ];
                out[c[0] + off[0] + big[0] * (c[1] + off[1] + big[1] * (c[2] + off[2]))] = x;
            }
            out
        };
        if dims[2] > 1 {
            let big_grid = Grid::new(big, spacing).unwrap();
            for matching in [Matching::Dilation, Matching::Iou] {
                let opts = LesionOptions {
                    matching,
                    brats: params,
                    ..LesionOptions::default()
                };
                let small = values(&mut ws, &pred, &reference, grid, &opts).unwrap();
                let large =
                    values(&mut ws, &embed(&pred), &embed(&reference), big_grid, &opts).unwrap();
                assert_eq!(small, large, "case {case}: {matching:?}");
            }
        }
        for l in &got_lesions {
            matched += usize::from(l.matched > 0);
            flat_hd += usize::from(l.matched > 0 && dims[2] > 1 && l.hd95 > 0.0);
        }
    }
    // The cases exercise matched lesions with non-zero distances, not only empty ones.
    assert!(
        matched > 200 && flat_hd > 50,
        "{matched} matched, {flat_hd} with HD95 > 0"
    );
}

#[test]
fn bounds_grown_and_crop() {
    let grid = Grid::new([10, 8, 6], [1.0; 3]).unwrap();
    let b = Bounds {
        lo: [2, 0, 5],
        hi: [4, 3, 6],
    };
    // Clamped to the grid, and a one-slice box keeps two slices on a 3-D grid.
    assert_eq!(
        b.grown(1, grid),
        Bounds {
            lo: [1, 0, 4],
            hi: [5, 4, 6],
        }
    );
    assert_eq!(
        b.grown(0, grid),
        Bounds {
            lo: [2, 0, 4],
            hi: [4, 3, 6],
        }
    );
    let flat = Grid::new([10, 8, 1], [1.0; 3]).unwrap();
    let f = Bounds {
        lo: [2, 2, 0],
        hi: [3, 3, 1],
    };
    assert_eq!(f.grown(0, flat), f);
    let src: Vec<u32> = (0..480).collect();
    let mut out = vec![0u32; b.voxels()];
    surface::crop(&src, grid.dims, b, &mut out).unwrap();
    assert_eq!(out, [402, 403, 412, 413, 422, 423]);
    // A box leaving the volume and a wrong output size are errors, not panics.
    let outside = Bounds {
        lo: [0; 3],
        hi: [11, 1, 1],
    };
    assert!(surface::crop(&src, grid.dims, outside, &mut [0u32; 11]).is_err());
    assert!(surface::crop(&src, grid.dims, b, &mut [0u32; 5]).is_err());
    assert!(surface::crop(&src[1..], grid.dims, b, &mut out).is_err());
    // The row-wise bounding box equals the voxel-wise one.
    let mut rng = Rng::new(5);
    for _ in 0..200 {
        let a: Vec<u8> = (0..480).map(|_| u8::from(rng.below(60) == 0)).collect();
        let c: Vec<u8> = (0..480).map(|_| u8::from(rng.below(90) == 0)).collect();
        let want = surface::bounds_of(grid, |i| a[i] | c[i] != 0);
        assert_eq!(surface::bounding_box(grid, &a, &c), want);
    }
}
