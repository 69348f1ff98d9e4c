//! Lesion-wise evaluation against the official BraTS 2023 metrics code and panoptica
//! (fixtures by `tests/golden/generate_lesions.py`), dilation against a brute-force ball, and
//! overlaps, IoU matching and unmatched volumes by hand.

#[path = "golden/lesions_fixtures.rs"]
mod fx;

use dice_core::components::{self, Connectivity};
use dice_core::lesions::{
    self, brats_label, brats_scores, match_iou, overlaps, unmatched, BratsBuffers, BratsParams,
    BratsTables, LesionWise, Overlap,
};
use dice_core::surface::{Bounds, Grid};

fn grid() -> Grid {
    // nibabel keeps the spacing as float32, which the official code multiplies with.
    let s = fx::SPACING.map(|v| v as f32 as f64);
    Grid::new([fx::NX[0], fx::NY[0], fx::NZ[0]], s).unwrap()
}

/// Expands the fixtures' (value, run) pairs.
fn volume(rle: &[u32]) -> Vec<u8> {
    rle.chunks(2)
        .flat_map(|c| std::iter::repeat_n(c[0] as u8, c[1] as usize))
        .collect()
}

fn region(labels: &[u8], which: &str) -> Vec<u8> {
    let set: &[u8] = match which {
        "WT" => &[1, 2, 3],
        "TC" => &[1, 3],
        _ => &[3],
    };
    labels.iter().map(|l| u8::from(set.contains(l))).collect()
}

