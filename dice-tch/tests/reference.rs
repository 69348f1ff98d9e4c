//! The autograd function against a pure-tch autograd reference of the same formulas, in f64:
//! value and gradient agree to 1e-10 over random shapes and every option, on the CPU kernels
//! and on the ATen (device) formulation run on CPU.

use dice_tch::{DiceLoss, GeneralizedDiceLoss, Reduction, TverskyLoss, Weighting};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

#[derive(Clone, Debug)]
struct Case {
    n: i64,
    c: i64,
    spatial: Vec<i64>,
    seed: i64,
    kind: u8, // 0 dice, 1 jaccard, 2 tversky, 3..=5 generalized square/simple/uniform
    squared: bool,
    smooth: (f64, f64),
    log: bool,
    gamma: f64,
    background: bool,
    batch: bool,
    reduction: u8,
    weighted: bool,
    labels: bool,
    ignore: bool,
    masked: bool,
    activation: u8, // 0 probabilities, 1 sigmoid, 2 softmax
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            1i64..3,
            1i64..5,
            proptest::collection::vec(1i64..6, 1..4),
            any::<i64>(),
        ),
        (
            0u8..6,
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
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0u8..3,
        ),
    )
        .prop_map(
            |(
                (n, c, spatial, seed),
                (kind, squared, smooth),
                (log, gamma, background, batch, reduction),
                (weighted, labels, ignore, masked, activation),
            )| Case {
                n,
                c,
                spatial,
                seed,
                kind,
                squared: squared && kind < 2,
                // −ln(score) needs s_nr > 0 (a class absent from the target scores 0 otherwise,
                // which dice reports as an error).
                smooth: if log && smooth.0 == 0.0 {
                    (1e-5, 1e-5)
                } else {
                    smooth
                },
                log,
                gamma,
                background: background || c < 2,
                batch,
                reduction,
                weighted: weighted && kind < 3,
                labels,
                ignore: ignore && labels,
                masked,
                activation: if activation == 2 && c < 2 {
                    1
                } else {
                    activation
                },
            },
        )
}

struct Data {
    input: Tensor,
    dense: Tensor,
    labels: Tensor,
    mask: Tensor,
    weights: Vec<f64>,
}

fn data(k: &Case) -> Data {
    tch::manual_seed(k.seed);
    let mut shape = vec![k.n, k.c];
    shape.extend(&k.spatial);
    let input = if k.activation == 0 {
        Tensor::rand(&shape[..], F64) * 0.9 + 0.05
    } else {
        Tensor::randn(&shape[..], F64) * 2.0
    };
    let mut lshape = vec![k.n];
    lshape.extend(&k.spatial);
    let mut labels = Tensor::randint(k.c, &lshape[..], (Kind::Int64, Device::Cpu));
    if k.ignore {
        let drop = Tensor::rand(&lshape[..], F64).lt(0.2);
        labels = labels.where_self(&drop.logical_not(), &Tensor::from(255i64));
    }
    let dense = Tensor::rand(&shape[..], F64).lt(0.4).to_kind(Kind::Double);
    let mask = Tensor::rand(&lshape[..], F64).gt(0.25).to_kind(Kind::Uint8);
    let weights = (0..k.c).map(|i| 0.5 + 0.25 * i as f64).collect();
    Data {
        input,
        dense,
        labels,
        mask,
        weights,
    }
}

