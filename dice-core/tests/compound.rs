//! Dice + cross-entropy / focal, fused: analytic gradients against central finite differences
//! for every option, hand-checked values, and the fused form against its two terms computed
//! apart.

use dice_core::compound::{CompoundLoss, Term};
use dice_core::{Activation, LossForm, Reduction, Shape, SoftInput, SoftLoss, SoftStats, Target};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    shape: Shape,
    z: Vec<f64>,
    dense: Vec<f64>,
    labels: Vec<i64>,
    use_labels: bool,
    ignore: bool,
    mask: Option<Vec<u8>>,
    softmax: bool,
    term: u8,
    weights: Vec<f64>,
    weighted: bool,
    smoothing: f64,
    gamma: f64,
    alpha: Option<f64>,
    background: bool,
    batch: bool,
    sum: bool,
    soft_label: bool,
    lambdas: (f64, f64),
}

impl Case {
    fn loss(&self) -> CompoundLoss<'_> {
        let w = self.weighted.then_some(&self.weights[..]);
        let dice = SoftLoss::dice()
            .include_background(self.background || self.shape.channels < 2)
            .batch(self.batch)
            .soft_label(self.soft_label)
            .reduction(if self.sum {
                Reduction::Sum
            } else {
                Reduction::Mean
            });
        let act = if self.softmax && self.shape.channels >= 2 {
            Activation::Softmax
        } else {
            Activation::Sigmoid
        };
        let term = match self.term {
            0 => Term::CrossEntropy {
                weight: w,
                label_smoothing: self.smoothing,
            },
            1 => Term::BinaryCrossEntropy { pos_weight: w },
            _ => Term::Focal {
                gamma: self.gamma,
                alpha: self.alpha,
                weight: w,
            },
        };
        CompoundLoss::dice_ce(dice, act)
            .term(term)
            .lambdas(self.lambdas.0, self.lambdas.1)
    }

    fn input<'a>(&'a self, z: &'a [f64]) -> SoftInput<'a, f64> {
        let target = match (self.use_labels, self.ignore) {
            (false, _) => Target::Dense(&self.dense[..]),
            (true, false) => Target::labels(&self.labels[..]),
            (true, true) => Target::labels_ignoring(&self.labels[..], 255),
        };
        let i = SoftInput::new(self.shape, z, target).unwrap();
        match &self.mask {
            Some(m) => i.with_mask(m).unwrap(),
            None => i,
        }
    }

    fn value(&self, z: &[f64]) -> f64 {
        let mut st = vec![SoftStats::default(); self.shape.batch * self.shape.channels];
        let mut buf = vec![0.0; z.len()];
        self.loss()
            .loss(&self.input(z), &mut st, &mut buf)
            .unwrap()
            .value
    }
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..3, 1usize..5, 1usize..10)
        .prop_flat_map(|(n, c, s)| {
            let len = n * c * s;
            (
                Just(Shape::new(n, c, s)),
                proptest::collection::vec(-4.0f64..4.0, len),
                proptest::collection::vec(prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0], len),
                proptest::collection::vec(
                    prop_oneof![4 => 0i64..c as i64, 1 => Just(255i64)],
                    n * s,
                ),
                (any::<bool>(), any::<bool>()),
                proptest::option::of(proptest::collection::vec(
                    prop_oneof![Just(0u8), Just(1u8), Just(1u8)],
                    n * s,
                )),
                (any::<bool>(), 0u8..3),
                (proptest::collection::vec(0.1f64..3.0, c), any::<bool>()),
                (
                    prop_oneof![Just(0.0), 0.0f64..0.3],
                    prop_oneof![Just(0.0), Just(2.0), 0.5f64..3.0],
                    proptest::option::of(0.0f64..=1.0),
                ),
                (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
                prop_oneof![
                    Just((1.0, 1.0)),
                    Just((0.0, 1.0)),
                    Just((1.0, 0.0)),
                    Just((0.7, 1.3))
                ],
            )
        })
        .prop_map(
            |(
                shape,
                z,
                dense,
                mut labels,
                (use_labels, ignore),
                mask,
                (softmax, term),
                (weights, weighted),
                (smoothing, gamma, alpha),
                (background, batch, sum, soft_label),
                lambdas,
            )| {
                if !(use_labels && ignore) {
                    for l in labels.iter_mut().filter(|l| **l == 255) {
                        *l = 0;
                    }
                }
                Case {
                    shape,
                    z,
                    dense,
                    labels,
                    use_labels,
                    ignore,
                    mask,
                    softmax,
                    term,
                    weights,
                    weighted,
                    smoothing,
                    gamma,
                    alpha,
                    background,
                    batch,
                    sum,
                    soft_label,
                    lambdas,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// ∂loss/∂z of the fused loss for every term, option, target form, mask and ignore label.
    #[test]
    fn gradient_matches_finite_differences(case in case_strategy()) {
        let loss = case.loss();
        let input = case.input(&case.z);
        let mut st = vec![SoftStats::default(); case.shape.batch * case.shape.channels];
        let mut grad = vec![0.0; case.z.len()];
        let v = loss.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
        prop_assert!(v.value.is_finite());
        let h = 1e-6;
        for i in 0..case.z.len() {
            let mut zz = case.z.clone();
            zz[i] += h;
            let plus = case.value(&zz);
            zz[i] -= 2.0 * h;
            let minus = case.value(&zz);
            let fd = (plus - minus) / (2.0 * h);
            prop_assert!((grad[i] - fd).abs() <= 2e-5 * (1.0 + fd.abs()),
                "element {i}: analytic {} vs finite difference {fd}; {:?}", grad[i], loss);
        }
    }

    /// The fused value and gradient equal the Dice loss and the voxel term computed apart
    /// (each with the other's λ set to 0) and added.
    #[test]
    fn fused_equals_the_sum_of_its_terms(case in case_strategy()) {
        let loss = case.loss();
        let input = case.input(&case.z);
        let pairs = case.shape.batch * case.shape.channels;
        let run = |l: CompoundLoss| {
            let mut st = vec![SoftStats::default(); pairs];
            let mut grad = vec![0.0; case.z.len()];
            let v = l.loss_and_gradient(&input, &mut st, &mut grad).unwrap();
            (v, grad)
        };
        let (both, g) = run(loss);
        let (dice, gd) = run(loss.lambdas(loss.lambda_dice, 0.0));
        let (term, gt) = run(loss.lambdas(0.0, loss.lambda_term));
        prop_assert!((both.value - dice.value - term.value).abs() <= 1e-12 * (1.0 + both.value.abs()));
        for i in 0..g.len() {
            prop_assert!((g[i] - gd[i] - gt[i]).abs() <= 1e-12 * (1.0 + g[i].abs()));
        }
        // The Dice part equals the plain Dice loss over the same logits.
        if loss.lambda_dice == 1.0 {
            let mut st = vec![SoftStats::default(); pairs];
            let mut g2 = vec![0.0; case.z.len()];
            let plain = loss.dice.loss_and_gradient_logits(&input, loss.activation, &mut st, &mut g2).unwrap();
            prop_assert!((plain.value - dice.dice.value).abs() <= 1e-12);
            for i in 0..g2.len() {
                prop_assert!((g2[i] - gd[i]).abs() <= 1e-10 * (1.0 + g2[i].abs()), "{i}: {} vs {}", g2[i], gd[i]);
            }
        }
    }
}

/// Cross-entropy by hand: two voxels, three classes, label targets with class weights and
/// label smoothing, as torch.nn.CrossEntropyLoss defines them.
#[test]
fn cross_entropy_by_hand() {
    let shape = Shape::new(1, 3, 2);
    let z = [1.0f64, -0.5, 0.3, 2.0, 0.0, -1.0];
    let labels = [2i64, 0];
    let w = [0.5, 2.0, 1.5];
    let eps = 0.1;
    let loss = CompoundLoss::dice_ce(SoftLoss::dice(), Activation::Softmax)
        .lambdas(0.0, 1.0)
        .term(Term::CrossEntropy {
            weight: Some(&w),
            label_smoothing: eps,
        });
    let input = SoftInput::new(shape, &z, Target::labels(&labels[..])).unwrap();
    let mut st = [SoftStats::default(); 3];
    let mut buf = [0.0; 6];
    let v = loss.loss(&input, &mut st, &mut buf).unwrap();
    // torch: (1 − ε)·Σ w_y·(−log p_y)/Σ w_y + ε/C·Σ_i Σ_c w_c·(−log p_c)/Σ w_y.
    let logp = |s: usize, c: usize| {
        let zs: Vec<f64> = (0..3).map(|k| z[k * 2 + s]).collect();
        let m = zs.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + zs.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        zs[c] - lse
    };
    let sw = w[2] + w[0];
    let nll = (w[2] * -logp(0, 2) + w[0] * -logp(1, 0)) / sw;
    let smooth: f64 = (0..2)
        .map(|s| (0..3).map(|c| w[c] * -logp(s, c)).sum::<f64>())
        .sum::<f64>()
        / sw;
    let want = (1.0 - eps) * nll + eps / 3.0 * smooth;
    assert!((v.term - want).abs() < 1e-12, "{} vs {want}", v.term);
    assert_eq!(v.value, v.term);
}

/// nnU-Net's form: −Dice; the focal exponent is refused with it; reduction None is refused.
#[test]
fn presets_and_refusals() {
    let l = CompoundLoss::nnunet_dc_and_ce(false);
    assert_eq!(l.dice.form, LossForm::Negative);
    assert!(!l.dice.include_background);
    let shape = Shape::new(1, 2, 4);
    assert!(l.validate(shape).is_ok());
    let bad = CompoundLoss::dice_ce(
        SoftLoss::dice().reduction(Reduction::None),
        Activation::Softmax,
    );
    assert!(bad.validate(shape).is_err());
    let mut focal_neg = l;
    focal_neg.dice = focal_neg.dice.gamma(2.0);
    assert!(focal_neg.validate(shape).is_err());
    let smoothing = l.term(Term::CrossEntropy {
        weight: None,
        label_smoothing: 1.5,
    });
    assert!(smoothing.validate(shape).is_err());
    let w = [1.0];
    let short = l.term(Term::CrossEntropy {
        weight: Some(&w),
        label_smoothing: 0.0,
    });
    assert!(short.validate(shape).is_err());
    // A NaN logit is named.
    let z = [0.0, f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let labels = [0i64, 1, 0, 1];
    let input = SoftInput::new(shape, &z, Target::labels(&labels[..])).unwrap();
    let mut st = [SoftStats::default(); 2];
    let mut g = [0.0; 8];
    let e = l.loss_and_gradient(&input, &mut st, &mut g).unwrap_err();
    assert!(e.to_string().contains("logits"), "{e}");
}
