//! The surface metrics of dice-tch equal dice-core's on each sample's label masks, with
//! MONAI's parameter names; spacing follows the tensor's axis order; what is not supported is
//! refused.

use dice_core::surface::{self, Grid, PercentileDefinition, SurfaceEmptyPolicy, Surfaces};
use dice_tch::{DistanceKind, EmptyValue, SurfaceDiceMetric, SurfaceDistance};
use tch::{Kind, Tensor};

const H: usize = 12;
const W: usize = 10;

fn maps() -> (Vec<i64>, Vec<i64>) {
    let at = |s: usize, y: usize, x: usize, shift: f64| -> i64 {
        let (yf, xf) = (y as f64 - 5.5 - shift, x as f64 - 4.0 - s as f64);
        if yf * yf + xf * xf < 9.0 {
            1
        } else if y > 8 && x < 4 + s {
            2
        } else {
            0
        }
    };
    let mut p = Vec::new();
    let mut g = Vec::new();
    for s in 0..2 {
        for y in 0..H {
            for x in 0..W {
                p.push(at(s, y, x, 0.8));
                g.push(at(s, y, x, 0.0));
            }
        }
    }
    (p, g)
}

/// The core's result for sample `s`, class `c`, with the tensor's `[H, W]` spacing `(sy, sx)`.
fn core(p: &[i64], g: &[i64], s: usize, c: i64, sy: f64, sx: f64, tol: f64) -> Surfaces {
    let grid = Grid::new([W, H, 1], [sx, sy, 1.0]).unwrap();
    let r = s * H * W..(s + 1) * H * W;
    let pm: Vec<u8> = p[r.clone()].iter().map(|&v| u8::from(v == c)).collect();
    let gm: Vec<u8> = g[r].iter().map(|&v| u8::from(v == c)).collect();
    let mut scratch = vec![0.0; surface::scratch_len(grid, &pm, &gm).unwrap()];
    surface::surface_distances(grid, &pm, &gm, 95.0, tol, &mut scratch).unwrap()
}