/// The same loss, written with tch tensor ops and differentiated by autograd.
fn reference(k: &Case, d: &Data, x: &Tensor) -> Tensor {
    let (n, c) = (k.n, k.c);
    let p = match k.activation {
        1 => x.sigmoid(),
        2 => x.softmax(1, Kind::Double),
        _ => x.shallow_clone(),
    };
    let p = p.view([n, c, -1]);
    let mut valid = Tensor::ones([n, 1, p.size()[2]], F64);
    let g = if k.labels {
        let l = d.labels.view([n, 1, -1]);
        if k.ignore {
            valid *= l.ne(255).to_kind(Kind::Double);
        }
        l.eq_tensor(&Tensor::arange(c, (Kind::Int64, Device::Cpu)).view([1, c, 1]))
            .to_kind(Kind::Double)
    } else {
        d.dense.view([n, c, -1])
    };
    if k.masked {
        valid *= d.mask.view([n, 1, -1]).to_kind(Kind::Double);
    }
    let sum2 = |t: &Tensor| t.sum_dim_intlist([2i64].as_slice(), false, Kind::Double);
    let i = sum2(&(&p * &g * &valid));
    let (pp, gg) = if k.squared {
        (sum2(&(&p * &p * &valid)), sum2(&(&g * &g * &valid)))
    } else {
        (sum2(&(&p * &valid)), sum2(&(&g * &valid)))
    };
    let first = if k.background { 0 } else { 1 };
    let (mut i, mut pp, mut gg) = (
        i.narrow(1, first, c - first),
        pp.narrow(1, first, c - first),
        gg.narrow(1, first, c - first),
    );
    if k.batch {
        i = i.sum_dim_intlist([0i64].as_slice(), true, Kind::Double);
        pp = pp.sum_dim_intlist([0i64].as_slice(), true, Kind::Double);
        gg = gg.sum_dim_intlist([0i64].as_slice(), true, Kind::Double);
    }
    let (snr, sdr) = k.smooth;
    // A zero denominator (every voxel of the group masked out, no smoothing) scores 1, the
    // default zero-denominator policy, with no gradient.
    let ratio = |num: Tensor, den: Tensor| {
        let zero = den.eq(0.0);
        let safe = den.where_self(&zero.logical_not(), &Tensor::from(1.0f64));
        (num / safe).where_self(&zero.logical_not(), &Tensor::from(1.0f64))
    };
    let score = match k.kind {
        0 => ratio(&i * 2.0 + snr, &pp + &gg + sdr),
        1 => ratio(&i * 2.0 + snr, (&pp + &gg - &i) * 2.0 + sdr),
        2 => ratio(&i + snr, &i + (&pp - &i) * 0.3 + (&gg - &i) * 0.7 + sdr),
        _ => {
            // Weights: 1/G² (or 1/G, 1); absent classes get the largest present weight, or 1
            // when no class is present. Constants for the gradient.
            let gs = gg.detach();
            let present = gs.gt(0.0);
            let safe = gs.where_self(&present, &Tensor::from(1.0f64));
            let w = match k.kind {
                3 => (&safe * &safe).reciprocal(),
                4 => safe.reciprocal(),
                _ => gs.ones_like(),
            };
            let w = if k.kind == 5 {
                w
            } else {
                let raw = w.where_self(&present, &Tensor::from(0.0f64));
                let any = present.any_dim(1, true);
                let fill = raw
                    .amax([1i64].as_slice(), true)
                    .where_self(&any, &Tensor::from(1.0f64));
                w.where_self(&present, &fill.expand_as(&w))
            };
            let num = (&w * &i * 2.0).sum_dim_intlist([1i64].as_slice(), true, Kind::Double) + snr;
            let den =
                (&w * (&pp + &gg)).sum_dim_intlist([1i64].as_slice(), true, Kind::Double) + sdr;
            ratio(num, den)
        }
    };
    let mut loss = if k.log { -score.log() } else { 1.0 - score };
    if k.gamma != 1.0 {
        // max(ℓ, 0)^γ with the subgradient 0 at ℓ ≤ 0 (where γ < 1 has no derivative).
        let pos = loss.gt(0.0);
        let base = loss.where_self(&pos, &Tensor::from(1.0f64));
        loss = base
            .pow_tensor_scalar(k.gamma)
            .where_self(&pos, &Tensor::from(0.0f64));
    }
    if k.weighted {
        let w = Tensor::from_slice(&d.weights)
            .narrow(0, first, c - first)
            .view([1, c - first]);
        loss *= w;
    }
    match k.reduction {
        0 => loss.mean(Kind::Double),
        1 => loss.sum(Kind::Double),
        // [N, C'] per class; [C'] with batch; [N] (or [1]) for generalized Dice.
        _ if k.kind >= 3 || k.batch => loss.reshape([-1]),
        _ => loss,
    }
}

macro_rules! configure {
    ($l:expr, $k:expr, $d:expr) => {{
        let mut l = $l
            .smooth_nr($k.smooth.0)
            .smooth_dr($k.smooth.1)
            .log_loss($k.log)
            .gamma($k.gamma)
            .include_background($k.background)
            .batch($k.batch)
            .reduction(match $k.reduction {
                0 => Reduction::Mean,
                1 => Reduction::Sum,
                _ => Reduction::None,
            })
            .sigmoid($k.activation == 1);
        if $k.activation == 2 {
            l = l.softmax(true);
        }
        if $k.ignore {
            l = l.ignore_index(255);
        }
        l
    }};
}

