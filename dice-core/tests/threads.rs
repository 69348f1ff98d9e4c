//! Deterministic multi-threading: statistics, losses and gradients are bit-identical on the
//! calling thread, on 1, 2, 3 and 8 scoped threads, and on executors that run the chunks in
//! reverse order or skip some (run later on the caller); errors name the same element.
#![cfg(feature = "std")]

use std::sync::atomic::{AtomicUsize, Ordering};

use dice_core::parallel::{Executor, Threads};
use dice_core::{
    Activation, DiceError, Moment, Reduction, Shape, SoftInput, SoftLoss, SoftStats, Target,
    Upstream, CHUNK,
};

/// Runs the tasks last to first on the calling thread, counting the calls.
struct Reverse(AtomicUsize);

impl Executor for Reverse {
    fn threads(&self) -> usize {
        4
    }
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        self.0.fetch_add(1, Ordering::Relaxed);
        (0..tasks).rev().for_each(task);
    }
    fn min_parallel(&self) -> usize {
        MIN
    }
}

/// Small enough that the test volumes take the parallel path.
const MIN: usize = 1 << 17;

/// Runs only the even tasks: the driver must run the others itself.
struct SkipsOdd;

impl Executor for SkipsOdd {
    fn threads(&self) -> usize {
        2
    }
    fn run(&self, tasks: usize, task: &(dyn Fn(usize) + Sync)) {
        (0..tasks).step_by(2).for_each(task);
    }
    fn min_parallel(&self) -> usize {
        MIN
    }
}

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn uniform(next: &mut impl FnMut() -> u64) -> f64 {
    (next() >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything one configuration computes, as bits.
#[derive(Debug, PartialEq)]
struct Run {
    stats: Vec<[u64; 5]>,
    value: u64,
    grad: Vec<u64>,
    grad_logits: Vec<u64>,
}

fn bits(s: &SoftStats) -> [u64; 5] {
    [
        s.intersection.to_bits(),
        s.pred.to_bits(),
        s.target.to_bits(),
        s.voxels,
        s.abs_diff.to_bits(),
    ]
}

struct Case<T> {
    shape: Shape,
    pred: Vec<T>,
    logits: Vec<T>,
    dense: Vec<T>,
    labels: Vec<u8>,
    mask: Vec<u8>,
}

fn case<T: dice_core::Float>(seed: u64, shape: Shape) -> Case<T> {
    let mut next = rng(seed);
    let len = shape.batch * shape.channels * shape.spatial;
    let vox = shape.batch * shape.spatial;
    let pred = (0..len).map(|_| T::from_f64(uniform(&mut next))).collect();
    let logits = (0..len)
        .map(|_| T::from_f64(uniform(&mut next) * 12.0 - 6.0))
        .collect();
    let dense = (0..len)
        .map(|_| T::from_f64((uniform(&mut next) * 4.0).floor() / 3.0))
        .collect();
    let labels = (0..vox)
        .map(|_| (next() % (shape.channels as u64 + 1)) as u8)
        .map(|l| if l as usize == shape.channels { 255 } else { l })
        .collect();
    let mask = (0..vox)
        .map(|_| u8::from(!next().is_multiple_of(5)))
        .collect();
    Case {
        shape,
        pred,
        logits,
        dense,
        labels,
        mask,
    }
}

#[derive(Clone, Copy, Debug)]
struct Options {
    labels: bool,
    masked: bool,
    moment: Moment,
    activation: Activation,
    batch: bool,
}

/// The output buffers, reused by every run of a case: the kernels group their partial sums by
/// 64-byte alignment, so results are identical for the same buffers (the logits path sums
/// the probabilities it writes into the gradient buffer).
struct Buffers<T> {
    grad: Vec<T>,
    grad_logits: Vec<T>,
    kept: Vec<T>,
}

impl<T: dice_core::Float> Buffers<T> {
    fn new(len: usize) -> Self {
        Buffers {
            grad: vec![T::ZERO; len],
            grad_logits: vec![T::ZERO; len],
            kept: vec![T::ZERO; len],
        }
    }
}

fn run<T: dice_core::Float>(
    c: &Case<T>,
    o: Options,
    exec: Option<&dyn Executor>,
    bufs: &mut Buffers<T>,
) -> Run {
    let mut loss = SoftLoss::dice()
        .batch(o.batch)
        .squared_pred(o.moment == Moment::Squared)
        .soft_label(o.moment == Moment::SoftLabel)
        .reduction(Reduction::Mean);
    if let Some(e) = exec {
        loss = loss.executor(e);
    }
    let target = if o.labels {
        Target::labels_ignoring(&c.labels[..], 255)
    } else {
        Target::Dense(&c.dense[..])
    };
    let target_again = || {
        if o.labels {
            Target::labels_ignoring(&c.labels[..], 255)
        } else {
            Target::Dense(&c.dense[..])
        }
    };
    let mut input = SoftInput::new(c.shape, &c.pred, target).unwrap();
    let mut logits = SoftInput::new(c.shape, &c.logits, target_again()).unwrap();
    if o.masked {
        input = input.with_mask(&c.mask).unwrap();
        logits = logits.with_mask(&c.mask).unwrap();
    }
    let pairs = c.shape.batch * c.shape.channels;
    let mut stats = vec![SoftStats::default(); pairs];
    let Buffers {
        grad,
        grad_logits,
        kept,
    } = bufs;
    let value = loss.loss_and_gradient(&input, &mut stats, grad).unwrap();
    let mut stats_logits = vec![SoftStats::default(); pairs];
    let v2 = loss
        .loss_and_gradient_logits(&logits, o.activation, &mut stats_logits, grad_logits)
        .unwrap();
    // The backward from kept probabilities gives the same bits again.
    dice_core::loss::probabilities(c.shape, &c.logits, o.activation, kept).unwrap();
    loss.gradient_logits_from_probabilities(
        &logits,
        o.activation,
        &stats_logits,
        Upstream::Scalar(1.0),
        kept,
    )
    .unwrap();
    let to_bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
    assert_eq!(to_bits(kept), to_bits(grad_logits), "{o:?}");
    Run {
        stats: stats.iter().chain(&stats_logits).map(bits).collect(),
        value: value.value.to_bits() ^ v2.value.to_bits().rotate_left(1),
        grad: to_bits(grad),
        grad_logits: to_bits(grad_logits),
    }
}

fn executors() -> Vec<(&'static str, Box<dyn Executor>)> {
    vec![
        ("1 thread", Box::new(Threads::new(1).min_parallel(MIN))),
        ("2 threads", Box::new(Threads::new(2).min_parallel(MIN))),
        ("3 threads", Box::new(Threads::new(3).min_parallel(MIN))),
        ("8 threads", Box::new(Threads::new(8).min_parallel(MIN))),
        ("reverse", Box::new(Reverse(AtomicUsize::new(0)))),
        ("skips odd", Box::new(SkipsOdd)),
    ]
}

fn check_all<T: dice_core::Float>(seed: u64, shape: Shape) {
    let c = case::<T>(seed, shape);
    let mut bufs = Buffers::new(c.pred.len());
    let mut next = rng(seed ^ 0xabcdef);
    for k in 0..6 {
        let o = Options {
            labels: k % 2 == 0,
            masked: k % 3 == 1,
            moment: [Moment::Linear, Moment::Squared, Moment::SoftLabel][(next() % 3) as usize],
            activation: if next().is_multiple_of(2) {
                Activation::Softmax
            } else {
                Activation::Sigmoid
            },
            batch: next().is_multiple_of(2),
        };
        let serial = run(&c, o, None, &mut bufs);
        for (name, e) in executors() {
            let got = run(&c, o, Some(e.as_ref()), &mut bufs);
            assert!(
                got == serial,
                "{} {shape:?} {o:?}: {name} differs (stats {}, value {}, grad {}, logits {})",
                T::NAME,
                got.stats == serial.stats,
                got.value == serial.value,
                got.grad == serial.grad,
                got.grad_logits == serial.grad_logits
            );
        }
    }
}

#[test]
fn bit_identical_for_any_thread_count_f32() {
    // Rows longer than a chunk and not a multiple of it; total above MIN_PARALLEL.
    check_all::<f32>(1, Shape::new(2, 3, CHUNK * 2 + 12_345));
    check_all::<f32>(2, Shape::new(1, 2, MIN / 2 + 7));
    check_all::<f32>(3, Shape::new(3, 4, CHUNK / 2 + 1));
}

#[test]
fn bit_identical_for_any_thread_count_f64() {
    check_all::<f64>(4, Shape::new(2, 2, CHUNK * 2 + 999));
}

#[test]
fn the_threads_really_run() {
    let c = case::<f32>(5, Shape::new(2, 2, CHUNK * 3));
    let rev = Reverse(AtomicUsize::new(0));
    let o = Options {
        labels: true,
        masked: false,
        moment: Moment::Linear,
        activation: Activation::Softmax,
        batch: false,
    };
    let mut bufs = Buffers::new(c.pred.len());
    let serial = run(&c, o, None, &mut bufs);
    assert_eq!(run(&c, o, Some(&rev), &mut bufs), serial);
    assert!(rev.0.load(Ordering::Relaxed) >= 4, "the executor was used");
    // Small inputs stay on the calling thread.
    let small = case::<f32>(6, Shape::new(1, 2, 1000));
    let rev = Reverse(AtomicUsize::new(0));
    run(&small, o, Some(&rev), &mut Buffers::new(small.pred.len()));
    assert_eq!(rev.0.load(Ordering::Relaxed), 0);
}

#[test]
fn errors_name_the_first_bad_element_whatever_the_threads() {
    let shape = Shape::new(2, 2, CHUNK * 3 + 5);
    let mut c = case::<f32>(7, shape);
    // Two bad values: one late in the first row, one early in the last row.
    let first = CHUNK * 2 + 17;
    c.pred[first] = f32::NAN;
    let last = c.pred.len() - 100;
    c.pred[last] = 2.0;
    c.labels[shape.spatial + 3] = 9; // a label out of range, in sample 1
    let errs = |exec: Option<&dyn Executor>| {
        let mut loss = SoftLoss::dice();
        if let Some(e) = exec {
            loss = loss.executor(e);
        }
        let mut stats = vec![SoftStats::default(); 4];
        let mut grad = vec![0.0f32; c.pred.len()];
        let dense = SoftInput::new(shape, &c.pred, Target::Dense(&c.dense)).unwrap();
        let labels =
            SoftInput::new(shape, &c.pred, Target::labels_ignoring(&c.labels[..], 255)).unwrap();
        let a = loss
            .loss_and_gradient(&dense, &mut stats, &mut grad)
            .unwrap_err();
        let b = loss
            .loss_and_gradient(&labels, &mut stats, &mut grad)
            .unwrap_err();
        (a, b)
    };
    let (a, b) = errs(None);
    assert!(
        matches!(a, DiceError::NonFinite { index, .. } if index == first),
        "{a:?}"
    );
    assert!(
        matches!(b, DiceError::LabelOutOfRange { index, .. } if index == shape.spatial + 3),
        "{b:?}"
    );
    for (name, e) in executors() {
        assert_eq!(errs(Some(e.as_ref())), (a, b), "{name}");
    }
}

#[test]
fn streaming_gradients_match_at_every_chunk_boundary() {
    // 2 × 2²¹ f32 values: the gradient pass streams (≥ 8 MiB) whether one thread writes the
    // whole rows or several write chunks of them.
    let shape = Shape::new(1, 2, 1 << 21);
    let c = case::<f32>(9, shape);
    let mut bufs = Buffers::new(c.pred.len());
    let o = Options {
        labels: false,
        masked: false,
        moment: Moment::Squared,
        activation: Activation::Sigmoid,
        batch: false,
    };
    let serial = run(&c, o, None, &mut bufs);
    let two = Threads::new(2).min_parallel(MIN);
    assert_eq!(run(&c, o, Some(&two), &mut bufs), serial);
}

#[test]
fn label_counts_are_the_same_on_any_executor() {
    use dice_core::hard::{label_confusion, label_confusion_in, Confusion};
    let n = (1 << 21) + 12_345;
    let mut next = rng(11);
    let p: Vec<u8> = (0..n).map(|_| (next() % 6) as u8).collect();
    let mut g: Vec<u8> = (0..n).map(|_| (next() % 6) as u8).collect();
    let p16: Vec<u16> = p.iter().map(|&v| u16::from(v)).collect();
    let g16: Vec<u16> = g.iter().map(|&v| u16::from(v)).collect();
    let mut want = [Confusion::default(); 6];
    let mut want16 = [Confusion::default(); 6];
    let counted = label_confusion(&p, &g, Some(5), &mut want).unwrap();
    label_confusion(&p16, &g16, Some(5), &mut want16).unwrap();
    assert_eq!(want, want16);
    for (name, e) in executors() {
        let mut got = [Confusion::default(); 6];
        assert_eq!(
            label_confusion_in(&p, &g, Some(5), &mut got, e.as_ref()),
            Ok(counted)
        );
        assert_eq!(got, want, "{name}");
        label_confusion_in(&p16, &g16, Some(5), &mut got, e.as_ref()).unwrap();
        assert_eq!(got, want, "{name} u16");
    }
    // Two bad labels: the first is named whatever the split.
    g[(1 << 20) + 3] = 9;
    g[n - 2] = 7;
    let serial = label_confusion(&p, &g, None, &mut want).unwrap_err();
    assert!(
        matches!(serial, DiceError::LabelOutOfRange { index, label: 9, .. } if index == (1 << 20) + 3)
    );
    for (name, e) in executors() {
        let mut got = [Confusion::default(); 6];
        assert_eq!(
            label_confusion_in(&p, &g, None, &mut got, e.as_ref()),
            Err(serial),
            "{name}"
        );
    }
}
