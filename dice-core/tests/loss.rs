//! Soft losses: hand-computed values, layout equivalences, and analytic gradients against
//! central finite differences in f64 for every score, option and activation.

use dice_core::score::{self, Weighting};
use dice_core::{
    Activation, DiceError, EmptyValue, LossForm, Moment, Operand, Reduction, Shape, SoftInput,
    SoftLoss, SoftStats, Target, Upstream,
};
use proptest::prelude::*;

fn stats_ws(shape: Shape) -> Vec<SoftStats> {
    vec![SoftStats::default(); shape.batch * shape.channels]
}

fn loss_of(loss: &SoftLoss, input: &SoftInput<f64>) -> f64 {
    let mut st = stats_ws(input.shape());
    loss.statistics(input, &mut st).unwrap();
    loss.loss(input.shape(), &st).unwrap().value
}

fn approx(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

// ---------------------------------------------------------------------------------------------
// Hand-computed values
// ---------------------------------------------------------------------------------------------

const P: [f64; 4] = [0.9, 0.8, 0.3, 0.1];
const G: [f64; 4] = [1.0, 1.0, 0.0, 0.0];
// I = 1.7, P = 2.1, G = 2, ΣP² = 1.55, ΣG² = 2, FP = 0.4, FN = 0.3.

#[test]
fn scores_by_hand() {
    assert!(approx(
        score::dice(1.7, 2.1, 2.0, 0.0, 0.0).unwrap(),
        3.4 / 4.1,
        1e-15
    ));
    assert!(approx(
        score::dice(1.7, 2.1, 2.0, 1.0, 1.0).unwrap(),
        4.4 / 5.1,
        1e-15
    ));
    assert!(approx(
        score::dice(1.7, 1.55, 2.0, 0.0, 0.0).unwrap(),
        3.4 / 3.55,
        1e-15
    ));
    assert!(approx(
        score::jaccard(1.7, 2.1, 2.0, 0.0, 0.0).unwrap(),
        1.7 / 2.4,
        1e-15
    ));
    assert!(approx(
        score::tversky(1.7, 2.1, 2.0, 0.3, 0.7, 0.0, 0.0).unwrap(),
        1.7 / (1.7 + 0.12 + 0.21),
        1e-15
    ));
    // α = β = 0.5 is Dice; α = β = 1 is IoU.
    assert!(approx(
        score::tversky(1.7, 2.1, 2.0, 0.5, 0.5, 0.0, 0.0).unwrap(),
        3.4 / 4.1,
        1e-15
    ));
    assert!(approx(
        score::tversky(1.7, 2.1, 2.0, 1.0, 1.0, 0.0, 0.0).unwrap(),
        1.7 / 2.4,
        1e-15
    ));
    // Zero denominators are None, not NaN.
    assert_eq!(score::dice(0.0, 0.0, 0.0, 0.0, 0.0), None);
    assert_eq!(score::dice(0.0, 0.0, 0.0, 1.0, 1.0), Some(1.0));
    assert_eq!(score::jaccard(0.0, 0.0, 0.0, 0.0, 0.0), None);
    assert_eq!(score::tversky(0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0), None);
    // Loss forms.
    assert_eq!(score::one_minus(0.25), 0.75);
    assert!(approx(score::neg_ln(0.25).unwrap(), 4f64.ln().abs(), 1e-15));
    assert_eq!(score::neg_ln(0.0), None);
    assert!(approx(score::focal(0.25, 2.0), 0.0625, 1e-15));
    assert!(approx(score::focal_derivative(0.25, 2.0), 0.5, 1e-15));
    assert_eq!(score::focal(-0.1, 0.75), 0.0);
}

#[test]
fn partials_match_finite_differences_of_the_pure_functions() {
    let h = 1e-6;
    let at = [(1.7, 2.1, 2.0), (0.2, 3.0, 0.5), (4.0, 4.5, 5.0)];
    for &(i, p, g) in &at {
        for (snr, sdr) in [(0.0, 0.0), (1e-5, 1e-5), (1.0, 0.5)] {
            type F = Box<dyn Fn(f64, f64, f64) -> Option<f64>>;
            type D = Box<dyn Fn(f64, f64, f64) -> Option<score::Partials>>;
            let cases: Vec<(F, D)> = vec![
                (
                    Box::new(move |i, p, g| score::dice(i, p, g, snr, sdr)),
                    Box::new(move |i, p, g| score::dice_partials(i, p, g, snr, sdr)),
                ),
                (
                    Box::new(move |i, p, g| score::jaccard(i, p, g, snr, sdr)),
                    Box::new(move |i, p, g| score::jaccard_partials(i, p, g, snr, sdr)),
                ),
                (
                    Box::new(move |i, p, g| score::tversky(i, p, g, 0.3, 0.8, snr, sdr)),
                    Box::new(move |i, p, g| score::tversky_partials(i, p, g, 0.3, 0.8, snr, sdr)),
                ),
            ];
            for (f, d) in cases {
                let part = d(i, p, g).unwrap();
                let fd_i = (f(i + h, p, g).unwrap() - f(i - h, p, g).unwrap()) / (2.0 * h);
                let fd_p = (f(i, p + h, g).unwrap() - f(i, p - h, g).unwrap()) / (2.0 * h);
                let fd_g = (f(i, p, g + h).unwrap() - f(i, p, g - h).unwrap()) / (2.0 * h);
                assert!(
                    approx(part.intersection, fd_i, 1e-7),
                    "{} vs {}",
                    part.intersection,
                    fd_i
                );
                assert!(approx(part.pred, fd_p, 1e-7));
                assert!(approx(part.target, fd_g, 1e-7));
            }
        }
    }
}

#[test]
fn dice_loss_by_hand_with_gradient() {
    let shape = Shape::new(1, 1, 4);
    let input = SoftInput::new(shape, &P, Target::Dense(&G)).unwrap();
    let loss = SoftLoss::dice().smooth(0.0, 0.0);
    let mut st = stats_ws(shape);
    let mut grad = [0.0; 4];
    let v = loss.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
    assert!(approx(v.value, 1.0 - 3.4 / 4.1, 1e-15));
    assert_eq!((v.groups, v.defined), (1, 1));
    // ∂(1 − N/D)/∂pᵢ = (N − 2gᵢD)/D² with N = 3.4, D = 4.1.
    for i in 0..4 {
        let want = (3.4 - 2.0 * G[i] * 4.1) / (4.1 * 4.1);
        assert!(approx(grad[i], want, 1e-14), "{i}: {} vs {want}", grad[i]);
    }
    assert_eq!(st[0].voxels, 4);
    assert!(approx(st[0].intersection, 1.7, 1e-15));
}

/// Two samples, two classes: per-sample, batch, background, weights and reductions.
#[test]
fn reductions_background_batch_and_weights_by_hand() {
    // [N=2, C=2, S=2]
    let p = [0.6, 0.4, 0.4, 0.6, 0.9, 0.2, 0.1, 0.8];
    let g = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0];
    let shape = Shape::new(2, 2, 2);
    let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
    let d = |i: f64, pp: f64, gg: f64| 1.0 - 2.0 * i / (pp + gg);
    // (n, c): I, P, G
    let l00 = d(0.6, 1.0, 1.0);
    let l01 = d(0.6, 1.0, 1.0);
    let l10 = d(1.1, 1.1, 2.0);
    // Sample 1, class 1 has G = 0: Dice = 0/0.9 = 0, loss 1.
    let l11 = d(0.0, 0.9, 0.0);
    let base = SoftLoss::dice().smooth(0.0, 0.0);
    assert!(approx(
        loss_of(&base, &input),
        (l00 + l01 + l10 + l11) / 4.0,
        1e-15
    ));
    assert!(approx(
        loss_of(&base.reduction(Reduction::Sum), &input),
        l00 + l01 + l10 + l11,
        1e-15
    ));
    assert!(approx(
        loss_of(&base.include_background(false), &input),
        (l01 + l11) / 2.0,
        1e-15
    ));
    // Batch Dice sums statistics over samples per class first.
    let b0 = d(1.7, 2.1, 3.0);
    let b1 = d(0.6, 1.9, 1.0);
    assert!(approx(
        loss_of(&base.batch(true), &input),
        (b0 + b1) / 2.0,
        1e-15
    ));
    // Class weights multiply each class's loss, then the mean (MONAI's semantics).
    let w = [0.5, 2.0];
    assert!(approx(
        loss_of(&base.class_weights(&w), &input),
        (0.5 * l00 + 2.0 * l01 + 0.5 * l10 + 2.0 * l11) / 4.0,
        1e-15
    ));
    // Per-group values.
    let mut st = stats_ws(shape);
    base.statistics(&input, &mut st).unwrap();
    let mut per = [None; 4];
    let v = base
        .reduction(Reduction::None)
        .group_losses(shape, &st, &mut per)
        .unwrap();
    for (got, want) in per.iter().zip([l00, l01, l10, l11]) {
        assert!(approx(got.unwrap(), want, 1e-15));
    }
    assert!(approx(v.value, l00 + l01 + l10 + l11, 1e-15));
}

