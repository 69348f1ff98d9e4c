//! Bad input never panics: random shapes, lengths, values (NaN, ±∞, out of range), labels and
//! parameters go through every entry point and come back as errors or values.

use dice_core::hard::{self, Confusion, EmptyPolicy, MeanValue, Metric};
use dice_core::{
    Activation, DiceError, EmptyValue, LossForm, Moment, Operand, Reduction, Shape, SoftInput,
    SoftLoss, SoftStats, Target, Upstream, Weighting,
};
use proptest::prelude::*;

fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..=1.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(-f64::INFINITY),
        1 => -2.0f64..3.0,
        1 => Just(-0.0),
        1 => Just(f64::MAX),
    ]
}

fn wild_loss(kind: u8, a: f64, b: f64, g: f64, s: (f64, f64)) -> SoftLoss<'static> {
    let l = match kind % 5 {
        0 => SoftLoss::dice(),
        1 => SoftLoss::jaccard().squared_pred(true),
        2 => SoftLoss::tversky(a, b),
        3 => SoftLoss::generalized_dice(Weighting::Square).squared_pred(kind > 100),
        _ => SoftLoss::focal_tversky(a, b, g),
    };
    l.smooth(s.0, s.1)
        .gamma(if kind.is_multiple_of(3) { g } else { 1.0 })
        .include_background(kind.is_multiple_of(2))
        .batch(kind.is_multiple_of(7))
        .form(if kind.is_multiple_of(11) {
            LossForm::NegLog
        } else {
            LossForm::OneMinus
        })
        .reduction(match kind % 3 {
            0 => Reduction::Mean,
            1 => Reduction::Sum,
            _ => Reduction::None,
        })
        .zero_denominator(match kind % 4 {
            0 => EmptyValue::Nan,
            1 => EmptyValue::One,
            2 => EmptyValue::Zero,
            _ => EmptyValue::Skip,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn soft_entry_points_never_panic(
        n in 0usize..3, c in 0usize..4, s in 0usize..9,
        p in proptest::collection::vec(wild_f64(), 0..60),
        g in proptest::collection::vec(wild_f64(), 0..60),
        labels in proptest::collection::vec(-2i64..6, 0..30),
        mask in proptest::option::of(proptest::collection::vec(0u8..2, 0..30)),
        use_labels in any::<bool>(),
        ignore in proptest::option::of(-1i64..6),
        kind in any::<u8>(),
        params in (wild_f64(), wild_f64(), wild_f64(), (wild_f64(), wild_f64())),
        weights in proptest::option::of(proptest::collection::vec(wild_f64(), 0..5)),
        stats_len in 0usize..14,
        up in proptest::option::of(proptest::collection::vec(wild_f64(), 0..8)),
    ) {
        let shape = Shape::new(n, c, s);
        // Most cases get matching lengths, so that the value checks are reached too.
        let (mut p, mut g, mut labels, mut mask) = (p, g, labels, mask);
        if kind % 4 != 3 {
            let cycle = |v: &mut Vec<f64>, len: usize| {
                let src = if v.is_empty() { vec![0.5] } else { v.clone() };
                *v = (0..len).map(|i| src[i % src.len()]).collect();
            };
            cycle(&mut p, n * c * s);
            cycle(&mut g, n * c * s);
            labels = (0..n * s).map(|i| labels.get(i).copied().unwrap_or(1)).collect();
            if let Some(m) = mask.as_mut() {
                m.resize(n * s, 1);
            }
        }
        let (a, b, gm, sm) = params;
        let mut loss = wild_loss(kind, a * 2.0, b * 2.0, gm * 3.0, sm);
        if let Some(w) = &weights {
            loss = loss.class_weights(w);
        }
        let target = if use_labels {
            Target::Labels { labels: (&labels[..]).into(), ignore_index: ignore }
        } else {
            Target::Dense(&g[..])
        };
        let mut stats = vec![SoftStats::default(); stats_len];
        let mut grad = vec![0.0f64; p.len()];
        let _ = loss.validate(shape);
        let _ = loss.group_count(shape);
        if let Ok(input) = SoftInput::new(shape, &p, target) {
            let input = match &mask {
                Some(m) => match input.with_mask(m) {
                    Ok(i) => i,
                    Err(_) => input,
                },
                None => input,
            };
            let _ = loss.statistics(&input, &mut stats);
            let _ = loss.loss(shape, &stats);
            let mut per = vec![None; stats_len];
            let _ = loss.group_losses(shape, &stats, &mut per);
            let upstream = match &up {
                Some(u) => Upstream::PerGroup(u),
                None => Upstream::Scalar(a),
            };
            let _ = loss.gradient(&input, &stats, upstream, &mut grad);
            let _ = loss.loss_and_gradient(&input, &mut stats, &mut grad);
            for act in [Activation::Sigmoid, Activation::Softmax] {
                let _ = loss.loss_and_gradient_logits(&input, act, &mut stats, &mut grad);
            }
        }
        let _ = dice_core::loss::probabilities(shape, &p, Activation::Softmax, &mut grad);
        let _ = SoftStats::of(&p, &g, Moment::Linear);
        let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
        let g32: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        let _ = SoftStats::of(&p32, &g32, Moment::Squared);
        let _ = hard::confusion_from_probabilities(&p32, &g32, a);
        let _ = hard::confusion_from_probabilities(&p, &g, b);
        let mut conf = vec![Confusion::default(); stats_len];
        let _ = hard::batch_confusion_probabilities(shape, &p, &g, 0.5, mask.as_deref(), &mut conf);
        let pl: Vec<i32> = labels.iter().rev().map(|&v| v as i32).collect();
        let tl: Vec<i32> = labels.iter().map(|&v| v as i32).collect();
        let _ = hard::label_confusion(&pl, &tl, ignore, &mut conf);
        let _ = hard::batch_label_confusion(shape, &pl, &tl, ignore, &mut conf);
        let mut means = vec![MeanValue { mean: None, defined: 0, total: 0 }; c];
        let _ = hard::class_means(shape, &conf, Metric::Dice, EmptyPolicy::DEFAULT, kind.is_multiple_of(2), &mut means);
    }
}

#[test]
fn every_parameter_error_is_named() {
    let shape = Shape::new(1, 2, 3);
    let bad = |l: SoftLoss| match l.validate(shape).unwrap_err() {
        DiceError::InvalidParameter { name, .. } => name,
        e => panic!("{e:?}"),
    };
    assert_eq!(bad(SoftLoss::dice().smooth(-1.0, 0.0)), "smooth_nr");
    assert_eq!(bad(SoftLoss::dice().smooth(0.0, f64::NAN)), "smooth_dr");
    assert_eq!(bad(SoftLoss::tversky(0.0, 0.0)), "alpha + beta");
    assert_eq!(bad(SoftLoss::tversky(-0.1, 1.0)), "alpha");
    assert_eq!(bad(SoftLoss::tversky(0.5, f64::INFINITY)), "beta");
    assert_eq!(bad(SoftLoss::dice().gamma(0.0)), "gamma");
    assert_eq!(
        bad(SoftLoss::tversky(0.5, 0.5).squared_pred(true)),
        "squared_pred"
    );
    assert_eq!(
        bad(SoftLoss::generalized_dice(Weighting::Square).class_weights(&[1.0, 1.0])),
        "weight"
    );
    assert_eq!(bad(SoftLoss::dice().class_weights(&[1.0, -1.0])), "weight");
    assert_eq!(
        SoftLoss::dice()
            .class_weights(&[1.0])
            .validate(shape)
            .unwrap_err(),
        DiceError::LengthMismatch {
            operand: Operand::ClassWeights,
            expected: 2,
            found: 1
        }
    );
    assert!(SoftLoss::dice()
        .include_background(false)
        .validate(Shape::new(1, 1, 3))
        .is_err());
    assert_eq!(
        Shape::new(0, 2, 3).elements(),
        Err(DiceError::Empty {
            operand: Operand::Prediction
        })
    );
    assert!(matches!(
        Shape::new(usize::MAX, 2, 3).elements(),
        Err(DiceError::ShapeOverflow { .. })
    ));
    let p = [0.5; 6];
    assert_eq!(
        SoftInput::new(shape, &p[..5], Target::Dense(&p)).unwrap_err(),
        DiceError::LengthMismatch {
            operand: Operand::Prediction,
            expected: 6,
            found: 5
        }
    );
    assert_eq!(
        SoftInput::new(shape, &p, Target::labels(&[0u8, 1][..])).unwrap_err(),
        DiceError::LengthMismatch {
            operand: Operand::Labels,
            expected: 3,
            found: 2
        }
    );
    // Messages say what and where.
    let e = DiceError::OutOfRange {
        operand: Operand::Prediction,
        index: 7,
        value: 3.5,
    };
    let msg = format!("{e}");
    assert!(
        msg.contains("prediction")
            && msg.contains("7")
            && msg.contains("3.5")
            && msg.contains("logits"),
        "{msg}"
    );
    let e = DiceError::LabelOutOfRange {
        operand: Operand::Labels,
        index: 4,
        label: 255,
        classes: 3,
    };
    assert!(format!("{e}").contains("label 255 at flat index 4"));
    let _: &dyn std::error::Error = &e;
}
