//! Surface metrics of eight organ-like labels (`dice_suite::organ_volumes`) through `dice eval`'s
//! library path, one thread: Dice, Hausdorff, HD95, ASSD, MASD and NSD@1 mm for every label of
//! a 256³ and a 512³ `u8` pair (1 mm voxels). Beside it, the distance transform alone on the
//! largest label's box against three streaming read-write passes over the same `f64` box (the
//! memory traffic the three separable passes cannot avoid), in voxels per second.
//!
//! Run: `cargo bench --bench surface`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dice_cli::eval::{self, MetricName, Options};
use dice_cli::geometry::Geometry;
use dice_cli::surfaces::{SurfaceOptions, Tolerance};
use dice_cli::{Data, Volume};
use dice_core::surface;
use dice_suite::organ_volumes;

fn pair(n: usize) -> eval::Pair {
    let (p, g) = organ_volumes(n);
    let vol = |d: Vec<u8>| {
        let mut v = Volume::new(vec![n, n, n], Data::U8(d));
        v.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
        v
    };
    eval::align_and_interpret(vol(p), vol(g), "p", "g", &Options::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    let opts = Options {
        metrics: vec![
            MetricName::Dice,
            MetricName::Hd,
            MetricName::Hd95,
            MetricName::Assd,
            MetricName::Masd,
            MetricName::Nsd,
        ],
        surface: SurfaceOptions {
            tolerance: Some(Tolerance::All(1.0)),
            ..SurfaceOptions::default()
        },
        ..Options::default()
    };
    let mut grp = c.benchmark_group("surface_8_labels");
    grp.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for n in [256usize, 512] {
        let pr = pair(n);
        grp.throughput(Throughput::Elements((n * n * n) as u64));
        grp.bench_function(format!("all_metrics_{n}"), |b| {
            b.iter(|| black_box(eval::evaluate(&pr, &opts, "p", "g").unwrap()))
        });
    }
    grp.finish();

    // The distance transform of the liver's box (the largest label) at 512³ against three
    // read-write streaming passes over an f64 buffer of the same size.
    let n = 512;
    let (_, g) = organ_volumes(n);
    let grid = surface::Grid::new([n, n, n], [1.0; 3]).unwrap();
    let mut boxes = [None; 9];
    surface::label_bounds(grid, &g, &mut boxes).unwrap();
    let b = boxes[1].unwrap();
    let d = b.dims();
    let voxels = b.voxels();
    let mut out = vec![0.0f64; voxels];
    let mut line = vec![0.0f64; surface::line_scratch_len(d)];
    let mut grp = c.benchmark_group("distance_transform_liver_box_512");
    grp.throughput(Throughput::Elements(voxels as u64));
    grp.sample_size(10).measurement_time(Duration::from_secs(5));
    let at = |i: usize| {
        let (x, y, z) = (i % d[0], (i / d[0]) % d[1], i / (d[0] * d[1]));
        g[(b.lo[0] + x) + n * ((b.lo[1] + y) + n * (b.lo[2] + z))] == 1
    };
    grp.bench_function("edt", |bch| {
        bch.iter(|| {
            surface::squared_distance_transform(d, [1.0; 3], at, &mut out, &mut line).unwrap()
        })
    });
    grp.bench_function("three_streaming_passes_baseline", |bch| {
        bch.iter(|| {
            for k in 0..3 {
                for v in out.iter_mut() {
                    *v = black_box(*v) * 0.5 + k as f64;
                }
            }
            black_box(&out);
        })
    });
    grp.finish();
    eprintln!("liver box: {:?} = {voxels} voxels", d);
}

criterion_group!(benches, bench);
criterion_main!(benches);
