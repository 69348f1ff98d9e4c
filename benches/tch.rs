//! The LibTorch adapter against the same loss written with tch tensor ops under autograd:
//! forward + backward on CPU, 4 194 304 and 134 217 728 elements (`[1, 4, S]` probabilities
//! against a dense binary target, MONAI's DiceLoss with smooth 1e-5), on one intra-op thread
//! and on torch's default thread count (`_1t`, `_<n>t`): the adapter runs its chunks on
//! LibTorch's pool, autograd its element-wise operations.
//!
//! Time by criterion; peak memory by running each variant once in a child process and reading
//! its peak resident set above the inputs (`VmHWM` after resetting it through
//! `/proc/self/clear_refs`).
//!
//! Run: `scripts/with-torch.sh cargo bench --features tch --bench tch`. Fresh 512 MiB tensors
//! cost as much to fault in as the loss costs to compute; `THP_MEM_ALLOC_ENABLE=1` (PyTorch's
//! switch for transparent huge pages on large CPU allocations) roughly halves that, for both
//! variants alike. The closing figures were taken both ways.

use std::hint::black_box;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use dice_tch::DiceLoss;
use tch::{Device, Kind, Tensor};

const SIZES: [i64; 2] = [1 << 22, 1 << 27];

fn data(n: i64) -> (Tensor, Tensor) {
    tch::manual_seed(0);
    let p = Tensor::rand([1, 4, n / 4], (Kind::Float, Device::Cpu));
    let g = Tensor::rand([1, 4, n / 4], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .to_kind(Kind::Float);
    (p, g)
}

/// MONAI's DiceLoss as tensor ops: autograd keeps the graph and its temporaries.
fn autograd_loss(p: &Tensor, g: &Tensor) -> Tensor {
    let dims = [2i64];
    let inter = (p * g).sum_dim_intlist(dims.as_slice(), false, Kind::Float);
    let den = p.sum_dim_intlist(dims.as_slice(), false, Kind::Float)
        + g.sum_dim_intlist(dims.as_slice(), false, Kind::Float);
    let score: Tensor = (inter * 2.0 + 1e-5) / (den + 1e-5);
    score.neg().g_add_scalar(1.0).mean(Kind::Float)
}

fn step(variant: &str, p: &Tensor, g: &Tensor) -> f64 {
    let x = p.detach().set_requires_grad(true);
    let loss = match variant {
        "adapter" => DiceLoss::new().forward(&x, g).expect("valid input"),
        _ => autograd_loss(&x, g),
    };
    loss.backward();
    let v = loss.double_value(&[]);
    let _ = black_box(x.grad());
    v
}

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// In a child process: one forward+backward, then the peak RSS above what the inputs took.
fn measure_child(variant: &str, n: i64) {
    tch::set_num_threads(1);
    let (p, g) = data(n);
    // Reset the high-water mark to the current RSS (Linux ≥ 4.0), so the peak is the step's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kb("VmRSS:");
    step(variant, &p, &g);
    let peak = status_kb("VmHWM:");
    println!("PEAK_EXTRA_KB {}", peak.saturating_sub(before));
}

fn peak_memory() {
    let exe = std::env::current_exe().unwrap();
    println!("peak memory above the inputs (one forward+backward, one thread):");
    for n in SIZES {
        let mut row = Vec::new();
        for variant in ["adapter", "autograd"] {
            let out = Command::new(&exe)
                .env("DICE_BENCH_MEMORY", variant)
                .env("DICE_BENCH_N", n.to_string())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let kb: u64 = text
                .lines()
                .find_map(|l| l.strip_prefix("PEAK_EXTRA_KB "))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            row.push(kb as f64 / 1024.0);
        }
        let input_mb = (n * 4) as f64 / (1 << 20) as f64;
        println!(
            "  n = {n:>9}: adapter {:>8.1} MiB, tch autograd {:>8.1} MiB (ratio {:.2}); one f32 tensor is {input_mb:.1} MiB",
            row[0],
            row[1],
            row[0] / row[1]
        );
    }
}

fn forward_backward(c: &mut Criterion) {
    // torch's default intra-op thread count (the machine's cores), read before any change.
    let default_threads = tch::get_num_threads();
    for n in SIZES {
        let (p, g) = data(n);
        let mut grp = c.benchmark_group("tch_forward_backward");
        grp.throughput(Throughput::Elements(n as u64));
        grp.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(if n > 1 << 24 { 20 } else { 5 }));
        let mut settings = vec![1];
        if default_threads > 1 {
            settings.push(default_threads);
        }
        for threads in settings {
            tch::set_num_threads(threads);
            for variant in ["adapter", "autograd"] {
                grp.bench_function(BenchmarkId::new(format!("{variant}_{threads}t"), n), |b| {
                    b.iter(|| step(variant, &p, &g))
                });
            }
        }
        grp.finish();
    }
    tch::set_num_threads(default_threads);
}

criterion_group!(benches, forward_backward);

fn main() {
    if let Ok(variant) = std::env::var("DICE_BENCH_MEMORY") {
        let n = std::env::var("DICE_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(SIZES[0]);
        measure_child(&variant, n);
        return;
    }
    // `cargo test --benches` runs the bench binary in test mode: check one step of each.
    if std::env::args().any(|a| a == "--test") {
        let (p, g) = data(1 << 12);
        assert!((step("adapter", &p, &g) - step("autograd", &p, &g)).abs() < 1e-5);
        return;
    }
    peak_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
