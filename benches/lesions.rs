//! Connected components and lesion-wise evaluation, one thread.
//!
//! * `components`: 26-connected components of a 512³ `u8` mask of 1,000 ball-shaped lesions
//!   (`dice_suite::lesion_mask`), beside the baseline of one streaming pass that reads the mask
//!   and writes a `u32` per voxel (the traffic any labelling needs).
//! * `brats_case`: the BraTS lesion-wise Dice and HD95 of the three regions of a 240×240×155
//!   case (dice-core through `dice eval`'s library path).
//!
//! The peers (cc3d, the official BraTS 2023 metrics script) are timed on the same volumes by
//! `benches/lesions_peers.py`, which this bench runs when `DICE_PEERS_PYTHON` names a Python
//! with numpy, scipy, nibabel, pandas and cc3d (and `BRATS_METRICS` the official code).
//!
//! Run: `cargo bench --bench lesions`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dice_core::components::{self, Connectivity};
use dice_core::lesions::BratsParams;
use dice_core::surface::Grid;
use dice_suite::{lesion_mask, Rng};

fn components_512(c: &mut Criterion) {
    let n = 512;
    let mask = lesion_mask(n, 1000, 7);
    let dims = [n, n, n];
    let mut out = vec![0u32; n * n * n];
    let mut uf = vec![0u32; components::scratch_len(dims)];
    let mut g = c.benchmark_group("components_512");
    g.throughput(Throughput::Elements((n * n * n) as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("baseline_stream", |b| {
        b.iter(|| {
            for (o, &m) in out.iter_mut().zip(black_box(&mask)) {
                *o = u32::from(m);
            }
            black_box(&out);
        })
    });
    g.bench_function("dice_core", |b| {
        b.iter(|| {
            components::label(
                black_box(&mask),
                dims,
                Connectivity::TwentySix,
                &mut out,
                &mut uf,
            )
            .unwrap()
        })
    });
    g.finish();
    write_npy("/tmp/dice-bench-lesions-512.npy", &mask, [n, n, n]);
}

/// A BraTS-sized case: nested tumour labels in a 240×240×155 grid.
fn brats_volumes() -> (Vec<u8>, Vec<u8>) {
    let (nx, ny, nz) = (240usize, 240, 155);
    let mut rng = Rng::new(11);
    let mut gt = vec![0u8; nx * ny * nz];
    let mut pred = vec![0u8; nx * ny * nz];
    let ball = |v: &mut Vec<u8>, c: [f64; 3], r: f64, label: u8| {
        let lo = |k: f64| (k - r).floor().max(0.0) as usize;
        for z in lo(c[2])..((c[2] + r).ceil() as usize + 1).min(nz) {
            for y in lo(c[1])..((c[1] + r).ceil() as usize + 1).min(ny) {
                for x in lo(c[0])..((c[0] + r).ceil() as usize + 1).min(nx) {
                    let d = (x as f64 - c[0]).powi(2)
                        + (y as f64 - c[1]).powi(2)
                        + (z as f64 - c[2]).powi(2);
                    if d <= r * r {
                        v[x + nx * (y + ny * z)] = label;
                    }
                }
            }
        }
    };
    for k in 0..6 {
        let c = [
            40.0 + rng.f64() * 160.0,
            40.0 + rng.f64() * 160.0,
            30.0 + rng.f64() * 95.0,
        ];
        let r = if k == 0 { 25.0 } else { 3.0 + rng.f64() * 8.0 };
        for (v, shift, scale) in [(&mut gt, 0.0, 1.0), (&mut pred, 2.0, 0.9)] {
            let c = [c[0] + shift, c[1] - shift, c[2]];
            ball(v, c, r * scale + 3.0, 2);
            ball(v, c, r * scale, 1);
            ball(v, c, r * scale * 0.5, 3);
        }
    }
    for _ in 0..4 {
        let c = [
            20.0 + rng.f64() * 200.0,
            20.0 + rng.f64() * 200.0,
            20.0 + rng.f64() * 115.0,
        ];
        ball(&mut pred, c, 2.0, 3);
    }
    (pred, gt)
}

fn brats_case(c: &mut Criterion) {
    let (pred, gt) = brats_volumes();
    let grid = Grid::new([240, 240, 155], [1.0; 3]).unwrap();
    // As `dice eval` builds a region's masks from byte labels: one table lookup per voxel.
    let region = |v: &[u8], set: &[u8]| -> Vec<u8> {
        let mut lut = [0u8; 256];
        for &l in set {
            lut[l as usize] = 1;
        }
        v.iter().map(|&l| lut[l as usize]).collect()
    };
    let sets: [&[u8]; 3] = [&[1, 2, 3], &[1, 3], &[3]];
    let mut g = c.benchmark_group("brats_case");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("dice_three_regions", |b| {
        b.iter(|| {
            // One workspace per case, as `dice eval` keeps one.
            let mut ws = dice_cli::lesionwise::Workspace::default();
            for set in sets {
                let (p, t) = (region(&pred, set), region(&gt, set));
                black_box(
                    dice_cli::lesionwise::brats_in(&mut ws, &p, &t, grid, &BratsParams::GLI)
                        .unwrap(),
                );
            }
        })
    });
    // The whole `dice eval` evaluation of the pair (overlap metrics, regions, lesion-wise with
    // the autoPET volumes), on one thread and on the machine's two.
    let pair = {
        use dice_cli::geometry::Geometry;
        use dice_cli::{Data, Volume};
        let vol = |d: Vec<u8>| {
            let mut v = Volume::new(vec![240, 240, 155], Data::U8(d));
            v.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
            v
        };
        dice_cli::eval::align_and_interpret(
            vol(pred.clone()),
            vol(gt.clone()),
            "p",
            "g",
            &dice_cli::eval::Options::default(),
        )
        .unwrap()
    };
    for threads in [1usize, 2] {
        let opts = dice_cli::eval::Options {
            labels: Some(vec![1]),
            regions: ["WT=1,2,3", "TC=1,3", "ET=3"]
                .iter()
                .map(|r| dice_cli::lesionwise::Region::parse(r).unwrap())
                .collect(),
            lesion: Some(dice_cli::lesionwise::LesionOptions::default()),
            lesion_threads: threads,
            metrics: vec![dice_cli::eval::MetricName::Dice],
            ..dice_cli::eval::Options::default()
        };
        g.bench_function(
            format!("dice_eval_label_and_three_regions_{threads}_threads"),
            |b| b.iter(|| black_box(dice_cli::eval::evaluate(&pair, &opts, "p", "g").unwrap())),
        );
    }
    g.finish();
    for set in sets {
        let (p, t) = (region(&pred, set), region(&gt, set));
        let r = dice_cli::lesionwise::brats(&p, &t, grid, &BratsParams::GLI).unwrap();
        println!(
            "brats_case region {set:?}: lesion-wise Dice {} HD95 {} TP {} FP {} FN {}",
            r.dice, r.hd95, r.tp, r.fp, r.fn_
        );
    }
    write_npy("/tmp/dice-bench-brats-pred.npy", &pred, [240, 240, 155]);
    write_npy("/tmp/dice-bench-brats-gt.npy", &gt, [240, 240, 155]);
    if let Ok(py) = std::env::var("DICE_PEERS_PYTHON") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/lesions_peers.py");
        let out = std::process::Command::new(py).arg(script).output();
        match out {
            Ok(o) => print!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => println!("peers not run: {e}"),
        }
    } else {
        println!("peers not run: set DICE_PEERS_PYTHON (see benches/lesions_peers.py)");
    }
}

/// A `u8` volume as a NumPy file (shape [z, y, x], C order, so x is fastest as here).
fn write_npy(path: &str, v: &[u8], dims: [usize; 3]) {
    let header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {}, {}), }}",
        dims[2], dims[1], dims[0]
    );
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h);
    out.extend(v);
    let _ = std::fs::write(path, out);
}

criterion_group!(benches, components_512, brats_case);
criterion_main!(benches);