#[test]
fn tversky_focal_and_log_by_hand() {
    let shape = Shape::new(1, 1, 4);
    let input = SoftInput::new(shape, &P, Target::Dense(&G)).unwrap();
    let t = 1.7 / (1.7 + 0.3 * 0.4 + 0.7 * 0.3);
    let tv = SoftLoss::tversky(0.3, 0.7).smooth(0.0, 0.0);
    assert!(approx(loss_of(&tv, &input), 1.0 - t, 1e-15));
    assert!(approx(
        loss_of(
            &SoftLoss::focal_tversky(0.3, 0.7, 0.75).smooth(0.0, 0.0),
            &input
        ),
        (1.0 - t).powf(0.75),
        1e-15
    ));
    let lg = SoftLoss::dice().smooth(0.0, 0.0).form(LossForm::NegLog);
    assert!(approx(loss_of(&lg, &input), -(3.4f64 / 4.1).ln(), 1e-15));
}

#[test]
fn generalized_dice_weights_and_absent_class_policy() {
    // Square weights of present classes, max-present for the absent, 1 when none is present.
    let mut w = [0.0; 3];
    score::generalized_weights(&[2.0, 0.0, 4.0], Weighting::Square, &mut w);
    assert_eq!(w, [0.25, 0.25, 0.0625]);
    score::generalized_weights(&[0.0, 0.0], Weighting::Square, &mut w[..2]);
    assert_eq!(&w[..2], &[1.0, 1.0]);
    score::generalized_weights(&[2.0, 0.0, 4.0], Weighting::Simple, &mut w);
    assert_eq!(w, [0.5, 0.5, 0.25]);
    score::generalized_weights(&[2.0, 0.0, 4.0], Weighting::Uniform, &mut w);
    assert_eq!(w, [1.0, 1.0, 1.0]);

    // One sample, three classes, two voxels each; class 1 absent from the target.
    let p = [0.8, 0.1, 0.3, 0.2, 0.5, 0.5];
    let g = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    let shape = Shape::new(1, 3, 2);
    let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
    // I = [0.9, 0, 0.5], P = [0.9, 0.5, 1.0], G = [2, 0, 1]; weights 1/4, (max =) 1, 1.
    let (w0, w1, w2) = (0.25, 1.0, 1.0);
    let num = 2.0 * (w0 * 0.9 + w2 * 0.5);
    let den = w0 * (0.9 + 2.0) + w1 * 0.5 + w2 * (1.0 + 1.0);
    let gd = SoftLoss::generalized_dice(Weighting::Square).smooth(0.0, 0.0);
    assert!(approx(loss_of(&gd, &input), 1.0 - num / den, 1e-15));

    // Every class absent: weights 1, so false positives still cost (MONAI would give loss 0).
    let g0 = [0.0; 6];
    let input0 = SoftInput::new(shape, &p, Target::Dense(&g0)).unwrap();
    let v = loss_of(&gd.smooth(1e-5, 1e-5), &input0);
    assert!(approx(v, 1.0 - 1e-5 / (2.4 + 1e-5), 1e-12), "{v}");
}

