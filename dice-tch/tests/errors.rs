//! Wrong shapes, dtypes, values and parameters give errors, never panics or crashes; double
//! backward raises a clear error.

use dice_tch::{DiceLoss, DiceMetric, TverskyLoss};
use tch::{Device, Kind, Tensor};

fn err(r: Result<Tensor, tch::TchError>) -> String {
    match r {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_inputs_are_errors() {
    let x = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
    let labels = Tensor::randint(3, [2, 4, 4], (Kind::Int64, Device::Cpu));
    let l = DiceLoss::new();
    assert!(
        err(l.forward(&Tensor::rand([5], (Kind::Float, Device::Cpu)), &labels))
            .contains("[N, C, ...]")
    );
    assert!(err(l.forward(
        &Tensor::zeros([0, 3, 4], (Kind::Float, Device::Cpu)),
        &labels
    ))
    .contains("empty"));
    assert!(err(l.forward(&x.to_kind(Kind::Int64), &labels)).contains("floating point"));
    assert!(
        err(l.forward(&x, &Tensor::rand([2, 3, 4, 5], (Kind::Float, Device::Cpu))))
            .contains("dense target")
    );
    assert!(err(l.forward(&x, &labels.narrow(2, 0, 3))).contains("label map"));
    let bad_labels = labels.copy();
    let _ = bad_labels.get(0).get(0).get(0).fill_(7);
    assert!(err(l.forward(&x, &bad_labels)).contains("label 7"));
    let nan = x.copy();
    let _ = nan.get(1).get(2).get(3).get(3).fill_(f64::NAN);
    assert!(err(l.forward(&nan, &labels)).contains("NaN"));
    assert!(err(l.forward(&(&x * 3.0), &labels)).contains("outside [0, 1]"));
    assert!(err(l.forward_masked(
        &x,
        &labels,
        &Tensor::ones([2, 3], (Kind::Uint8, Device::Cpu))
    ))
    .contains("mask"));
    assert!(err(DiceLoss::new().smooth_nr(-1.0).forward(&x, &labels)).contains("smooth_nr"));
    assert!(err(TverskyLoss::new(0.0, 0.0).forward(&x, &labels)).contains("alpha + beta"));
    assert!(
        err(DiceLoss::new().weight(&[1.0, 2.0]).forward(&x, &labels)).contains("class weights")
    );
    assert!(err(DiceLoss::new()
        .include_background(false)
        .forward(&x.narrow(1, 0, 1), &labels.clamp_max(0)))
    .contains("include_background"));
    // The ATen formulation checks the same things.
    assert!(err(DiceLoss::new().force_aten(true).forward(&x, &bad_labels)).contains("label"));
    // Metrics.
    assert!(
        DiceMetric::new().compute(&labels, &labels).is_err(),
        "label maps need num_classes"
    );
    assert!(DiceMetric::new()
        .num_classes(3)
        .compute(&labels, &labels.narrow(1, 0, 2))
        .is_err());
}

#[test]
fn double_backward_is_an_error() {
    let x = Tensor::rand([1, 2, 8], (Kind::Double, Device::Cpu)).set_requires_grad(true);
    let g = Tensor::rand([1, 2, 8], (Kind::Double, Device::Cpu))
        .lt(0.5)
        .to_kind(Kind::Double);
    for aten in [false, true] {
        let loss = DiceLoss::new().force_aten(aten).forward(&x, &g).unwrap();
        let grads = Tensor::run_backward(&[&loss], &[&x], true, true);
        let second = grads[0].sum(Kind::Double);
        let msg = match second.f_backward() {
            Ok(()) => panic!("double backward must fail (aten={aten})"),
            Err(e) => e.to_string(),
        };
        assert!(msg.contains("double backward is not supported"), "{msg}");
        // A single backward with create_graph does not fail by itself.
        let _ = Tensor::run_backward(
            &[&DiceLoss::new().forward(&x, &g).unwrap()],
            &[&x],
            false,
            true,
        );
    }
}

#[test]
fn backward_twice_with_retained_graph_gives_the_same_gradient() {
    let x = Tensor::rand([2, 3, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let labels = Tensor::randint(3, [2, 16], (Kind::Int64, Device::Cpu));
    let loss = DiceLoss::new().forward(&x, &labels).unwrap();
    let first = Tensor::run_backward(&[&loss], &[&x], true, false);
    let second = Tensor::run_backward(&[&(&loss * 2.0)], &[&x], true, false);
    assert!((&second[0] - &first[0] * 2.0).abs().max().double_value(&[]) < 1e-7);
    let third = Tensor::run_backward(&[&loss], &[&x], false, false);
    assert!((&third[0] - &first[0]).abs().max().double_value(&[]) == 0.0);
}