#[test]
fn distances_equal_the_core_per_sample_and_class() {
    let (p, g) = maps();
    let pt = Tensor::from_slice(&p).view([2, H as i64, W as i64]);
    let gt = Tensor::from_slice(&g).view([2, H as i64, W as i64]);
    let (sy, sx) = (2.0, 0.5);
    let hd95 = SurfaceDistance::hausdorff()
        .percentile(95.0)
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    let hd = SurfaceDistance::hausdorff()
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    let directed = SurfaceDistance::hausdorff()
        .directed(true)
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    let asd = SurfaceDistance::average()
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    let masd = SurfaceDistance::average()
        .kind(DistanceKind::MeanOfDirectedMeans)
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    let nsd = SurfaceDiceMetric::new(&[1.0, 2.0])
        .num_classes(3)
        .spacing(&[sy, sx])
        .compute(&pt, &gt)
        .unwrap();
    for s in 0..2 {
        for c in 1..3 {
            let Surfaces::Distances(d) = core(&p, &g, s, c as i64, sy, sx, [0.0, 1.0, 2.0][c])
            else {
                panic!()
            };
            let k = c - 1; // background left out, as MONAI's default
            assert_eq!(hd.per_sample[s][k], Some(d.hausdorff()));
            assert_eq!(
                hd95.per_sample[s][k],
                Some(d.percentile_hausdorff(PercentileDefinition::MaxDirected))
            );
            assert_eq!(directed.per_sample[s][k], Some(d.max_pred_to_ref));
            assert_eq!(asd.per_sample[s][k], Some(d.assd()));
            assert_eq!(masd.per_sample[s][k], Some(d.masd()));
            assert_eq!(nsd.per_sample[s][k], Some(d.nsd()));
        }
    }
    assert_eq!(hd.per_class.len(), 2);
    // MONAI's use_subvoxels: surfels with areas, as dice-core's Elements::Surfels.
    let sub = SurfaceDiceMetric::new(&[1.0, 2.0])
        .num_classes(3)
        .spacing(&[sy, sx])
        .use_subvoxels(true)
        .compute(&pt, &gt)
        .unwrap();
    for s in 0..2 {
        for c in 1..3usize {
            let grid = Grid::new([W, H, 1], [sx, sy, 1.0]).unwrap();
            let r = s * H * W..(s + 1) * H * W;
            let pm: Vec<u8> = p[r.clone()]
                .iter()
                .map(|&v| u8::from(v == c as i64))
                .collect();
            let gm: Vec<u8> = g[r].iter().map(|&v| u8::from(v == c as i64)).collect();
            let (pf, gf) = (|i: usize| pm[i] != 0, |i: usize| gm[i] != 0);
            let b = surface::bounding_box(grid, &pm, &gm);
            let el = surface::Elements::Surfels;
            let mut scratch = vec![0.0; surface::scratch_len_for(el, grid, b, &pf, &gf)];
            let Surfaces::Distances(d) = surface::distances_for(
                el,
                grid,
                b,
                &pf,
                &gf,
                95.0,
                [0.0, 1.0, 2.0][c],
                &mut scratch,
            )
            .unwrap() else {
                panic!()
            };
            assert_eq!(sub.per_sample[s][c - 1], Some(d.nsd()));
        }
    }
    assert_eq!(hd.mean.defined, 4);
    // Scores [N, C, H, W] are reduced by argmax, as DiceMetric does.
    let scores = gt.one_hot(3).permute([0, 3, 1, 2]).to_kind(Kind::Float);
    let same = SurfaceDistance::hausdorff()
        .spacing(&[sy, sx])
        .compute(&scores, &gt)
        .unwrap();
    assert!(same.per_sample.iter().flatten().all(|v| *v == Some(0.0)));
}

#[test]
fn empty_masks_and_refusals() {
    let (p, mut g) = maps();
    // Class 2 absent from the reference of sample 0.
    for v in g[..H * W].iter_mut() {
        if *v == 2 {
            *v = 0;
        }
    }
    let pt = Tensor::from_slice(&p).view([2, H as i64, W as i64]);
    let gt = Tensor::from_slice(&g).view([2, H as i64, W as i64]);
    let monai = SurfaceDistance::hausdorff()
        .num_classes(3)
        .empty_policy(SurfaceEmptyPolicy::MONAI)
        .compute(&pt, &gt)
        .unwrap();
    assert_eq!(monai.per_sample[0][1], Some(f64::INFINITY));
    let default = SurfaceDistance::hausdorff()
        .num_classes(3)
        .compute(&pt, &gt)
        .unwrap();
    let diagonal = ((H - 1) as f64).hypot((W - 1) as f64);
    assert_eq!(default.per_sample[0][1], Some(diagonal));
    let nsd = SurfaceDiceMetric::new(&[1.0, 1.0])
        .empty(EmptyValue::Nan)
        .compute(&pt, &gt)
        .unwrap();
    assert_eq!(nsd.per_sample[0][1], Some(0.0));
    assert!(SurfaceDistance::hausdorff()
        .distance_metric("chessboard")
        .num_classes(3)
        .compute(&pt, &gt)
        .is_err());
    assert!(SurfaceDistance::hausdorff()
        .num_classes(3)
        .spacing(&[1.0])
        .compute(&pt, &gt)
        .is_err());
    assert!(SurfaceDiceMetric::new(&[1.0])
        .num_classes(3)
        .compute(&pt, &gt)
        .is_err());
    assert!(SurfaceDistance::hausdorff()
        .num_classes(3)
        .compute(&pt, &gt.to_kind(Kind::Float))
        .is_err());
    assert!(
        SurfaceDistance::hausdorff().compute(&pt, &gt).is_err(),
        "label maps need num_classes"
    );
}