fn ours(k: &Case, d: &Data, x: &Tensor, aten: bool) -> Result<Tensor, tch::TchError> {
    let target = if k.labels {
        d.labels.shallow_clone()
    } else {
        d.dense.shallow_clone()
    };
    let run = |r: Result<Tensor, tch::TchError>| r;
    macro_rules! go {
        ($l:expr) => {{
            let l = $l.force_aten(aten);
            if k.masked {
                run(l.forward_masked(x, &target, &d.mask))
            } else {
                run(l.forward(x, &target))
            }
        }};
    }
    match k.kind {
        0 | 1 => {
            let mut l = configure!(
                DiceLoss::new().squared_pred(k.squared).jaccard(k.kind == 1),
                k,
                d
            );
            if k.weighted {
                l = l.weight(&d.weights);
            }
            go!(l)
        }
        2 => {
            let mut l = configure!(TverskyLoss::new(0.3, 0.7), k, d);
            if k.weighted {
                l = l.weight(&d.weights);
            }
            go!(l)
        }
        kind => {
            let w = [Weighting::Square, Weighting::Simple, Weighting::Uniform][(kind - 3) as usize];
            go!(configure!(GeneralizedDiceLoss::new().w_type(w), k, d))
        }
    }
}

fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
    let diff = (a - b).abs().max().double_value(&[]);
    let scale = b.abs().max().double_value(&[]).max(1.0);
    diff <= tol * scale
}

fn check(k: &Case, aten: bool) -> Result<(), TestCaseError> {
    let d = data(k);
    let x = d.input.detach().set_requires_grad(true);
    let want = reference(k, &d, &x);
    let upstream = Tensor::rand(want.size(), F64) + 0.5;
    let objective = if want.dim() == 0 {
        &want * &upstream
    } else {
        (&want * &upstream).sum(Kind::Double)
    };
    objective.backward();
    let want_grad = x.grad().copy();
    let xx = d.input.detach().set_requires_grad(true);
    let got = ours(k, &d, &xx, aten).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(got.size(), want.size());
    let got_objective = if got.dim() == 0 {
        &got * &upstream
    } else {
        (&got * &upstream).sum(Kind::Double)
    };
    got_objective.backward();
    prop_assert!(
        close(&got.detach(), &want.detach(), 1e-10),
        "value {:?} vs {:?}",
        got,
        want
    );
    prop_assert!(
        close(&xx.grad(), &want_grad, 1e-10),
        "gradient differs ({:?})",
        k
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(250))]

    #[test]
    fn cpu_kernels_match_autograd_reference(k in case()) {
        check(&k, false)?;
    }

    #[test]
    fn aten_formulation_matches_autograd_reference(k in case()) {
        check(&k, true)?;
    }
}

/// f32, f16 and bf16 inputs: the loss in the input's dtype, the gradient too, matching f64.
#[test]
fn lower_precision_inputs() {
    tch::manual_seed(3);
    let x64 = Tensor::rand([2, 3, 8, 8], F64) * 0.9 + 0.05;
    let labels = Tensor::randint(3, [2, 8, 8], (Kind::Int64, Device::Cpu));
    let loss = DiceLoss::new().include_background(false);
    let a = x64.detach().set_requires_grad(true);
    let la = loss.forward(&a, &labels).unwrap();
    la.backward();
    for (kind, tol) in [
        (Kind::Float, 1e-6),
        (Kind::Half, 2e-3),
        (Kind::BFloat16, 1e-2),
    ] {
        let b = x64.to_kind(kind).detach().set_requires_grad(true);
        let lb = loss.forward(&b, &labels).unwrap();
        assert_eq!(lb.kind(), kind);
        lb.backward();
        assert_eq!(b.grad().kind(), kind);
        assert!(
            (lb.double_value(&[]) - la.double_value(&[])).abs() < tol * 10.0,
            "{kind:?}"
        );
        assert!(
            close(&b.grad().to_kind(Kind::Double), &a.grad(), tol * 10.0),
            "{kind:?}"
        );
    }
}

/// A [N, 1, ...] label map (MONAI's layout) equals a [N, ...] one; int32/uint8/int16 labels too.
#[test]
fn label_layouts_and_dtypes() {
    tch::manual_seed(5);
    let x = Tensor::rand([2, 4, 5, 6], F64);
    let labels = Tensor::randint(4, [2, 5, 6], (Kind::Int64, Device::Cpu));
    let loss = DiceLoss::new();
    let want = loss.forward(&x, &labels).unwrap().double_value(&[]);
    for l in [
        labels.unsqueeze(1),
        labels.to_kind(Kind::Int),
        labels.to_kind(Kind::Uint8),
        labels.to_kind(Kind::Int16),
    ] {
        assert_eq!(loss.forward(&x, &l).unwrap().double_value(&[]), want);
    }
    // A non-contiguous input gives the same result.
    let xt = x.transpose(2, 3).contiguous().transpose(2, 3);
    assert!(!xt.is_contiguous());
    assert!((loss.forward(&xt, &labels).unwrap().double_value(&[]) - want).abs() < 1e-12);
}
