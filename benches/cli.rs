//! `dice eval` on a 256³ u8 label pair (8 labels): decoding (`.nii.gz` and `.nii`) and
//! evaluation (the label scan and every label's counts in one pass) measured separately, in
//! voxels per second of one volume pair. (Decoding in a loop reuses freed buffers differently
//! from one run of the binary, which faults every page in: time the binary for that.)
//!
//! Run: `cargo bench --bench cli`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dice_cli::eval::{self, Options};
use dice_cli::formats::{self, nifti};
use dice_cli::geometry::Geometry;
use dice_cli::{Data, Volume};
use dice_suite::label_volumes;

fn files() -> (PathBuf, usize) {
    let dir = std::env::temp_dir().join("dice-bench-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let d = 256;
    let (p, g) = label_volumes(d, 8, 11);
    let vol = |v| {
        let mut vol = Volume::new(vec![d, d, d], Data::U8(v));
        vol.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
        vol
    };
    let (p, g) = (vol(p), vol(g));
    for ext in ["nii", "nii.gz"] {
        nifti::write(&dir.join(format!("p.{ext}")), &p).unwrap();
        nifti::write(&dir.join(format!("g.{ext}")), &g).unwrap();
    }
    (dir, d * d * d)
}

fn bench(c: &mut Criterion) {
    let (dir, voxels) = files();
    let mut grp = c.benchmark_group("dice_eval_256");
    grp.throughput(Throughput::Elements(voxels as u64));
    grp.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for ext in ["nii.gz", "nii"] {
        let (pp, gp) = (dir.join(format!("p.{ext}")), dir.join(format!("g.{ext}")));
        grp.bench_function(format!("decode_pair_{ext}"), |b| {
            b.iter(|| black_box((formats::read(&pp).unwrap(), formats::read(&gp).unwrap())))
        });
    }
    let p = formats::read(&dir.join("p.nii")).unwrap();
    let g = formats::read(&dir.join("g.nii")).unwrap();
    let opts = Options::default();
    // Geometry check and value interpretation (a move for u8 maps), done once; then the label
    // scan and every label's counts, measured.
    let pair = eval::align_and_interpret(p, g, "p", "g", &opts).unwrap();
    grp.bench_function("evaluate_pair", |b| {
        b.iter(|| black_box(eval::evaluate(&pair, &opts, "p", "g").unwrap()))
    });
    grp.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
