//! Numbers agree with MONAI's DiceLoss, GeneralizedDiceLoss, TverskyLoss and DiceMetric
//! (fixtures computed by MONAI 1.6.1 itself: dice-core/tests/golden/generate.py).

#[path = "../../dice-core/tests/golden/fixtures.rs"]
mod fixtures;

use dice_core::EmptyPolicy;
use dice_tch::{DiceLoss, DiceMetric, GeneralizedDiceLoss, Reduction, TverskyLoss, Weighting};
use fixtures::*;
use tch::{Kind, Tensor};

fn p() -> Tensor {
    Tensor::from_slice(&A_P).view([2, 3, 24])
}
fn labels() -> Tensor {
    Tensor::from_slice(&A_LABELS).view([2, 1, 24])
}
fn onehot() -> Tensor {
    labels()
        .view([2, 1, 24])
        .eq_tensor(&Tensor::arange(3, (Kind::Int64, tch::Device::Cpu)).view([1, 3, 1]))
        .to_kind(Kind::Double)
}

fn same(ours: f64, theirs: f64, tol: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= tol * (1.0 + theirs.abs()),
        "{what}: dice-tch {ours} vs MONAI {theirs}"
    );
}

#[test]
fn dice_loss_options() {
    let (x, g, l) = (p(), onehot(), labels());
    let v = |t: Tensor| t.double_value(&[]);
    same(
        v(DiceLoss::new().forward(&x, &g).unwrap()),
        MONAI_DICE_DEFAULT[0],
        1e-13,
        "DiceLoss()",
    );
    same(
        v(DiceLoss::new().forward(&x, &l).unwrap()),
        MONAI_DICE_ONEHOT_Y[0],
        1e-13,
        "to_onehot_y",
    );
    same(
        v(DiceLoss::new()
            .include_background(false)
            .forward(&x, &g)
            .unwrap()),
        MONAI_DICE_NO_BG[0],
        1e-13,
        "no bg",
    );
    same(
        v(DiceLoss::new().squared_pred(true).forward(&x, &g).unwrap()),
        MONAI_DICE_SQUARED[0],
        1e-13,
        "squared",
    );
    same(
        v(DiceLoss::new().jaccard(true).forward(&x, &g).unwrap()),
        MONAI_DICE_JACCARD[0],
        1e-13,
        "jaccard",
    );
    same(
        v(DiceLoss::new().batch(true).forward(&x, &g).unwrap()),
        MONAI_DICE_BATCH[0],
        1e-13,
        "batch",
    );
    same(
        v(DiceLoss::new()
            .smooth_nr(0.0)
            .smooth_dr(1e-6)
            .forward(&x, &g)
            .unwrap()),
        MONAI_DICE_SMOOTH[0],
        1e-13,
        "smooth",
    );
    same(
        v(DiceLoss::new()
            .weight(&[0.2, 0.5, 1.0])
            .forward(&x, &g)
            .unwrap()),
        MONAI_DICE_WEIGHT[0],
        1e-13,
        "weight",
    );
    same(
        v(DiceLoss::new()
            .reduction(Reduction::Sum)
            .forward(&x, &g)
            .unwrap()),
        MONAI_DICE_SUM[0],
        1e-13,
        "sum",
    );
    let none = DiceLoss::new()
        .reduction(Reduction::None)
        .forward(&x, &g)
        .unwrap();
    assert_eq!(none.size(), [2, 3]);
    for (i, want) in MONAI_DICE_NONE.iter().enumerate() {
        same(
            none.view([-1]).double_value(&[i as i64]),
            *want,
            1e-13,
            "none",
        );
    }
}

#[test]
fn dice_loss_gradient_equals_monai_autograd() {
    let x = p().set_requires_grad(true);
    DiceLoss::new().forward(&x, &onehot()).unwrap().backward();
    let g = x.grad().view([-1]);
    for (i, want) in MONAI_DICE_GRAD.iter().enumerate() {
        assert!((g.double_value(&[i as i64]) - want).abs() < 1e-14, "{i}");
    }
}

