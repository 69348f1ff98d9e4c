//! dice-core speed against the memory-bandwidth limit, one thread, f32.
//!
//! Every group measures, beside the kernel under test, the baseline: the dot product `p·g`
//! over the same two f32 arrays, written as fast as this machine allows (it reads the same 8
//! bytes per element, so no kernel reading both arrays can beat it). Throughput is in
//! elements (or voxels) per second.
//!
//! Run: `cargo bench --bench core` (`-- <group>` for one group). Sizes: 65 536 (in cache),
//! 4 194 304 (last-level cache or DRAM) and 134 217 728 (DRAM, 512³).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dice_core::hard::{self, Confusion};
use dice_core::{score, Moment, Shape, SoftInput, SoftLoss, SoftStats, Target};
use dice_suite::{label_volumes, random_pair_f32};

/// The bandwidth baseline: Σ p·g with as many independent accumulators as the core needs.
mod baseline {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    pub fn dot(p: &[f32], g: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was detected just above.
                return unsafe { dot_avx512(p, g) };
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: AVX2 and FMA were detected just above.
                return unsafe { dot_avx2(p, g) };
            }
        }
        p.iter().zip(g).map(|(a, b)| a * b).sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_avx512(p: &[f32], g: &[f32]) -> f32 {
        let n = p.len().min(g.len());
        let head = p.as_ptr().align_offset(64).min(n);
        let mut s: f32 = p[..head].iter().zip(&g[..head]).map(|(a, b)| a * b).sum();
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut i = head;
        while i + 128 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 128 ≤ n; p + head is 64-byte aligned.
                let x = unsafe { _mm512_load_ps(p.as_ptr().add(i + 16 * k)) };
                let y = unsafe { _mm512_loadu_ps(g.as_ptr().add(i + 16 * k)) };
                *a = _mm512_fmadd_ps(x, y, *a);
            }
            i += 128;
        }
        for a in acc {
            s += _mm512_reduce_add_ps(a);
        }
        s + p[i..n]
            .iter()
            .zip(&g[i..n])
            .map(|(a, b)| a * b)
            .sum::<f32>()
    }

    /// The f64 dot product: AVX-512 with 8 accumulators where the CPU has it.
    pub fn dot_f64(p: &[f64], g: &[f64]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX-512F was detected just above.
                return unsafe { dot_f64_avx512(p, g) };
            }
        }
        p.iter().zip(g).map(|(a, b)| a * b).sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn dot_f64_avx512(p: &[f64], g: &[f64]) -> f64 {
        let n = p.len().min(g.len());
        let mut acc = [_mm512_setzero_pd(); 8];
        let mut i = 0;
        while i + 64 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 64 ≤ n.
                let x = unsafe { _mm512_loadu_pd(p.as_ptr().add(i + 8 * k)) };
                let y = unsafe { _mm512_loadu_pd(g.as_ptr().add(i + 8 * k)) };
                *a = _mm512_fmadd_pd(x, y, *a);
            }
            i += 64;
        }
        let s: f64 = acc.iter().map(|a| _mm512_reduce_add_pd(*a)).sum();
        s + p[i..n]
            .iter()
            .zip(&g[i..n])
            .map(|(a, b)| a * b)
            .sum::<f64>()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_avx2(p: &[f32], g: &[f32]) -> f32 {
        let n = p.len().min(g.len());
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 64 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 64 ≤ n.
                let x = unsafe { _mm256_loadu_ps(p.as_ptr().add(i + 8 * k)) };
                let y = unsafe { _mm256_loadu_ps(g.as_ptr().add(i + 8 * k)) };
                *a = _mm256_fmadd_ps(x, y, *a);
            }
            i += 64;
        }
        let mut lanes = [0.0f32; 8];
        let mut sum = _mm256_setzero_ps();
        for a in acc {
            sum = _mm256_add_ps(sum, a);
        }
        // SAFETY: `lanes` holds 8 f32.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum::<f32>()
            + p[i..n]
                .iter()
                .zip(&g[i..n])
                .map(|(a, b)| a * b)
                .sum::<f32>()
    }
}

const SIZES: [usize; 3] = [1 << 16, 1 << 22, 1 << 27];