/// The whole pipeline with growing buffers, as an adapter would run it.
fn run(
    pred: &[u8],
    gt: &[u8],
    grid: Grid,
    params: &BratsParams,
) -> (LesionWise, Vec<lesions::Lesion>) {
    let n = pred.len();
    let (mut pl, mut ll) = (vec![0u32; n], vec![0u32; n]);
    let mut dil = vec![0u8; n];
    let mut uf = vec![0u32; components::scratch_len(grid.dims)];
    let mut bufs = BratsBuffers {
        pred_labels: &mut pl,
        lesion_labels: &mut ll,
        dilated: &mut dil,
        union_find: &mut uf,
    };
    let (np, nl) = brats_label(pred, gt, grid, params, &mut bufs).unwrap();
    let empty = Bounds {
        lo: [0; 3],
        hi: [0; 3],
    };
    let mut touching = vec![Overlap::default(); (np + nl) as usize + 1];
    let mut surface = vec![0.0; 1024];
    loop {
        let (mut ps, mut pb) = (vec![0u64; np as usize + 1], vec![empty; np as usize + 1]);
        let (mut ls, mut lb) = (vec![0u64; nl as usize + 1], vec![empty; nl as usize + 1]);
        let mut les = vec![lesions::Lesion::default(); nl as usize];
        let mut t = BratsTables {
            touching: &mut touching,
            pred_sizes: &mut ps,
            pred_boxes: &mut pb,
            lesion_sizes: &mut ls,
            lesion_boxes: &mut lb,
            lesions: &mut les,
            surface: &mut surface,
        };
        match brats_scores(pred, gt, grid, params, (&pl, &ll), (np, nl), &mut t) {
            Ok(r) => return (r, les),
            Err(dice_core::DiceError::LengthMismatch {
                expected, found, ..
            }) if found == surface.len() => {
                surface = vec![0.0; expected];
            }
            Err(dice_core::DiceError::LengthMismatch { found, .. }) if found == touching.len() => {
                touching = vec![Overlap::default(); 2 * touching.len()];
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
fn matches_the_official_brats_2023_code() {
    let grid = grid();
    let cases = [
        (volume(&fx::PRED_0), volume(&fx::GT_0)),
        (volume(&fx::PRED_1), volume(&fx::GT_1)),
        (volume(&fx::PRED_2), volume(&fx::GT_2)),
    ];
    let table: [[(&[f64], &[f64]); 3]; 6] = [
        [
            (&fx::BRATS_GLI_0_WT, &fx::LESIONS_GLI_0_WT),
            (&fx::BRATS_GLI_0_TC, &fx::LESIONS_GLI_0_TC),
            (&fx::BRATS_GLI_0_ET, &fx::LESIONS_GLI_0_ET),
        ],
        [
            (&fx::BRATS_MET_0_WT, &fx::LESIONS_MET_0_WT),
            (&fx::BRATS_MET_0_TC, &fx::LESIONS_MET_0_TC),
            (&fx::BRATS_MET_0_ET, &fx::LESIONS_MET_0_ET),
        ],
        [
            (&fx::BRATS_GLI_1_WT, &fx::LESIONS_GLI_1_WT),
            (&fx::BRATS_GLI_1_TC, &fx::LESIONS_GLI_1_TC),
            (&fx::BRATS_GLI_1_ET, &fx::LESIONS_GLI_1_ET),
        ],
        [
            (&fx::BRATS_MET_1_WT, &fx::LESIONS_MET_1_WT),
            (&fx::BRATS_MET_1_TC, &fx::LESIONS_MET_1_TC),
            (&fx::BRATS_MET_1_ET, &fx::LESIONS_MET_1_ET),
        ],
        [
            (&fx::BRATS_GLI_2_WT, &fx::LESIONS_GLI_2_WT),
            (&fx::BRATS_GLI_2_TC, &fx::LESIONS_GLI_2_TC),
            (&fx::BRATS_GLI_2_ET, &fx::LESIONS_GLI_2_ET),
        ],
        [
            (&fx::BRATS_MET_2_WT, &fx::LESIONS_MET_2_WT),
            (&fx::BRATS_MET_2_TC, &fx::LESIONS_MET_2_TC),
            (&fx::BRATS_MET_2_ET, &fx::LESIONS_MET_2_ET),
        ],
    ];
    for (row, regions) in table.iter().enumerate() {
        let (pred, gt) = (&cases[row / 2].0, &cases[row / 2].1);
        let params = if row % 2 == 0 {
            BratsParams::GLI
        } else {
            BratsParams::MET
        };
        for (k, name) in ["WT", "TC", "ET"].iter().enumerate() {
            let (want, want_lesions) = regions[k];
            let (p, g) = (region(pred, name), region(gt, name));
            let (r, les) = run(&p, &g, grid, &params);
            let what = format!(
                "case {} {} {name}",
                row / 2,
                if row % 2 == 0 { "GLI" } else { "MET" }
            );
            assert_eq!(
                (r.tp as f64, r.fp as f64, r.fn_ as f64),
                (want[0], want[1], want[2]),
                "{what}: TP/FP/FN"
            );
            assert!(
                close(r.dice, want[3]),
                "{what}: lesion-wise Dice {} vs {}",
                r.dice,
                want[3]
            );
            assert!(
                close(r.hd95, want[4]),
                "{what}: lesion-wise HD95 {} vs {}",
                r.hd95,
                want[4]
            );
            // Per lesion: (volume, Dice, HD95, matched components); the official numbering
            // follows NumPy's z-fastest raster order, ours x-fastest, so compare sorted.
            let mut ours: Vec<[f64; 4]> = les
                .iter()
                .map(|l| [l.volume, l.dice, l.hd95, f64::from(l.matched)])
                .collect();
            let mut theirs: Vec<[f64; 4]> = want_lesions
                .chunks(5)
                .map(|c| [c[1], c[2], c[3], c[4]])
                .collect();
            let key = |a: &[f64; 4], b: &[f64; 4]| a.partial_cmp(b).unwrap();
            ours.sort_by(key);
            theirs.sort_by(key);
            assert_eq!(ours.len(), theirs.len(), "{what}: lesions");
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(
                    a.iter().zip(b).all(|(x, y)| close(*x, *y)),
                    "{what}: lesion {a:?} vs {b:?}"
                );
            }
        }
    }
}

/// panoptica's IoU matching (threshold 0.5) of the whole tumour's 26-connected components.
#[test]
fn matches_panoptica() {
    let grid = grid();
    let dims = grid.dims;
    let n = dims[0] * dims[1] * dims[2];
    for (pred, gt, want) in [
        (&fx::PRED_0[..], &fx::GT_0[..], fx::PANOPTICA_0),
        (&fx::PRED_1[..], &fx::GT_1[..], fx::PANOPTICA_1),
        (&fx::PRED_2[..], &fx::GT_2[..], fx::PANOPTICA_2),
    ] {
        let (p, g) = (region(&volume(pred), "WT"), region(&volume(gt), "WT"));
        let mut uf = vec![0u32; components::scratch_len(dims)];
        let (mut pl, mut gl) = (vec![0u32; n], vec![0u32; n]);
        let np = components::label(&p, dims, Connectivity::TwentySix, &mut pl, &mut uf).unwrap();
        let ng = components::label(&g, dims, Connectivity::TwentySix, &mut gl, &mut uf).unwrap();
        let empty = Bounds {
            lo: [0; 3],
            hi: [0; 3],
        };
        let (mut ps, mut pb) = (vec![0u64; np as usize + 1], vec![empty; np as usize + 1]);
        let (mut gs, mut gb) = (vec![0u64; ng as usize + 1], vec![empty; ng as usize + 1]);
        lesions::component_extents(&pl, dims, np, &mut ps, &mut pb).unwrap();
        lesions::component_extents(&gl, dims, ng, &mut gs, &mut gb).unwrap();
        let mut pairs = vec![Overlap::default(); 64];
        let k = overlaps(&gl, &pl, &mut pairs).unwrap();
        let d = match_iou(&pairs[..k], &gs, &ps, 0.5).unwrap();
        assert_eq!([d.tp as f64, d.fp as f64, d.fn_ as f64], want[..3]);
        assert!(
            close(d.panoptic_quality().unwrap(), want[3]),
            "PQ {:?} vs {}",
            d.panoptic_quality(),
            want[3]
        );
        assert!(close(d.segmentation_quality().unwrap(), want[4]));
        assert!(close(d.recognition_quality().unwrap(), want[5]));
    }
}

/// scipy's binary_dilation with generate_binary_structure(3, 2) iterated k times reaches the
/// voxels within `max(|d|) ≤ k` and `|d|₁ ≤ 2k` of the mask.
#[test]
fn dilation_is_the_iterated_neighbourhood() {
    let dims = [11, 9, 7];
    let n = 11 * 9 * 7;
    let mut mask = vec![0u8; n];
    mask[5 + 11 * (4 + 9 * 3)] = 1;
    mask[1 + 11 * (1 + 9)] = 1;
    for k in 0..4u32 {
        let mut out = vec![0u8; n];
        lesions::dilate(&mask, dims, k, Connectivity::Eighteen, &mut out).unwrap();
        for (i, &got) in out.iter().enumerate() {
            let c = [i % 11, (i / 11) % 9, i / 99];
            let want = mask.iter().enumerate().any(|(j, &m)| {
                let d = [j % 11, (j / 11) % 9, j / 99];
                let diff: Vec<usize> = (0..3).map(|a| c[a].abs_diff(d[a])).collect();
                m != 0
                    && diff.iter().all(|&v| v <= k as usize)
                    && diff.iter().sum::<usize>() <= 2 * k as usize
            });
            assert_eq!(got != 0, want, "k {k} voxel {c:?}");
        }
    }
}

/// Random masks, every connectivity and up to four steps: the frontier dilation equals the
/// definition (k applications of the neighbourhood).
#[test]
fn dilation_of_random_masks_equals_repeated_neighbourhoods() {
    let dims = [9, 8, 6];
    let n = 9 * 8 * 6;
    let mut s = 12345u64;
    for conn in [
        Connectivity::Six,
        Connectivity::Eighteen,
        Connectivity::TwentySix,
    ] {
        for density in [0.02, 0.1] {
            let mask: Vec<u8> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    u8::from(((s >> 11) as f64 / (1u64 << 53) as f64) < density)
                })
                .collect();
            let mut want = mask.clone();
            for k in 0..5u32 {
                let mut out = vec![0u8; n];
                lesions::dilate(&mask, dims, k, conn, &mut out).unwrap();
                assert_eq!(out, want, "{conn:?} k {k}");
                // One more application of the neighbourhood, by brute force.
                let prev = want.clone();
                for (i, w) in want.iter_mut().enumerate() {
                    let c = [i % 9, (i / 9) % 8, i / 72];
                    *w = u8::from((0..n).any(|j| {
                        let d = [j % 9, (j / 9) % 8, j / 72];
                        let diff: Vec<usize> = (0..3).map(|a| c[a].abs_diff(d[a])).collect();
                        let nz = diff.iter().filter(|&&v| v != 0).count();
                        let touch = diff.iter().all(|&v| v <= 1)
                            && match conn {
                                Connectivity::Six => nz <= 1,
                                Connectivity::Eighteen => nz <= 2,
                                _ => true,
                            };
                        prev[j] != 0 && touch
                    }));
                }
            }
        }
    }
}

#[test]
fn overlaps_grow_and_unmatched_volumes() {
    // Reference components 1, 2, 3; predicted 1, 2; 1–1 overlap 2 voxels, 2 touches nothing.
    let a = [1u32, 1, 0, 2, 2, 0, 3, 0];
    let b = [1u32, 1, 1, 0, 0, 2, 0, 0];
    let mut tiny: [Overlap; 0] = [];
    assert!(overlaps(&a, &b, &mut tiny).is_err());
    let mut out = [Overlap::default(); 4];
    let k = overlaps(&a, &b, &mut out).unwrap();
    assert_eq!(
        &out[..k],
        &[Overlap {
            a: 1,
            b: 1,
            voxels: 2
        }]
    );
    let u = unmatched(&mut out[..k], &[0, 2, 2, 1], &[0, 3, 1]);
    assert_eq!(
        (u.fn_components, u.fn_voxels, u.fp_components, u.fp_voxels),
        (2, 3, 1, 1)
    );
    assert!(match_iou(&out[..k], &[0, 2, 2, 1], &[0, 3, 1], 0.3).is_err());
    let d = match_iou(&out[..k], &[0, 2, 2, 1], &[0, 3, 1], 0.5).unwrap();
    // IoU 2/3 > 0.5: one match.
    assert_eq!((d.tp, d.fp, d.fn_), (1, 1, 2));
    assert!(close(d.segmentation_quality().unwrap(), 2.0 / 3.0));
    assert!(close(d.recognition_quality().unwrap(), 1.0 / 2.5));
}