#[test]
fn zero_denominator_policy() {
    let shape = Shape::new(1, 2, 3);
    let p = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5];
    let g = [0.0, 0.0, 0.0, 1.0, 0.0, 1.0];
    let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
    let l1 = 1.0 - 2.0 * 1.0 / (1.5 + 2.0);
    let base = SoftLoss::dice().smooth(0.0, 0.0);
    assert!(approx(loss_of(&base, &input), (0.0 + l1) / 2.0, 1e-15)); // One: loss 0
    assert!(approx(
        loss_of(&base.zero_denominator(EmptyValue::Zero), &input),
        (1.0 + l1) / 2.0,
        1e-15
    ));
    assert!(approx(
        loss_of(&base.zero_denominator(EmptyValue::Skip), &input),
        l1,
        1e-15
    ));
    assert!(loss_of(&base.zero_denominator(EmptyValue::Nan), &input).is_nan());
    let mut st = stats_ws(shape);
    base.statistics(&input, &mut st).unwrap();
    let v = base
        .zero_denominator(EmptyValue::Skip)
        .loss(shape, &st)
        .unwrap();
    assert_eq!((v.groups, v.defined), (2, 1));
    // Every group skipped: loss 0, gradient 0, nothing defined.
    let only = Shape::new(1, 1, 3);
    let input = SoftInput::new(only, &p[..3], Target::Dense(&g[..3])).unwrap();
    let mut st = stats_ws(only);
    let mut grad = [1.0; 3];
    let v = base
        .zero_denominator(EmptyValue::Skip)
        .loss_and_gradient(&input, &mut st, &mut grad)
        .unwrap();
    assert_eq!((v.value, v.defined), (0.0, 0));
    assert_eq!(grad, [0.0; 3]);
    // −ln of a zero score is an error naming the group.
    let e = base
        .form(LossForm::NegLog)
        .zero_denominator(EmptyValue::Zero)
        .loss(only, &st)
        .unwrap_err();
    assert!(matches!(
        e,
        DiceError::LogOfNonPositive {
            sample: Some(0),
            class: Some(0),
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------------
// Layout equivalences
// ---------------------------------------------------------------------------------------------

fn one_hot(labels: &[i64], shape: Shape) -> Vec<f64> {
    let mut g = vec![0.0; shape.batch * shape.channels * shape.spatial];
    for n in 0..shape.batch {
        for s in 0..shape.spatial {
            let l = labels[n * shape.spatial + s];
            if l >= 0 && (l as usize) < shape.channels {
                g[(n * shape.channels + l as usize) * shape.spatial + s] = 1.0;
            }
        }
    }
    g
}

#[test]
fn label_maps_equal_one_hot_and_ignore_equals_mask() {
    let shape = Shape::new(2, 3, 5);
    let labels: Vec<i64> = vec![0, 1, 2, 2, 255, 1, 1, 0, 255, 2];
    let p: Vec<f64> = (0..30).map(|i| ((i * 37) % 29) as f64 / 29.0).collect();
    let mask: Vec<u8> = labels.iter().map(|&l| u8::from(l != 255)).collect();
    let dense = one_hot(&labels, shape);
    let as_u8: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
    let as_i32: Vec<i32> = labels.iter().map(|&l| l as i32).collect();
    for loss in [
        SoftLoss::dice(),
        SoftLoss::dice().squared_pred(true).batch(true),
        SoftLoss::jaccard().include_background(false),
        SoftLoss::tversky(0.3, 0.7),
        SoftLoss::generalized_dice(Weighting::Square),
    ] {
        let with_mask = SoftInput::new(shape, &p, Target::Dense(&dense))
            .unwrap()
            .with_mask(&mask)
            .unwrap();
        let ignore_u8 =
            SoftInput::new(shape, &p, Target::labels_ignoring(&as_u8[..], 255)).unwrap();
        let ignore_i32 =
            SoftInput::new(shape, &p, Target::labels_ignoring(&as_i32[..], 255)).unwrap();
        let mut ga = vec![0.0; 30];
        let mut gb = vec![0.0; 30];
        let mut gc = vec![0.0; 30];
        let mut st = stats_ws(shape);
        let a = loss
            .loss_and_gradient(&with_mask, &mut st, &mut ga)
            .unwrap();
        let b = loss
            .loss_and_gradient(&ignore_u8, &mut st, &mut gb)
            .unwrap();
        let c = loss
            .loss_and_gradient(&ignore_i32, &mut st, &mut gc)
            .unwrap();
        assert!(approx(a.value, b.value, 1e-14) && approx(a.value, c.value, 1e-14));
        for i in 0..30 {
            assert!(
                approx(ga[i], gb[i], 1e-14) && approx(ga[i], gc[i], 1e-14),
                "{loss:?} {i}"
            );
            // Ignored voxels get zero gradient.
            if labels[(i / 15) * 5 + i % 5] == 255 {
                assert_eq!(gb[i], 0.0);
            }
        }
        assert_eq!(st[0].voxels, 4);
    }
    // Without an ignore label, 255 is out of range.
    let bad = SoftInput::new(shape, &p, Target::labels(&as_u8[..])).unwrap();
    let e = SoftLoss::dice()
        .statistics(&bad, &mut stats_ws(shape))
        .unwrap_err();
    assert_eq!(
        e,
        DiceError::LabelOutOfRange {
            operand: Operand::Labels,
            index: 4,
            label: 255,
            classes: 3
        }
    );
}

/// Masking voxels out equals removing them from the input.
#[test]
fn mask_equals_removing_voxels() {
    let shape = Shape::new(1, 2, 6);
    let p: Vec<f64> = vec![0.1, 0.7, 0.3, 0.9, 0.5, 0.2, 0.9, 0.3, 0.7, 0.1, 0.5, 0.8];
    let g: Vec<f64> = vec![0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0];
    let mask = [1u8, 0, 1, 1, 0, 1];
    let keep: Vec<usize> = (0..6).filter(|&s| mask[s] != 0).collect();
    let pick = |v: &[f64]| -> Vec<f64> {
        (0..2)
            .flat_map(|c| keep.iter().map(move |&s| v[c * 6 + s]))
            .collect()
    };
    let (p2, g2) = (pick(&p), pick(&g));
    let small = Shape::new(1, 2, keep.len());
    let full = SoftInput::new(shape, &p, Target::Dense(&g))
        .unwrap()
        .with_mask(&mask)
        .unwrap();
    let reduced = SoftInput::new(small, &p2, Target::Dense(&g2)).unwrap();
    for loss in [
        SoftLoss::dice(),
        SoftLoss::dice().squared_pred(true),
        SoftLoss::generalized_dice(Weighting::Simple),
    ] {
        assert!(approx(
            loss_of(&loss, &full),
            loss_of(&loss, &reduced),
            1e-15
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Gradients against central finite differences
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    shape: Shape,
    p: Vec<f64>,
    dense: Vec<f64>,
    labels: Vec<i64>,
    use_labels: bool,
    mask: Option<Vec<u8>>,
    loss_kind: u8,
    squared: bool,
    soft_label: bool,
    smooth: (f64, f64),
    log: bool,
    gamma: f64,
    background: bool,
    batch: bool,
    reduction: u8,
    weights: Vec<f64>,
    weighted: bool,
}

impl Case {
    fn loss(&self) -> SoftLoss<'_> {
        let base = match self.loss_kind {
            0 => SoftLoss::dice().squared_pred(self.squared),
            1 => SoftLoss::jaccard().squared_pred(self.squared),
            2 => SoftLoss::tversky(0.3, 0.7),
            3 => SoftLoss::generalized_dice(Weighting::Square),
            4 => SoftLoss::generalized_dice(Weighting::Simple),
            _ => SoftLoss::generalized_dice(Weighting::Uniform),
        };
        let mut l = base
            .soft_label(self.soft_label)
            .smooth(self.smooth.0, self.smooth.1)
            .form(if self.log {
                LossForm::NegLog
            } else {
                LossForm::OneMinus
            })
            .gamma(self.gamma)
            .include_background(self.background || self.shape.channels < 2)
            .batch(self.batch)
            .reduction(match self.reduction {
                0 => Reduction::Mean,
                1 => Reduction::Sum,
                _ => Reduction::None,
            });
        if self.weighted && self.loss_kind < 3 {
            l = l.class_weights(&self.weights);
        }
        l
    }

    /// The loss whose difference quotients check this case's analytic gradient: the same
    /// loss, except that with a binary target (labels, or a dense 0/1 one) the soft-label
    /// intersection `(P + G − Σ|p − g|)/2`, which equals `Σp·g` there, is replaced by `Σp·g`.
    /// Both are the same function, but the first cancels most of its digits where the
    /// prediction nearly misses a class, so the loss carries relative errors near 1e-11 and no
    /// step gives a difference quotient within 1e-5 (a saved case: analytic −0.0359297366,
    /// quotients −0.0359175 at h = 1e-5 and −0.0358075 at h = 1e-6 through the soft-label
    /// sums, −0.0359297367 through `Σp·g`).
    fn reference_loss(&self) -> SoftLoss<'_> {
        let binary = self.use_labels || self.dense.iter().all(|&v| v == 0.0 || v == 1.0);
        self.loss().soft_label(self.soft_label && !binary)
    }

    /// Whether a difference quotient at element `i` may straddle the kink of the soft-label
    /// term `|p − g|`, where no quotient holds (a continuous dense target only: `p` never
    /// reaches a binary target's 0 or 1): some channel of `i`'s voxel has its probability
    /// (`p`) within 1e-4 of its target.
    fn near_kink(&self, p: &[f64], i: usize) -> bool {
        if !self.soft_label || self.squared || self.use_labels {
            return false;
        }
        let (c, s) = (self.shape.channels, self.shape.spatial);
        let (b, v) = (i / (c * s), i % s);
        (0..c).any(|k| {
            let j = (b * c + k) * s + v;
            (p[j] - self.dense[j]).abs() < 1e-4
        })
    }

    fn input<'a>(&'a self, p: &'a [f64], labels: &'a [i64]) -> SoftInput<'a, f64> {
        let target = if self.use_labels {
            Target::labels(labels)
        } else {
            Target::Dense(&self.dense)
        };
        let i = SoftInput::new(self.shape, p, target).unwrap();
        match &self.mask {
            Some(m) => i.with_mask(m).unwrap(),
            None => i,
        }
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..3, 1usize..4, 1usize..12)
        .prop_flat_map(|(n, c, s)| {
            let len = n * c * s;
            (
                Just(Shape::new(n, c, s)),
                proptest::collection::vec(0.05f64..0.95, len),
                proptest::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0], len),
                proptest::collection::vec(0i64..c as i64, n * s),
                any::<bool>(),
                proptest::option::of(proptest::collection::vec(
                    prop_oneof![Just(0u8), Just(1u8), Just(1u8)],
                    n * s,
                )),
                (
                    0u8..6,
                    any::<bool>(),
                    any::<bool>(),
                    prop_oneof![
                        Just((0.0, 0.0)),
                        Just((1e-5, 1e-5)),
                        Just((1.0, 1.0)),
                        Just((0.0, 0.5))
                    ],
                ),
                (
                    any::<bool>(),
                    prop_oneof![Just(1.0), Just(2.0), Just(0.75)],
                    any::<bool>(),
                    any::<bool>(),
                    0u8..3,
                ),
                (proptest::collection::vec(0.1f64..3.0, c), any::<bool>()),
            )
        })
        .prop_map(
            |(
                shape,
                p,
                dense,
                labels,
                use_labels,
                mask,
                (kind, squared, soft_label, smooth),
                (log, gamma, bg, batch, red),
                (w, weighted),
            )| Case {
                shape,
                p,
                dense,
                labels,
                use_labels,
                mask,
                loss_kind: kind,
                squared,
                soft_label,
                smooth,
                log,
                gamma,
                background: bg,
                batch,
                reduction: red,
                weights: w,
                weighted,
            },
        )
}