fn configure<'c>(
    c: &'c mut Criterion,
    name: &str,
    n: usize,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(n as u64));
    if n >= 1 << 22 {
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(6));
    } else {
        g.sample_size(50)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    }
    g
}

fn soft_forward(c: &mut Criterion) {
    for n in SIZES {
        let (p, g) = random_pair_f32(n, 1);
        let mut grp = configure(c, "soft_dice_forward", n);
        grp.bench_function(BenchmarkId::new("baseline_dot", n), |b| {
            b.iter(|| baseline::dot(black_box(&p), black_box(&g)))
        });
        grp.bench_function(BenchmarkId::new("dice_core", n), |b| {
            b.iter(|| {
                let s = SoftStats::of(black_box(&p), black_box(&g), Moment::Linear).unwrap();
                score::dice(s.intersection, s.pred, s.target, 1e-5, 1e-5)
            })
        });
        grp.finish();
    }
}

fn forward_gradient(c: &mut Criterion) {
    for n in [1usize << 22, 1 << 27] {
        let (p, g) = random_pair_f32(n, 2);
        let mut grad = vec![0.0f32; n];
        let shape = Shape::new(1, 1, n);
        let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
        let loss = SoftLoss::dice();
        let mut stats = [SoftStats::default()];
        let mut grp = configure(c, "soft_dice_forward_gradient", n);
        grp.bench_function(BenchmarkId::new("baseline_dot", n), |b| {
            b.iter(|| baseline::dot(black_box(&p), black_box(&g)))
        });
        grp.bench_function(BenchmarkId::new("dice_core", n), |b| {
            b.iter(|| {
                loss.loss_and_gradient(black_box(&input), &mut stats, &mut grad)
                    .unwrap()
            })
        });
        grp.finish();
    }
}

fn hard_threshold(c: &mut Criterion) {
    for n in SIZES {
        let (p, g) = random_pair_f32(n, 3);
        let mut grp = configure(c, "hard_dice_threshold", n);
        grp.bench_function(BenchmarkId::new("baseline_dot", n), |b| {
            b.iter(|| baseline::dot(black_box(&p), black_box(&g)))
        });
        grp.bench_function(BenchmarkId::new("dice_core", n), |b| {
            b.iter(|| {
                hard::confusion_from_probabilities(black_box(&p), black_box(&g), 0.5).unwrap()
            })
        });
        grp.finish();
    }
}

fn labels_u8(c: &mut Criterion) {
    // 8 labels: a 256³ pair of coherent label volumes, tiled to 512³ for the DRAM size.
    let (pred, gt) = label_volumes(256, 8, 4);
    for tiles in [1usize, 8] {
        let pred: Vec<u8> = pred
            .iter()
            .copied()
            .cycle()
            .take(pred.len() * tiles)
            .collect();
        let gt: Vec<u8> = gt.iter().copied().cycle().take(gt.len() * tiles).collect();
        let n = pred.len();
        let (p, g) = random_pair_f32(n, 5);
        let mut grp = configure(c, "labels_u8_8", n);
        grp.bench_function(BenchmarkId::new("baseline_dot_f32", n), |b| {
            b.iter(|| baseline::dot(black_box(&p), black_box(&g)))
        });
        drop((p, g));
        let mut out = [Confusion::default(); 8];
        grp.bench_function(BenchmarkId::new("dice_core", n), |b| {
            b.iter(|| {
                hard::label_confusion(black_box(&pred), black_box(&gt), None, &mut out).unwrap()
            })
        });
        grp.finish();
    }
}