#[test]
fn generalized_and_tversky() {
    let (x, g) = (p(), onehot());
    let v = |t: Tensor| t.double_value(&[]);
    // MONAI computes the weights in float32: 1e-7.
    same(
        v(GeneralizedDiceLoss::new().forward(&x, &g).unwrap()),
        MONAI_GDL_SQUARE[0],
        1e-7,
        "GDL square",
    );
    same(
        v(GeneralizedDiceLoss::new()
            .w_type(Weighting::Simple)
            .forward(&x, &g)
            .unwrap()),
        MONAI_GDL_SIMPLE[0],
        1e-7,
        "GDL simple",
    );
    same(
        v(GeneralizedDiceLoss::new()
            .w_type(Weighting::Uniform)
            .forward(&x, &g)
            .unwrap()),
        MONAI_GDL_UNIFORM[0],
        1e-7,
        "GDL uniform",
    );
    same(
        v(GeneralizedDiceLoss::new()
            .batch(true)
            .forward(&x, &g)
            .unwrap()),
        MONAI_GDL_BATCH[0],
        1e-7,
        "GDL batch",
    );
    same(
        v(TverskyLoss::new(0.3, 0.7).forward(&x, &g).unwrap()),
        MONAI_TVERSKY[0],
        1e-13,
        "Tversky",
    );
    same(
        v(TverskyLoss::new(0.3, 0.7)
            .include_background(false)
            .forward(&x, &g)
            .unwrap()),
        MONAI_TVERSKY_NO_BG[0],
        1e-13,
        "Tversky no bg",
    );
}

#[test]
fn dice_metric() {
    let pred = Tensor::from_slice(&A_PRED_LABELS).view([2, 24]);
    let target = Tensor::from_slice(&A_LABELS).view([2, 24]);
    for (policy, want) in [
        (EmptyPolicy::monai(true), MONAI_METRIC_IGNORE_EMPTY),
        (EmptyPolicy::monai(false), MONAI_METRIC_KEEP_EMPTY),
    ] {
        let r = DiceMetric::new()
            .num_classes(3)
            .empty_policy(policy)
            .compute(&pred, &target)
            .unwrap();
        for n in 0..2 {
            for c in 0..3 {
                let (ours, theirs) = (r.per_sample[n][c].unwrap(), want[n * 3 + c]);
                assert!(
                    ours == theirs || (ours.is_nan() && theirs.is_nan()),
                    "{n},{c}: {ours} vs {theirs}"
                );
            }
        }
    }
    // The same from probabilities (argmax over channels) and from one-hot inputs.
    let r = DiceMetric::new()
        .empty_policy(EmptyPolicy::monai(false))
        .compute(&p(), &target)
        .unwrap();
    assert_eq!(r.per_sample[1][1], Some(MONAI_METRIC_KEEP_EMPTY[4]));
    let pred_onehot = pred
        .view([2, 1, 24])
        .eq_tensor(&Tensor::arange(3, (Kind::Int64, tch::Device::Cpu)).view([1, 3, 1]))
        .to_kind(Kind::Float);
    let r = DiceMetric::new()
        .empty_policy(EmptyPolicy::monai(false))
        .compute(&pred_onehot, &onehot().to_kind(Kind::Float))
        .unwrap();
    for (i, want) in MONAI_METRIC_KEEP_EMPTY.iter().enumerate() {
        assert_eq!(r.per_sample[i / 3][i % 3], Some(*want));
    }
    // The defined count: MONAI's NaN for the empty reference is left out of the mean.
    let r = DiceMetric::new()
        .num_classes(3)
        .empty_policy(EmptyPolicy::monai(true))
        .compute(&pred, &target)
        .unwrap();
    assert_eq!((r.mean.defined, r.mean.total), (5, 6));
}