/// `Σ_g u_g·L_g` for the reduced loss (or per-group upstream).
fn objective(loss: &SoftLoss, input: &SoftInput<f64>, upstream: Option<&[f64]>) -> Option<f64> {
    let shape = input.shape();
    let mut st = stats_ws(shape);
    loss.statistics(input, &mut st).ok()?;
    match upstream {
        None => loss.loss(shape, &st).ok().map(|v| v.value),
        Some(u) => {
            let mut per = vec![None; loss.group_count(shape)];
            loss.group_losses(shape, &st, &mut per).ok()?;
            Some(per.iter().zip(u).map(|(l, u)| l.unwrap_or(0.0) * u).sum())
        }
    }
}

fn check_fd(case: &Case, upstream: Option<&[f64]>) -> Result<(), TestCaseError> {
    let loss = case.loss();
    let input = case.input(&case.p, &case.labels);
    let shape = case.shape;
    let mut st = stats_ws(shape);
    if loss.statistics(&input, &mut st).is_err() {
        return Ok(()); // e.g. −ln(0) cannot happen with p ≥ 0.05, but be safe
    }
    if loss.loss(shape, &st).is_err() {
        return Ok(());
    }
    let mut grad = vec![0.0; case.p.len()];
    let up = match upstream {
        Some(u) => Upstream::PerGroup(u),
        None => Upstream::Scalar(1.0),
    };
    loss.gradient(&input, &st, up, &mut grad).unwrap();
    let reference = case.reference_loss();
    let h = 1e-6;
    for i in 0..case.p.len() {
        if case.near_kink(&case.p, i) {
            continue;
        }
        let mut pp = case.p.clone();
        pp[i] += h;
        let plus = objective(&reference, &case.input(&pp, &case.labels), upstream);
        pp[i] -= 2.0 * h;
        let minus = objective(&reference, &case.input(&pp, &case.labels), upstream);
        let (Some(plus), Some(minus)) = (plus, minus) else {
            continue;
        };
        let fd = (plus - minus) / (2.0 * h);
        prop_assert!(
            (grad[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()),
            "element {i}: analytic {} vs finite difference {fd}; {:?}",
            grad[i],
            loss
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// ∂loss/∂p for every score, moment, smoothing, form, focal exponent, background,
    /// batch, reduction, class weights, dense or label target, with or without mask.
    #[test]
    fn gradient_matches_finite_differences(case in case_strategy()) {
        let up = if case.reduction == 2 {
            let groups = case.loss().group_count(case.shape);
            Some((0..groups).map(|g| 0.5 + g as f64 * 0.25).collect::<Vec<_>>())
        } else {
            None
        };
        check_fd(&case, up.as_deref())?;
    }

    /// ∂loss/∂z through sigmoid and softmax, fused.
    #[test]
    fn logits_gradient_matches_finite_differences(case in case_strategy(), softmax in any::<bool>(), scale in 0.5f64..4.0) {
        let softmax = softmax && case.shape.channels >= 2;
        let act = if softmax { Activation::Softmax } else { Activation::Sigmoid };
        let loss = case.loss();
        let reference = case.reference_loss();
        let z: Vec<f64> = case.p.iter().map(|&p| scale * (p - 0.5) * 4.0).collect();
        let value_at = |z: &[f64]| -> Option<f64> {
            let input = case.input(z, &case.labels);
            let mut st = stats_ws(case.shape);
            let mut buf = vec![0.0; z.len()];
            reference.loss_and_gradient_logits(&input, act, &mut st, &mut buf).ok().map(|v| v.value)
        };
        let input = case.input(&z, &case.labels);
        let mut st = stats_ws(case.shape);
        let mut grad = vec![0.0; z.len()];
        if loss.loss_and_gradient_logits(&input, act, &mut st, &mut grad).is_err() {
            return Ok(());
        }
        // A step of 1e-5, not 1e-6: a soft-label intersection (P + G − D)/2 of a class the
        // prediction nearly misses cancels most of its digits, so the loss itself carries
        // relative errors near 1e-12 and a smaller step turns them into a wrong difference
        // quotient (the saved case: analytic −0.548969146, autograd the same, quotient
        // −0.548969146 with h = 1e-5 and −0.549030 with h = 1e-6).
        let h = 1e-5;
        let mut p = vec![0.0; z.len()];
        dice_core::loss::probabilities(case.shape, &z, act, &mut p).unwrap();
        for i in 0..z.len() {
            if case.near_kink(&p, i) {
                continue;
            }
            let mut zz = z.clone();
            zz[i] += h;
            let plus = value_at(&zz);
            zz[i] -= 2.0 * h;
            let minus = value_at(&zz);
            let (Some(plus), Some(minus)) = (plus, minus) else { continue };
            let fd = (plus - minus) / (2.0 * h);
            prop_assert!((grad[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()), "{i}: {} vs {fd} ({act:?})", grad[i]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// `gradient_logits` with one upstream value per group (the backward of reduction None):
    /// ∂(Σ_g u_g·L_g)/∂z against central finite differences.
    #[test]
    fn logits_gradient_with_per_group_upstream(case in case_strategy(), softmax in any::<bool>()) {
        let act = if softmax && case.shape.channels >= 2 { Activation::Softmax } else { Activation::Sigmoid };
        let loss = case.loss().reduction(Reduction::None);
        let reference = case.reference_loss().reduction(Reduction::None);
        let groups = loss.group_count(case.shape);
        let up: Vec<f64> = (0..groups).map(|g| 1.5 - 0.4 * g as f64).collect();
        let z: Vec<f64> = case.p.iter().map(|&p| (p - 0.5) * 6.0).collect();
        let objective = |z: &[f64]| -> Option<f64> {
            let mut p = vec![0.0; z.len()];
            dice_core::loss::probabilities(case.shape, z, act, &mut p).ok()?;
            objective(&reference, &case.input(&p, &case.labels), Some(&up))
        };
        let mut p = vec![0.0; z.len()];
        dice_core::loss::probabilities(case.shape, &z, act, &mut p).unwrap();
        let mut st = stats_ws(case.shape);
        if loss.statistics(&case.input(&p, &case.labels), &mut st).is_err() || loss.loss(case.shape, &st).is_err() {
            return Ok(());
        }
        let mut grad = vec![0.0; z.len()];
        loss.gradient_logits(&case.input(&z, &case.labels), act, &st, Upstream::PerGroup(&up), &mut grad).unwrap();
        let h = 1e-6;
        for i in 0..z.len() {
            if case.near_kink(&p, i) {
                continue;
            }
            let mut zz = z.clone();
            zz[i] += h;
            let plus = objective(&zz);
            zz[i] -= 2.0 * h;
            let minus = objective(&zz);
            let (Some(plus), Some(minus)) = (plus, minus) else { continue };
            let fd = (plus - minus) / (2.0 * h);
            prop_assert!((grad[i] - fd).abs() <= 1e-5 * (1.0 + fd.abs()), "{i}: {} vs {fd} ({act:?})", grad[i]);
        }
    }
}

#[test]
fn softmax_probabilities_are_stable_and_sum_to_one() {
    let shape = Shape::new(1, 3, 2);
    let z = [1000.0f64, -5.0, 999.0, 0.0, -1000.0, 5.0];
    let mut p = [0.0; 6];
    dice_core::loss::probabilities(shape, &z, Activation::Softmax, &mut p).unwrap();
    for s in 0..2 {
        let sum: f64 = (0..3).map(|c| p[c * 2 + s]).sum();
        assert!(approx(sum, 1.0, 1e-15));
    }
    assert!(approx(p[0], 1.0 / (1.0 + (-1.0f64).exp()), 1e-12));
    let e = dice_core::loss::probabilities(
        shape,
        &[0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0],
        Activation::Softmax,
        &mut p,
    )
    .unwrap_err();
    assert_eq!(
        e,
        DiceError::NonFinite {
            operand: Operand::Logits,
            index: 1
        }
    );
    let mut q = [0.0f32; 2];
    dice_core::loss::probabilities(
        Shape::new(1, 1, 2),
        &[-200.0f32, 200.0],
        Activation::Sigmoid,
        &mut q,
    )
    .unwrap();
    assert_eq!(q, [0.0, 1.0]);
}

/// The f32 path gives the f64 path's loss and gradient to f32 precision.
#[test]
fn f32_matches_f64() {
    let shape = Shape::new(2, 3, 1000);
    let n = 6000;
    let p64: Vec<f64> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f64 / 1000.0)
        .collect();
    let g64: Vec<f64> = (0..n).map(|i| f64::from((i * 31) % 7 < 3)).collect();
    let p32: Vec<f32> = p64.iter().map(|&v| v as f32).collect();
    let g32: Vec<f32> = g64.iter().map(|&v| v as f32).collect();
    let p64: Vec<f64> = p32.iter().map(|&v| v as f64).collect();
    for loss in [
        SoftLoss::dice(),
        SoftLoss::dice().squared_pred(true).batch(true),
        SoftLoss::generalized_dice(Weighting::Square),
    ] {
        let mut st = stats_ws(shape);
        let mut g_a = vec![0.0f64; n];
        let mut g_b = vec![0.0f32; n];
        let a = loss
            .loss_and_gradient(
                &SoftInput::new(shape, &p64, Target::Dense(&g64)).unwrap(),
                &mut st,
                &mut g_a,
            )
            .unwrap();
        let b = loss
            .loss_and_gradient(
                &SoftInput::new(shape, &p32, Target::Dense(&g32)).unwrap(),
                &mut st,
                &mut g_b,
            )
            .unwrap();
        assert!(approx(a.value, b.value, 1e-6));
        for i in 0..n {
            assert!((g_a[i] - g_b[i] as f64).abs() <= 1e-6 * (1.0 + g_a[i].abs()) + 1e-9);
        }
    }
}

/// A soft target `g` (label smoothing, mixup): the soft-label loss is minimal (zero up to the
/// smoothing) at `p = g`, and every other `p` scores worse. The classic `Σp·g` form is not
/// minimal there: pushing `p` towards 0/1 lowers it.
#[test]
fn soft_label_loss_is_minimal_at_the_target() {
    let shape = Shape::new(1, 2, 8);
    let g: Vec<f64> = (0..16)
        .map(|i| [0.1, 0.7, 0.35, 0.9, 0.5, 0.2, 0.65, 0.8][i % 8])
        .collect();
    let value = |loss: &SoftLoss, p: &[f64]| {
        let input = SoftInput::new(shape, p, Target::Dense(&g)).unwrap();
        loss_of(loss, &input)
    };
    for base in [
        SoftLoss::dice(),
        SoftLoss::jaccard(),
        SoftLoss::tversky(0.3, 0.7),
        SoftLoss::generalized_dice(Weighting::Simple),
    ] {
        let soft = base.soft_label(true);
        let at_target = value(&soft, &g);
        assert!(at_target.abs() < 1e-9, "{soft:?}: {at_target}");
        let mut state = 7u64;
        for _ in 0..200 {
            let p: Vec<f64> = g
                .iter()
                .map(|&x| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (state >> 11) as f64 / (1u64 << 53) as f64;
                    (x + (r - 0.5) * 0.4).clamp(0.0, 1.0)
                })
                .collect();
            assert!(value(&soft, &p) > at_target, "{soft:?}");
        }
        // The classic form: rounding the target's values to 0/1 gives a lower loss than p = g.
        let rounded: Vec<f64> = g
            .iter()
            .map(|&x| if x >= 0.5 { 1.0 } else { 0.0 })
            .collect();
        assert!(value(&base, &rounded) < value(&base, &g), "{base:?}");
    }
}

/// Binary targets: the soft-label form gives the classic values and gradients, for probabilities
/// and for logits, dense or label-map targets, also where `p` sits exactly on 0 or 1.
#[test]
fn soft_label_equals_classic_for_binary_targets() {
    let shape = Shape::new(2, 3, 5);
    let labels: Vec<i64> = (0..10).map(|i| (i * 7 % 3) as i64).collect();
    let dense = one_hot(&labels, shape);
    let mut p: Vec<f64> = (0..30).map(|i| ((i * 37) % 29) as f64 / 28.0).collect();
    p[3] = 0.0;
    p[4] = 1.0;
    for base in [
        SoftLoss::dice(),
        SoftLoss::jaccard().reduction(Reduction::Sum),
        SoftLoss::tversky(0.2, 0.8).batch(true),
        SoftLoss::generalized_dice(Weighting::Square).include_background(false),
    ] {
        for target in [Target::Dense(&dense[..]), Target::labels(&labels[..])] {
            let input = SoftInput::new(shape, &p, target).unwrap();
            let run = |loss: SoftLoss| {
                let mut st = stats_ws(shape);
                let mut grad = vec![0.0; p.len()];
                let v = loss.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
                let mut zgrad = vec![0.0; p.len()];
                let z = loss
                    .loss_and_gradient_logits(&input, Activation::Softmax, &mut st, &mut zgrad)
                    .unwrap();
                (v.value, grad, z.value, zgrad)
            };
            let (a, b) = (run(base), run(base.soft_label(true)));
            assert!(
                approx(a.0, b.0, 1e-12) && approx(a.2, b.2, 1e-12),
                "{base:?}"
            );
            for (x, y) in a.1.iter().zip(&b.1).chain(a.3.iter().zip(&b.3)) {
                assert!(approx(*x, *y, 1e-12), "{base:?}: {x} vs {y}");
            }
        }
    }
}

/// Soft-label statistics merge exactly: chunks merged equal the whole; mixing them with classic
/// statistics is refused.
#[test]
fn soft_label_statistics_merge() {
    let p: Vec<f64> = (0..100).map(|i| ((i * 13) % 17) as f64 / 16.0).collect();
    let g: Vec<f64> = (0..100).map(|i| ((i * 5) % 11) as f64 / 10.0).collect();
    let whole = SoftStats::of(&p, &g, Moment::SoftLabel).unwrap();
    let d: f64 = p.iter().zip(&g).map(|(a, b)| (a - b).abs()).sum();
    assert!(approx(whole.abs_diff, d, 1e-12));
    let want_i = (p.iter().sum::<f64>() + g.iter().sum::<f64>() - d) / 2.0;
    assert!(approx(whole.intersection, want_i, 1e-12));
    let a = SoftStats::of(&p[..37], &g[..37], Moment::SoftLabel).unwrap();
    let b = SoftStats::of(&p[37..], &g[37..], Moment::SoftLabel).unwrap();
    let m = a.merge(&b).unwrap();
    for (x, y) in [
        (m.intersection, whole.intersection),
        (m.abs_diff, whole.abs_diff),
        (m.pred, whole.pred),
    ] {
        assert!(approx(x, y, 1e-12));
    }
    assert_eq!(m.voxels, 100);
    let classic = SoftStats::of(&p, &g, Moment::Linear).unwrap();
    assert_eq!(
        whole.merge(&classic).unwrap_err(),
        DiceError::MomentMismatch
    );
}

/// The backward pass from kept probabilities equals the one that recomputes them, bit for bit,
/// and refuses probabilities outside [0, 1].
#[test]
fn gradient_from_kept_probabilities_equals_recomputed() {
    use dice_core::loss::probabilities;
    use dice_core::{Activation, Shape, SoftInput, SoftLoss, SoftStats, Target, Upstream};
    let (n, c, s) = (2usize, 3usize, 37usize);
    let shape = Shape::new(n, c, s);
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let z: Vec<f64> = (0..n * c * s).map(|_| 6.0 * next() - 3.0).collect();
    let labels: Vec<u8> = (0..n * s).map(|_| (next() * 3.0) as u8).collect();
    for activation in [Activation::Softmax, Activation::Sigmoid] {
        for loss in [
            SoftLoss::dice(),
            SoftLoss::jaccard().batch(true),
            SoftLoss::tversky(0.3, 0.7),
        ] {
            let input = SoftInput::new(shape, &z, Target::labels(&labels[..])).unwrap();
            let mut probs = vec![0.0; z.len()];
            probabilities(shape, &z, activation, &mut probs).unwrap();
            let mut stats = vec![SoftStats::zero(loss.moment()); n * c];
            loss.statistics(
                &SoftInput::new(shape, &probs, Target::labels(&labels[..])).unwrap(),
                &mut stats,
            )
            .unwrap();
            let mut want = vec![0.0; z.len()];
            loss.gradient_logits(&input, activation, &stats, Upstream::Scalar(0.7), &mut want)
                .unwrap();
            let mut got = probs.clone();
            loss.gradient_logits_from_probabilities(
                &input,
                activation,
                &stats,
                Upstream::Scalar(0.7),
                &mut got,
            )
            .unwrap();
            assert_eq!(got, want);
            let mut bad = probs.clone();
            bad[5] = 1.5;
            let e = loss
                .gradient_logits_from_probabilities(
                    &input,
                    activation,
                    &stats,
                    Upstream::Scalar(1.0),
                    &mut bad,
                )
                .unwrap_err();
            assert!(e.to_string().contains('5'), "{e}");
        }
    }
}

/// The label-map fast paths (statistics and softmax chain, vectorized) give the same bits as
/// the general paths, which an all-ones voxel mask selects, in f32 and f64, with an ignore
/// label, at whatever SIMD level runs (run-tests.sh runs every level).
#[test]
fn label_fast_paths_equal_general_paths() {
    use dice_core::{Activation, Shape, SoftInput, SoftLoss, SoftStats, Target, Upstream};
    fn run<T: dice_core::Float>(z: &[T], labels: &[i64], shape: Shape, loss: SoftLoss<'_>) {
        let ones = vec![1u8; shape.batch * shape.spatial];
        let mut out = Vec::new();
        for mask in [None, Some(&ones[..])] {
            let mut input = SoftInput::new(shape, z, Target::labels_ignoring(labels, 3)).unwrap();
            if let Some(m) = mask {
                input = input.with_mask(m).unwrap();
            }
            let mut stats = vec![SoftStats::zero(loss.moment()); shape.batch * shape.channels];
            let mut grad = vec![T::ZERO; z.len()];
            let v = loss
                .loss_and_gradient_logits(&input, Activation::Softmax, &mut stats, &mut grad)
                .unwrap();
            let mut g2 = vec![T::ZERO; z.len()];
            loss.gradient_logits(
                &input,
                Activation::Softmax,
                &stats,
                Upstream::Scalar(0.5),
                &mut g2,
            )
            .unwrap();
            out.push((
                v.value.to_bits(),
                grad.iter()
                    .chain(&g2)
                    .map(|x| x.to_f64().to_bits())
                    .collect::<Vec<_>>(),
            ));
        }
        assert_eq!(out[0], out[1]);
    }
    let shape = Shape::new(2, 4, 1037);
    let mut state = 11u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let z: Vec<f64> = (0..2 * 4 * 1037).map(|_| 8.0 * next() - 4.0).collect();
    let labels: Vec<i64> = (0..2 * 1037).map(|_| (next() * 4.0) as i64).collect();
    let z32: Vec<f32> = z.iter().map(|&v| v as f32).collect();
    for loss in [
        SoftLoss::dice(),
        SoftLoss::jaccard().batch(true).squared_pred(true),
        SoftLoss::tversky(0.2, 0.8).include_background(false),
    ] {
        run(&z, &labels, shape, loss);
        run(&z32, &labels, shape, loss);
    }
}

/// The sigmoid chain rule's branch-free kernels (no mask, no soft labels) give the bits of the
/// general per-voxel path, which an all-ones mask selects, for dense and label targets (with
/// an ignore label), f32 and f64, at whatever SIMD level runs (`DICE_SIMD`).
#[test]
fn sigmoid_chain_kernels_match_the_general_path() {
    fn check<T: dice_core::Float>() {
        let shape = dice_core::Shape::new(2, 3, 1000);
        let len = 6000;
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let z: Vec<T> = (0..len)
            .map(|_| T::from_f64((next() % 2001) as f64 / 100.0 - 10.0))
            .collect();
        let g: Vec<T> = (0..len).map(|_| T::from_f64((next() % 2) as f64)).collect();
        let labels: Vec<u8> = (0..2000)
            .map(|_| [0u8, 1, 2, 9][(next() % 4) as usize])
            .collect();
        let ones = vec![1u8; 2000];
        let stats: Vec<dice_core::SoftStats> = (0..6)
            .map(|k| dice_core::SoftStats {
                intersection: 100.0 + k as f64,
                pred: 400.0 + 3.0 * k as f64,
                target: 300.0,
                voxels: 1000,
                ..Default::default()
            })
            .collect();
        let loss = dice_core::SoftLoss::dice().squared_pred(false);
        let targets = [
            dice_core::Target::Dense(&g[..]),
            dice_core::Target::labels_ignoring(&labels[..], 9),
        ];
        for target in targets {
            let again = match &target {
                dice_core::Target::Dense(g) => dice_core::Target::Dense(g),
                _ => dice_core::Target::labels_ignoring(&labels[..], 9),
            };
            let plain = dice_core::SoftInput::new(shape, &z, target).unwrap();
            let masked = dice_core::SoftInput::new(shape, &z, again)
                .unwrap()
                .with_mask(&ones)
                .unwrap();
            let mut a = vec![T::ZERO; len];
            let mut b = vec![T::ZERO; len];
            let up = dice_core::Upstream::Scalar(0.75);
            let act = dice_core::Activation::Sigmoid;
            loss.gradient_logits(&plain, act, &stats, up, &mut a)
                .unwrap();
            loss.gradient_logits(&masked, act, &stats, up, &mut b)
                .unwrap();
            let bits = |v: &[T]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{}", T::NAME);
            assert!(a.iter().any(|v| v.to_f64() != 0.0));
        }
    }
    check::<f32>();
    check::<f64>();
}