/// Dice + cross-entropy, forward and gradient over logits `[2, 4, 128³]` with a label map:
/// the fused two-pass form against the two losses computed apart by the core (the Dice loss
/// through the softmax, then the cross-entropy alone, gradients added), as every peer does.
fn dice_ce(c: &mut Criterion) {
    use dice_core::compound::CompoundLoss;
    use dice_core::Activation;
    let shape = Shape::new(2, 4, 128 * 128 * 128);
    let len = shape.batch * shape.channels * shape.spatial;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let z: Vec<f32> = (0..len)
        .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 8.0 - 4.0)
        .collect();
    let labels: Vec<u8> = (0..shape.batch * shape.spatial)
        .map(|_| (next() % 4) as u8)
        .collect();
    let input = SoftInput::new(shape, &z, Target::labels(&labels[..])).unwrap();
    let fused = CompoundLoss::dice_ce(SoftLoss::dice(), Activation::Softmax);
    let ce_alone = fused.lambdas(0.0, 1.0);
    let mut stats = vec![SoftStats::default(); 8];
    let mut grad = vec![0.0f32; len];
    let mut grad_ce = vec![0.0f32; len];
    let mut grp = c.benchmark_group("dice_ce_forward_gradient");
    grp.throughput(Throughput::Elements(len as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    grp.bench_function(BenchmarkId::new("separate", len), |b| {
        b.iter(|| {
            let d = fused
                .dice
                .loss_and_gradient_logits(&input, Activation::Softmax, &mut stats, &mut grad)
                .unwrap();
            let t = ce_alone
                .loss_and_gradient(&input, &mut stats, &mut grad_ce)
                .unwrap();
            for (g, h) in grad.iter_mut().zip(&grad_ce) {
                *g += *h;
            }
            black_box(d.value + t.term)
        })
    });
    grp.bench_function(BenchmarkId::new("fused", len), |b| {
        b.iter(|| {
            black_box(
                fused
                    .loss_and_gradient(&input, &mut stats, &mut grad)
                    .unwrap()
                    .value,
            )
        })
    });
    grp.finish();
}

/// The dot baseline on `threads` threads: the halves (or parts) summed by scoped threads, the
/// DRAM bound of a pass that reads both arrays with that many cores.
fn dot_threads(p: &[f32], g: &[f32], threads: usize) -> f32 {
    if threads == 1 {
        return baseline::dot(p, g);
    }
    let part = p.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = p
            .chunks(part)
            .zip(g.chunks(part))
            .skip(1)
            .map(|(a, b)| s.spawn(move || baseline::dot(a, b)))
            .collect();
        let first = baseline::dot(&p[..part.min(p.len())], &g[..part.min(g.len())]);
        handles
            .into_iter()
            .fold(first, |acc, h| acc + h.join().unwrap())
    })
}

/// Soft forward, forward + gradient, and the fused softmax path against labels on 1 and 2
/// threads ([`dice_core::parallel::Threads`]), beside the dot baseline on as many threads, from
/// 2¹⁶ (below the crossover) to 2²⁷.
fn threads(c: &mut Criterion) {
    use dice_core::parallel::Threads;
    for n in [1usize << 16, 1 << 21, 1 << 22, 1 << 27] {
        let (p, g) = random_pair_f32(n, 7);
        let mut grad = vec![0.0f32; n];
        let shape = Shape::new(1, 1, n);
        let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
        let mut stats = [SoftStats::default()];
        // Softmax logits [1, 4, n/4] against a u8 label map: one sample, cut into chunks of
        // voxels.
        let z: Vec<f32> = p.iter().map(|v| v * 8.0 - 4.0).collect();
        let labels: Vec<u8> = g[..n / 4].iter().map(|v| (v * 3.999) as u8).collect();
        let logits_shape = Shape::new(1, 4, n / 4);
        let logits = SoftInput::new(logits_shape, &z, Target::labels(&labels[..])).unwrap();
        let mut stats4 = [SoftStats::default(); 4];
        let mut grp = configure(c, "threads", n);
        for t in [1usize, 2] {
            let pool = Threads::new(t);
            let loss = SoftLoss::dice().executor(&pool);
            grp.bench_function(BenchmarkId::new(format!("baseline_dot_{t}t"), n), |b| {
                b.iter(|| dot_threads(black_box(&p), black_box(&g), t))
            });
            grp.bench_function(BenchmarkId::new(format!("forward_{t}t"), n), |b| {
                b.iter(|| {
                    loss.statistics(black_box(&input), &mut stats).unwrap();
                    loss.loss(shape, &stats).unwrap()
                })
            });
            grp.bench_function(BenchmarkId::new(format!("forward_gradient_{t}t"), n), |b| {
                b.iter(|| {
                    loss.loss_and_gradient(black_box(&input), &mut stats, &mut grad)
                        .unwrap()
                })
            });
            grp.bench_function(BenchmarkId::new(format!("softmax_labels_{t}t"), n), |b| {
                b.iter(|| {
                    loss.loss_and_gradient_logits(
                        black_box(&logits),
                        dice_core::Activation::Softmax,
                        &mut stats4,
                        &mut grad,
                    )
                    .unwrap()
                })
            });
        }
        grp.finish();
    }
}

