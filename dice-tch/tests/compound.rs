//! `DiceCELoss`, `DiceFocalLoss` and `soft_label` against a pure-tch autograd reference of the
//! same formulas, in f64, on the CPU kernels and on the ATen (device) formulation run on CPU.

use dice_tch::{DiceCELoss, DiceFocalLoss, DiceLoss, Reduction};
use proptest::prelude::*;
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

#[derive(Clone, Debug)]
struct Case {
    n: i64,
    c: i64,
    s: i64,
    seed: i64,
    softmax: bool,
    labels: bool,
    ignore: bool,
    masked: bool,
    term: u8, // 0 cross-entropy, 1 binary cross-entropy, 2 focal
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

fn case() -> impl Strategy<Value = Case> {
    (
        (1i64..3, 1i64..5, 1i64..30, any::<i64>()),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        (
            0u8..3,
            any::<bool>(),
            prop_oneof![Just(0.0), Just(0.1)],
            prop_oneof![Just(0.0), Just(2.0), Just(1.5)],
        ),
        (
            proptest::option::of(0.0f64..=1.0),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        prop_oneof![Just((1.0, 1.0)), Just((0.5, 1.5)), Just((0.0, 1.0))],
    )
        .prop_map(
            |(
                (n, c, s, seed),
                (softmax, labels, ignore, masked),
                (term, weighted, smoothing, gamma),
                (alpha, background, batch, sum, soft_label),
                lambdas,
            )| Case {
                n,
                c,
                s,
                seed,
                softmax: softmax && c >= 2,
                labels,
                ignore: ignore && labels,
                masked,
                term,
                weighted,
                smoothing,
                gamma,
                alpha,
                background: background || c < 2,
                batch,
                sum,
                soft_label,
                lambdas,
            },
        )
}

struct Data {
    logits: Tensor,
    dense: Tensor,
    labels: Tensor,
    mask: Tensor,
    weights: Vec<f64>,
}

fn data(k: &Case) -> Data {
    tch::manual_seed(k.seed);
    let logits = Tensor::randn([k.n, k.c, k.s], F64) * 2.0;
    let mut labels = Tensor::randint(k.c, [k.n, k.s], (Kind::Int64, Device::Cpu));
    if k.ignore {
        let drop = Tensor::rand([k.n, k.s], F64).lt(0.2);
        labels = labels.where_self(&drop.logical_not(), &Tensor::from(255i64));
    }
    // Soft targets: what soft_label is for.
    let dense = Tensor::rand([k.n, k.c, k.s], F64);
    let mask = Tensor::rand([k.n, k.s], F64).gt(0.25).to_kind(Kind::Uint8);
    let weights = (0..k.c).map(|i| 0.5 + 0.25 * i as f64).collect();
    Data {
        logits,
        dense,
        labels,
        mask,
        weights,
    }
}

fn sum_all(t: &Tensor) -> Tensor {
    t.sum(Kind::Double)
}

/// The same loss in tch operations, differentiated by autograd.
fn reference(k: &Case, d: &Data, x: &Tensor) -> Tensor {
    let (n, c) = (k.n, k.c);
    let p = if k.softmax {
        x.softmax(1, Kind::Double)
    } else {
        x.sigmoid()
    };
    let mut valid = Tensor::ones([n, 1, k.s], F64);
    let g = if k.labels {
        let l = d.labels.view([n, 1, -1]);
        if k.ignore {
            valid *= l.ne(255).to_kind(Kind::Double);
        }
        l.eq_tensor(&Tensor::arange(c, (Kind::Int64, Device::Cpu)).view([1, c, 1]))
            .to_kind(Kind::Double)
    } else {
        d.dense.shallow_clone()
    };
    if k.masked {
        valid *= d.mask.view([n, 1, -1]).to_kind(Kind::Double);
    }
    let w = Tensor::from_slice(&d.weights).view([1, c, 1]);
    let ones = Tensor::ones([1, c, 1], F64);
    let tw = if k.weighted {
        w.shallow_clone()
    } else {
        ones.shallow_clone()
    };
    // Dice.
    let sum2 = |t: &Tensor| t.sum_dim_intlist([2i64].as_slice(), false, Kind::Double);
    let pp = sum2(&(&p * &valid));
    let gg = sum2(&(&g * &valid));
    let i = if k.soft_label {
        (&pp + &gg - sum2(&((&p - &g).abs() * &valid))) * 0.5
    } else {
        sum2(&(&p * &g * &valid))
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
    let mut dl = 1.0 - (&i * 2.0 + 1e-5) / (&pp + &gg + 1e-5);
    // Dice weights: DiceCELoss drops them for one channel (as MONAI).
    let dice_weighted = k.weighted && !(k.term != 2 && c == 1);
    if dice_weighted {
        dl *= Tensor::from_slice(&d.weights)
            .narrow(0, first, c - first)
            .view([1, c - first]);
    }
    let dice = if k.sum {
        sum_all(&dl)
    } else {
        dl.mean(Kind::Double)
    };
    // The voxel term.
    let term = match k.term {
        0 if c >= 2 => {
            let eps = k.smoothing;
            let q = &tw * (&g * (1.0 - eps) + eps / c as f64) * &valid;
            let s = -sum_all(&(&q * x.log_softmax(1, Kind::Double)));
            if k.sum {
                s
            } else {
                let div = if k.labels {
                    sum_all(&(&tw * &g * &valid))
                } else {
                    sum_all(&valid)
                };
                if div.double_value(&[]) > 0.0 {
                    s / div
                } else {
                    Tensor::from(0.0f64)
                }
            }
        }
        0 | 1 => {
            let e = (&tw * &g * x.neg().softplus() + (1.0 - &g) * x.softplus()) * &valid;
            if k.sum {
                sum_all(&e)
            } else {
                let div = sum_all(&valid).double_value(&[]) * c as f64;
                if div > 0.0 {
                    sum_all(&e) / div
                } else {
                    Tensor::from(0.0f64)
                }
            }
        }
        _ => {
            let mut a = &tw * &valid;
            if let Some(al) = k.alpha {
                a *= &g * al + (1.0 - &g) * (1.0 - al);
            }
            let bce = x.softplus() - x * &g;
            let u: Tensor = x * (1.0 - &g * 2.0);
            let m = (u.neg().softplus() * (-k.gamma)).exp();
            let e = (a * m * bce).narrow(1, first, c - first);
            let kept = valid.sum_dim_intlist([1i64, 2].as_slice(), true, Kind::Double);
            if k.sum {
                let safe = kept.where_self(&kept.gt(0.0), &Tensor::from(1.0f64));
                sum_all(&(e / safe))
            } else {
                let div = sum_all(&kept).double_value(&[]) * (c - first) as f64;
                if div > 0.0 {
                    sum_all(&e) / div
                } else {
                    Tensor::from(0.0f64)
                }
            }
        }
    };
    dice * k.lambdas.0 + term * k.lambdas.1
}

fn ours(k: &Case, d: &Data, x: &Tensor, aten: bool) -> Result<Tensor, tch::TchError> {
    let target = if k.labels {
        d.labels.shallow_clone()
    } else {
        d.dense.shallow_clone()
    };
    let red = if k.sum {
        Reduction::Sum
    } else {
        Reduction::Mean
    };
    macro_rules! common {
        ($l:expr) => {{
            let mut l = $l
                .include_background(k.background)
                .batch(k.batch)
                .reduction(red)
                .soft_label(k.soft_label)
                .lambda_dice(k.lambdas.0)
                .force_aten(aten);
            l = if k.softmax {
                l.softmax(true)
            } else {
                l.sigmoid(true)
            };
            if k.ignore {
                l = l.ignore_index(255);
            }
            if k.weighted {
                l = l.weight(&d.weights);
            }
            if k.masked {
                l.forward_masked(x, &target, &d.mask)
            } else {
                l.forward(x, &target)
            }
        }};
    }
    match k.term {
        0 | 1 => common!(DiceCELoss::new()
            .binary(k.term == 1)
            .label_smoothing(k.smoothing)
            .lambda_ce(k.lambdas.1)),
        _ => {
            let mut l = DiceFocalLoss::new()
                .gamma(k.gamma)
                .lambda_focal(k.lambdas.1);
            if let Some(a) = k.alpha {
                l = l.alpha(a);
            }
            common!(l)
        }
    }
}

fn check(k: &Case, aten: bool) -> Result<(), TestCaseError> {
    let d = data(k);
    let x = d.logits.detach().set_requires_grad(true);
    let want = reference(k, &d, &x);
    (&want * 1.7).backward();
    let want_grad = x.grad().copy();
    let xx = d.logits.detach().set_requires_grad(true);
    let got = ours(k, &d, &xx, aten).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    (&got * 1.7).backward();
    let (a, b) = (got.double_value(&[]), want.double_value(&[]));
    prop_assert!(
        (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
        "value {a} vs reference {b} (aten {aten})"
    );
    let diff = (xx.grad() - &want_grad).abs().max().double_value(&[]);
    let scale = want_grad.abs().max().double_value(&[]).max(1.0);
    prop_assert!(
        diff <= 1e-10 * scale,
        "gradient off by {diff} (aten {aten})"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn cpu_kernels_match_the_reference(k in case()) {
        check(&k, false)?;
    }

    #[test]
    fn aten_formulation_matches_the_reference(k in case()) {
        check(&k, true)?;
    }
}

/// f32 logits: the CPU kernels and the ATen path agree; reduction None, a missing activation
/// and a bad smoothing are refused with a message.
#[test]
fn f32_and_refusals() {
    tch::manual_seed(3);
    let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [2, 8, 8], (Kind::Int64, Device::Cpu));
    let cpu = DiceCELoss::new()
        .softmax(true)
        .forward(&x, &y)
        .unwrap()
        .double_value(&[]);
    let aten = DiceCELoss::new()
        .softmax(true)
        .force_aten(true)
        .forward(&x, &y)
        .unwrap()
        .double_value(&[]);
    assert!(
        (cpu - aten).abs() < 1e-5 * (1.0 + aten.abs()),
        "{cpu} vs {aten}"
    );
    let nn = DiceCELoss::nnunet(false)
        .forward(&x, &y)
        .unwrap()
        .double_value(&[]);
    assert!(nn < cpu, "nnU-Net's form is CE − Dice: {nn} vs {cpu}");
    let e = DiceCELoss::new()
        .softmax(true)
        .reduction(Reduction::None)
        .forward(&x, &y)
        .unwrap_err();
    assert!(e.to_string().contains("reduction"), "{e}");
    let e = DiceFocalLoss::new().forward(&x, &y).unwrap_err();
    assert!(e.to_string().contains("logits"), "{e}");
    let e = DiceCELoss::new()
        .softmax(true)
        .label_smoothing(2.0)
        .forward(&x, &y)
        .unwrap_err();
    assert!(e.to_string().contains("label_smoothing"), "{e}");
}

/// `soft_label` on DiceLoss: with soft targets the loss of `p = g` is 0 (the minimum); with
/// `Σp·g` it is not. CPU and ATen agree.
#[test]
fn soft_label_dice_loss() {
    tch::manual_seed(5);
    let g = Tensor::rand([2, 3, 50], F64);
    let p = g.shallow_clone();
    for aten in [false, true] {
        let soft = DiceLoss::new()
            .soft_label(true)
            .force_aten(aten)
            .forward(&p, &g)
            .unwrap()
            .double_value(&[]);
        let classic = DiceLoss::new()
            .force_aten(aten)
            .forward(&p, &g)
            .unwrap()
            .double_value(&[]);
        assert!(soft.abs() < 1e-9, "{soft}");
        assert!(classic > 0.1, "{classic}");
    }
}