/// The f64 kernels: soft forward over f64 pairs beside an f64 dot product (16 bytes read per
/// element, so its bound is the f64 dot).
fn f64_forward(c: &mut Criterion) {
    for n in [1usize << 16, 1 << 22, 1 << 26] {
        let (p32, g32) = random_pair_f32(n, 8);
        let p: Vec<f64> = p32.iter().map(|&v| f64::from(v)).collect();
        let g: Vec<f64> = g32.iter().map(|&v| f64::from(v)).collect();
        drop((p32, g32));
        let mut grad = vec![0.0f64; n];
        let shape = Shape::new(1, 1, n);
        let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
        let loss = SoftLoss::dice();
        let mut stats = [SoftStats::default()];
        let mut grp = configure(c, "f64", n);
        grp.bench_function(BenchmarkId::new("baseline_dot_f64", n), |b| {
            b.iter(|| baseline::dot_f64(black_box(&p), black_box(&g)))
        });
        grp.bench_function(BenchmarkId::new("forward", n), |b| {
            b.iter(|| SoftStats::of(black_box(&p), black_box(&g), Moment::Linear).unwrap())
        });
        grp.bench_function(BenchmarkId::new("forward_gradient", n), |b| {
            b.iter(|| {
                loss.loss_and_gradient(black_box(&input), &mut stats, &mut grad)
                    .unwrap()
            })
        });
        grp.finish();
    }
}

/// The fused logits paths, forward + gradient, one thread: sigmoid against a dense target
/// (`[1, 4, S]`, f32) and softmax against a u8 label map (`[1, 4, S]`), beside the f32 dot
/// over two arrays of the same length. Their traffic bound: the sigmoid path must read `z` and
/// `g` and write the gradient (12 bytes an element against the dot's 8: 0.67), the softmax
/// path reads `z` and a quarter byte of labels and writes the gradient (8.25 bytes: 0.97).
fn logits(c: &mut Criterion) {
    use dice_core::Activation;
    for s in [1usize << 20, 1 << 25] {
        let len = 4 * s;
        let shape = Shape::new(1, 4, s);
        let (p, g) = random_pair_f32(len, 9);
        let z: Vec<f32> = p.iter().map(|v| v * 8.0 - 4.0).collect();
        let labels: Vec<u8> = g[..s].iter().map(|v| (v * 3.999) as u8).collect();
        let g: Vec<f32> = g.iter().map(|v| if *v < 0.5 { 0.0 } else { 1.0 }).collect();
        let mut grad = vec![0.0f32; len];
        let mut stats = vec![SoftStats::default(); 4];
        let loss = SoftLoss::dice();
        let dense = SoftInput::new(shape, &z, Target::Dense(&g)).unwrap();
        let label_input = SoftInput::new(shape, &z, Target::labels(&labels[..])).unwrap();
        let mut grp = configure(c, "logits", len);
        grp.bench_function(BenchmarkId::new("baseline_dot", len), |b| {
            b.iter(|| baseline::dot(black_box(&p), black_box(&g)))
        });
        grp.bench_function(BenchmarkId::new("sigmoid_dense", len), |b| {
            b.iter(|| {
                loss.loss_and_gradient_logits(
                    black_box(&dense),
                    Activation::Sigmoid,
                    &mut stats,
                    &mut grad,
                )
                .unwrap()
            })
        });
        grp.bench_function(BenchmarkId::new("softmax_labels", len), |b| {
            b.iter(|| {
                loss.loss_and_gradient_logits(
                    black_box(&label_input),
                    Activation::Softmax,
                    &mut stats,
                    &mut grad,
                )
                .unwrap()
            })
        });
        grp.finish();
    }
}

criterion_group!(
    benches,
    f64_forward,
    logits,
    soft_forward,
    forward_gradient,
    hard_threshold,
    labels_u8,
    dice_ce,
    threads
);
criterion_main!(benches);
