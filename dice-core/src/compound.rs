//! Dice plus a voxel-wise term over logits, fused: MONAI's `DiceCELoss` and `DiceFocalLoss`,
//! nnU-Net's `DC_and_CE_loss` and `DC_and_BCE_loss`.
//!
//! `loss = λ_dice·L_dice + λ_term·L_term`, where `L_dice` is any [`SoftLoss`] over
//! `p = activation(z)` and `L_term` one of [`Term`] over the same logits `z` (`[N, C, S]`, dense or
//! label-map target, optional voxel mask and ignore label). The peers compute the activation
//! twice, once per term, and keep both autograd graphs; here two passes do everything:
//!
//! 1. one read of the logits: the activation (written into the caller's gradient buffer, which
//!    is the only buffer), the Dice statistics and the voxel term's sum (in `f64`, from a
//!    max-subtracted log-softmax or `softplus`, so no `log(0)` and no overflow);
//! 2. one read of that buffer (and of the logits only where the term needs `z` itself: binary
//!    terms, or categorical cross-entropy beside a sigmoid Dice): `∂loss/∂z` written in place.
//!
//! No probability tensor is kept and no graph is built.
//!
//! ## The voxel terms
//! With `q` the (weighted, smoothed) target, `p` the softmax and `σ` the sigmoid:
//!
//! | term | per voxel or element | `∂/∂z` | mean divides by |
//! | --- | --- | --- | --- |
//! | categorical CE (`C ≥ 2`) | `−Σ_c q_c·ln p_c` | `p_c·Σ_k q_k − q_c` | label map: `Σ w_y`; dense: voxels |
//! | binary CE (`C = 1`, or [`Term::BinaryCrossEntropy`]) | `w·t·softplus(−z) + (1 − t)·softplus(z)` | `(1 − t)·σ(z) − w·t·σ(−z)` | elements |
//! | sigmoid focal | `a·σ(u)^γ·(softplus(z) − z·t)`, `u = z·(1 − 2t)` | product rule, below | elements |
//!
//! Categorical `q_c = w_c·((1 − ε)·t_c + ε/C)` for a dense target and
//! `q_c = (1 − ε)·w_y·[c = y] + ε·w_c/C` for label `y` (ε = `label_smoothing`, `w` the class
//! weights, 1 without): exactly `torch.nn.CrossEntropyLoss(weight, label_smoothing)`, whose mean
//! divides by `Σ w_y` for class-index targets and by the voxel count for probability targets.
//! The focal term is MONAI's `sigmoid_focal_loss`: `a = w_c·(α·t + (1 − α)·(1 − t))`, and
//! `∂/∂z = a·σ(u)^γ·((σ(z) − t) + γ·(softplus(z) − z·t)·σ(−u)·(1 − 2t))`.
//!
//! Reductions follow the Dice term's: `Mean` as in the table; `Sum` sums (the focal term, as
//! MONAI's `FocalLoss(reduction="sum")`, sums per-(sample, class) means over the voxels);
//! `None` is refused (MONAI refuses it for `DiceCELoss` too). Masked or ignored voxels leave
//! both the sums and the divisors; when nothing is left to divide by, the term is 0 with zero
//! gradient (as nnU-Net does when every voxel is ignored; PyTorch would return NaN).
//!
//! ## The peers' parameters in these terms
//! | peer | their call | here |
//! | --- | --- | --- |
//! | MONAI `DiceCELoss` | `lambda_dice`, `lambda_ce`, `weight` (CE and Dice), `label_smoothing`; CE over softmax for `C ≥ 2` even with `sigmoid=True`, `BCEWithLogitsLoss(pos_weight=weight)` for `C = 1` | [`CompoundLoss::dice_ce`] with [`Term::CrossEntropy`]; the same `weight` goes to [`SoftLoss::class_weights`] |
//! | MONAI `DiceFocalLoss` | `gamma` (2), `alpha` (None), `weight`, `lambda_focal`; always the sigmoid focal loss; `include_background` for both terms | [`CompoundLoss::dice_focal`] with [`Term::Focal`]; MONAI's `weight` lists the classes left after `include_background=False`, ours has one entry per channel (the background's unused) |
//! | nnU-Net `DC_and_CE_loss` | softmax Dice with `do_bg=False`, `smooth=1e-5`, `batch_dice`; loss `CE − mean Dice`; `ignore_label` for both; CE 0 when all is ignored | [`CompoundLoss::nnunet_dc_and_ce`]: [`crate::LossForm::Negative`] gives `−Dice` exactly |
//! | nnU-Net `DC_and_BCE_loss` | sigmoid Dice (`do_bg=True`) and `BCEWithLogitsLoss` per region | [`Term::BinaryCrossEntropy`] with a sigmoid Dice |

// The tile loops walk several parallel arrays (logits, probabilities, target row, weights) by
// one index: iterator chains of five zips read worse and compile to the same code.
#![allow(clippy::needless_range_loop)]

use crate::error::{invalid, Operand, Result};
use crate::kernels::portable;
use crate::layout::{check_labels, check_len, with_labels, Shape, SoftInput, Target};
use crate::loss::{Activation, LossValue, Reduction, SoftLoss, Upstream};
use crate::stats::{value_error, Moment, SoftStats};
use crate::{Float, Label as _};

/// The voxel-wise term added to the Dice loss.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Term<'w> {
    /// `torch.nn.CrossEntropyLoss` over the channel softmax when `C ≥ 2`; with one channel,
    /// `BCEWithLogitsLoss` with `pos_weight = weight[0]` (MONAI's `DiceCELoss` rule). It always
    /// covers every channel, whatever `include_background`.
    CrossEntropy {
        /// One non-negative weight per channel (`None`: all 1).
        weight: Option<&'w [f64]>,
        /// `ε ∈ [0, 1]`: the target becomes `(1 − ε)·t + ε/C` (categorical only).
        label_smoothing: f64,
    },
    /// `BCEWithLogitsLoss` on every element (multi-label and region-based training).
    BinaryCrossEntropy {
        /// One non-negative weight of the positive term per channel (`None`: all 1).
        pos_weight: Option<&'w [f64]>,
    },
    /// MONAI's sigmoid focal loss on every element of the channels the Dice loss counts.
    Focal {
        /// The focusing exponent `γ ≥ 0` (MONAI's default 2; 0 is binary cross-entropy).
        gamma: f64,
        /// `α ∈ [0, 1]` of the α-balanced form, weighing positives by `α` and negatives by
        /// `1 − α` (`None`: no balancing).
        alpha: Option<f64>,
        /// One non-negative weight per channel (`None`: all 1).
        weight: Option<&'w [f64]>,
    },
}

/// `λ_dice·L_dice + λ_term·L_term` over logits; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompoundLoss<'w> {
    /// The Dice-family term (its reduction also reduces the voxel term).
    pub dice: SoftLoss<'w>,
    /// The activation the Dice term applies to the logits.
    pub activation: Activation,
    /// `λ_dice ≥ 0`.
    pub lambda_dice: f64,
    /// The voxel-wise term.
    pub term: Term<'w>,
    /// `λ_term ≥ 0` (MONAI's `lambda_ce` or `lambda_focal`).
    pub lambda_term: f64,
}

/// The value of a compound loss and of its two terms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompoundValue {
    /// `λ_dice·dice.value + λ_term·term`.
    pub value: f64,
    /// The Dice term, reduced, with its group counts.
    pub dice: LossValue,
    /// The voxel term, reduced.
    pub term: f64,
}

/// The voxel term as it applies to a shape.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Resolved<'w> {
    Categorical {
        weight: Option<&'w [f64]>,
        smoothing: f64,
    },
    Binary {
        pos_weight: Option<&'w [f64]>,
    },
    Focal {
        gamma: f64,
        alpha: Option<f64>,
        weight: Option<&'w [f64]>,
        first: usize,
    },
}

/// Voxels per tile.
const TILE: usize = 256;
/// Channels whose Dice coefficients are kept on the stack (more are recomputed per tile).
const COEF_CACHE: usize = 64;

impl<'w> CompoundLoss<'w> {
    /// MONAI's `DiceCELoss`: `dice` over `activation`, plus cross-entropy, `λ = 1` each, no
    /// weights, no label smoothing.
    pub const fn dice_ce(dice: SoftLoss<'w>, activation: Activation) -> Self {
        CompoundLoss {
            dice,
            activation,
            lambda_dice: 1.0,
            term: Term::CrossEntropy {
                weight: None,
                label_smoothing: 0.0,
            },
            lambda_term: 1.0,
        }
    }

    /// MONAI's `DiceFocalLoss`: `dice` over `activation`, plus the sigmoid focal loss with
    /// `γ = 2`, no `α`, no weights, `λ = 1` each.
    pub const fn dice_focal(dice: SoftLoss<'w>, activation: Activation) -> Self {
        CompoundLoss {
            dice,
            activation,
            lambda_dice: 1.0,
            term: Term::Focal {
                gamma: 2.0,
                alpha: None,
                weight: None,
            },
            lambda_term: 1.0,
        }
    }

    /// nnU-Net v2's `DC_and_CE_loss` as its trainer builds it: softmax Dice without the
    /// background, smoothing `1e-5`, `batch_dice` as given, loss `−Dice` (so the value equals
    /// nnU-Net's, not only its gradient), plus cross-entropy, both weighted 1. Give the ignore
    /// label with [`Target::labels_ignoring`].
    pub const fn nnunet_dc_and_ce(batch_dice: bool) -> Self {
        CompoundLoss::dice_ce(
            SoftLoss::dice()
                .smooth(1e-5, 1e-5)
                .include_background(false)
                .batch(batch_dice)
                .form(crate::loss::LossForm::Negative),
            Activation::Softmax,
        )
    }

    /// Sets `λ_dice` and `λ_term`.
    pub const fn lambdas(mut self, lambda_dice: f64, lambda_term: f64) -> Self {
        self.lambda_dice = lambda_dice;
        self.lambda_term = lambda_term;
        self
    }

    /// Sets the voxel term.
    pub const fn term(mut self, term: Term<'w>) -> Self {
        self.term = term;
        self
    }

    /// Checks every parameter against the shape: the Dice loss's ([`SoftLoss::validate`]),
    /// reduction not `None`, `λ`s finite and `≥ 0`, weights finite, `≥ 0` and one per channel,
    /// `ε ∈ [0, 1]`, `γ` finite and `≥ 0`, `α ∈ [0, 1]`.
    pub fn validate(&self, shape: Shape) -> Result<()> {
        self.dice.validate(shape)?;
        if self.dice.reduction == Reduction::None {
            return Err(invalid(
                "reduction",
                f64::NAN,
                "a compound loss needs reduction mean or sum: the voxel term has no groups",
            ));
        }
        if self.activation == Activation::Softmax && shape.channels < 2 {
            return Err(invalid(
                "softmax",
                1.0,
                "softmax over a single channel is constant 1: use sigmoid",
            ));
        }
        for (name, v) in [
            ("lambda_dice", self.lambda_dice),
            ("lambda_term", self.lambda_term),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(name, v, "must be finite and >= 0"));
            }
        }
        let weights = match self.term {
            Term::CrossEntropy {
                weight,
                label_smoothing,
            } => {
                if !(0.0..=1.0).contains(&label_smoothing) {
                    return Err(invalid(
                        "label_smoothing",
                        label_smoothing,
                        "must be in [0, 1]",
                    ));
                }
                weight
            }
            Term::BinaryCrossEntropy { pos_weight } => pos_weight,
            Term::Focal {
                gamma,
                alpha,
                weight,
            } => {
                if !(gamma.is_finite() && gamma >= 0.0) {
                    return Err(invalid("gamma", gamma, "must be finite and >= 0"));
                }
                if let Some(a) = alpha {
                    if !(0.0..=1.0).contains(&a) {
                        return Err(invalid("alpha", a, "must be in [0, 1]"));
                    }
                }
                weight
            }
        };
        if let Some(w) = weights {
            check_len(Operand::ClassWeights, shape.channels, w.len())?;
            if let Some(&v) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(invalid("weight", v, "weights must be finite and >= 0"));
            }
        }
        Ok(())
    }

    fn resolved(&self, shape: Shape) -> Resolved<'w> {
        match self.term {
            Term::CrossEntropy {
                weight,
                label_smoothing,
            } if shape.channels >= 2 => Resolved::Categorical {
                weight,
                smoothing: label_smoothing,
            },
            Term::CrossEntropy { weight, .. } => Resolved::Binary { pos_weight: weight },
            Term::BinaryCrossEntropy { pos_weight } => Resolved::Binary { pos_weight },
            Term::Focal {
                gamma,
                alpha,
                weight,
            } => Resolved::Focal {
                gamma,
                alpha,
                weight,
                first: usize::from(!self.dice.include_background),
            },
        }
    }

    /// The loss of `logits` (`N·C·S`, finite) against their target: `stats` (`N·C`) receives
    /// the Dice statistics of `p = activation(z)` and `scratch` (`N·C·S`) the probabilities.
    pub fn loss<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        stats: &mut [SoftStats],
        scratch: &mut [T],
    ) -> Result<CompoundValue> {
        Ok(self.forward(logits, stats, scratch)?.0)
    }

    /// The loss and `∂loss/∂z` in two passes: `grad` (`N·C·S`) receives the gradient, `stats`
    /// (`N·C`) the Dice statistics.
    pub fn loss_and_gradient<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        stats: &mut [SoftStats],
        grad: &mut [T],
    ) -> Result<CompoundValue> {
        let (value, divisors) = self.forward(logits, stats, grad)?;
        self.backward(logits, stats, &value, &divisors, grad)?;
        Ok(value)
    }

    /// Pass 1: activation into `out`, Dice statistics into `stats`, the term's sum.
    fn forward<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        stats: &mut [SoftStats],
        out: &mut [T],
    ) -> Result<(CompoundValue, Divisors)> {
        let shape = logits.shape();
        self.validate(shape)?;
        let len = shape.elements()?;
        check_len(Operand::Output, len, out.len())?;
        check_len(Operand::Statistics, shape.pairs()?, stats.len())?;
        let (c_n, s_n) = (shape.channels, shape.spatial);
        if let Target::Labels {
            labels,
            ignore_index,
        } = logits.target()
        {
            with_labels!(labels, l => check_labels(l, c_n, ignore_index))?;
        }
        let z = logits.pred();
        let moment = self.dice.moment();
        stats.fill(SoftStats::zero(moment));
        let resolved = self.resolved(shape);
        let dice_on = self.lambda_dice != 0.0;
        let term_on = self.lambda_term != 0.0;
        let softmax_dice = self.activation == Activation::Softmax;
        let categorical = term_on && matches!(resolved, Resolved::Categorical { .. });
        let (mut term_sum, mut term_div, mut focal_reduced) = (0.0f64, 0.0f64, 0.0f64);
        let mut divisors = Divisors::default();
        let mut t = Tile::new(logits);
        let mut mx = [T::ZERO; TILE];
        let mut se = [T::ZERO; TILE];
        for n in 0..shape.batch {
            let (mut kept_n, mut sum_n) = (0u64, 0.0f64);
            let mut start = 0;
            while start < s_n {
                let tl = TILE.min(s_n - start);
                let at = |c: usize| (n * c_n + c) * s_n + start;
                t.load(n, start, tl);
                let kept = t.kept_count(tl);
                kept_n += kept as u64;
                // Logits must be finite everywhere (a NaN in an ignored voxel is still a bug).
                for c in 0..c_n {
                    if let Some(j) = z[at(c)..at(c) + tl].iter().position(|v| !v.is_finite()) {
                        return Err(value_error(Operand::Logits, at(c) + j, z[at(c) + j]));
                    }
                }
                if softmax_dice || categorical {
                    log_sum_exp(z, c_n, s_n, n, start, tl, &mut mx, &mut se, out);
                }
                // The Dice term's probabilities, in `out`.
                for c in 0..c_n {
                    let (zr, o) = (&z[at(c)..at(c) + tl], &mut out[at(c)..at(c) + tl]);
                    if softmax_dice {
                        for (o, s) in o.iter_mut().zip(&se) {
                            *o = *o / *s;
                        }
                    } else {
                        for (o, &zv) in o.iter_mut().zip(zr) {
                            *o = zv.sigmoid();
                        }
                    }
                }
                if categorical {
                    t.clear_q(tl);
                }
                for c in 0..c_n {
                    t.fill_g(c, tl, at(c))?;
                    if dice_on {
                        t.add_stats(&out[at(c)..at(c) + tl], moment, &mut stats[n * c_n + c]);
                    }
                    if !term_on {
                        continue;
                    }
                    let zr = &z[at(c)..at(c) + tl];
                    match resolved {
                        Resolved::Categorical { weight, smoothing } => {
                            let w = weight.map_or(1.0, |w| w[c]);
                            t.add_q(zr, w, smoothing, c_n);
                        }
                        Resolved::Binary { pos_weight } => {
                            let w = pos_weight.map_or(1.0, |w| w[c]);
                            term_sum += t.element_sum(zr, |zv, g| binary_ce(zv, g, w).0);
                        }
                        Resolved::Focal {
                            gamma,
                            alpha,
                            weight,
                            first,
                        } if c >= first => {
                            let w = weight.map_or(1.0, |w| w[c]);
                            let s = t.element_sum(zr, |zv, g| focal(zv, g, gamma, alpha, w).0);
                            term_sum += s;
                            sum_n += s;
                        }
                        Resolved::Focal { .. } => {}
                    }
                }
                if term_on {
                    match resolved {
                        Resolved::Categorical { .. } => {
                            let (s, d) = t.categorical_tile(tl, &mx, &se);
                            term_sum += s;
                            term_div += d;
                        }
                        Resolved::Binary { .. } => term_div += (kept * c_n) as f64,
                        Resolved::Focal { first, .. } => term_div += (kept * (c_n - first)) as f64,
                    }
                }
                start += tl;
            }
            if kept_n > 0 {
                focal_reduced += sum_n / kept_n as f64;
            }
            divisors.push(kept_n);
        }
        let dice = if dice_on {
            self.dice.loss(shape, stats)?
        } else {
            LossValue {
                value: 0.0,
                groups: self.dice.group_count(shape),
                defined: 0,
            }
        };
        let (term, divisor) = match (self.dice.reduction, resolved) {
            (Reduction::Sum, Resolved::Focal { .. }) => (focal_reduced, Divisor::PerSample),
            (Reduction::Sum, _) => (term_sum, Divisor::Fixed(1.0)),
            (_, _) if term_div > 0.0 => (term_sum / term_div, Divisor::Fixed(term_div)),
            _ => (0.0, Divisor::Fixed(0.0)),
        };
        divisors.divisor = divisor;
        let value = CompoundValue {
            value: self.lambda_dice * dice.value + self.lambda_term * term,
            dice,
            term,
        };
        Ok((value, divisors))
    }

    /// Pass 2: over `grad` (holding the Dice term's probabilities), `∂loss/∂z` in place.
    fn backward<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        stats: &[SoftStats],
        value: &CompoundValue,
        divisors: &Divisors,
        grad: &mut [T],
    ) -> Result<()> {
        let shape = logits.shape();
        let (c_n, s_n) = (shape.channels, shape.spatial);
        let z = logits.pred();
        let resolved = self.resolved(shape);
        let dice_on = self.lambda_dice != 0.0;
        let term_on = self.lambda_term != 0.0;
        let softmax_dice = self.activation == Activation::Softmax;
        let soft = self.dice.moment() == Moment::SoftLabel;
        let upstream = Upstream::Scalar(self.lambda_dice);
        let mut t = Tile::new(logits);
        let mut coef = [(0.0f64, 0.0f64, 0.0f64); COEF_CACHE];
        let mut mx = [T::ZERO; TILE];
        let mut se = [T::ZERO; TILE];
        let mut acc = [T::ZERO; TILE];
        let mut q_sum = [T::ZERO; TILE];
        let mut ps = [T::ZERO; TILE];
        let coefficients = |n: usize, c: usize| -> Result<(f64, f64, f64)> {
            if !dice_on {
                return Ok((0.0, 0.0, 0.0));
            }
            let (k_i, k_p) =
                self.dice
                    .pair_coefficients(shape, stats, &value.dice, upstream, n, c)?;
            Ok(self.dice.affine_of(k_i, k_p))
        };
        for n in 0..shape.batch {
            for (c, slot) in coef.iter_mut().enumerate().take(c_n) {
                *slot = coefficients(n, c)?;
            }
            let coef_of = |c: usize| -> Result<(T, T, T)> {
                let (a, b, cc) = if c < COEF_CACHE {
                    coef[c]
                } else {
                    coefficients(n, c)?
                };
                Ok((T::from_f64(a), T::from_f64(b), T::from_f64(cc)))
            };
            let term_scale = if !term_on {
                0.0
            } else {
                match divisors.divisor {
                    Divisor::Fixed(d) if d > 0.0 => self.lambda_term / d,
                    Divisor::Fixed(_) => 0.0,
                    Divisor::PerSample => match divisors.kept.get(n) {
                        Some(&k) if k > 0 => self.lambda_term / k as f64,
                        _ => 0.0,
                    },
                }
            };
            let categorical = match resolved {
                Resolved::Categorical { weight, smoothing } if term_scale != 0.0 => {
                    Some((weight, smoothing))
                }
                _ => None,
            };
            let mut start = 0;
            while start < s_n {
                let tl = TILE.min(s_n - start);
                let at = |c: usize| (n * c_n + c) * s_n + start;
                t.load(n, start, tl);
                // Σ_k p_k·d_k of the softmax chain, and Σ_k q_k of the cross-entropy.
                if softmax_dice && dice_on {
                    acc[..tl].fill(T::ZERO);
                }
                if categorical.is_some() {
                    q_sum[..tl].fill(T::ZERO);
                }
                if (softmax_dice && dice_on) || categorical.is_some() {
                    for c in 0..c_n {
                        t.fill_g_checked(c, tl);
                        if softmax_dice && dice_on {
                            let (a, b, cc) = coef_of(c)?;
                            let p = &grad[at(c)..at(c) + tl];
                            for j in 0..tl {
                                let s = t.slope(j, p[j], soft);
                                acc[j] = acc[j] + t.kf[j] * p[j] * (a + b * s + cc * p[j]);
                            }
                        }
                        if let Some((weight, eps)) = categorical {
                            let (qa, qb) = q_coefficients::<T>(weight, c, eps, c_n, term_scale);
                            for j in 0..tl {
                                q_sum[j] = q_sum[j] + t.kf[j] * (qa + qb * t.g[j]);
                            }
                        }
                    }
                    if categorical.is_some() && !softmax_dice {
                        log_sum_exp(z, c_n, s_n, n, start, tl, &mut mx, &mut se, &mut []);
                    }
                }
                for c in 0..c_n {
                    t.fill_g_checked(c, tl);
                    let (a, b, cc) = coef_of(c)?;
                    let zr = &z[at(c)..at(c) + tl];
                    let row = &mut grad[at(c)..at(c) + tl];
                    // The Dice term's gradient.
                    if dice_on {
                        for j in 0..tl {
                            let p = row[j];
                            let d = a + b * t.slope(j, p, soft) + cc * p;
                            let dz = if softmax_dice {
                                p * (d - acc[j])
                            } else {
                                d * p * (T::ONE - p)
                            };
                            ps[j] = p;
                            row[j] = t.kf[j] * dz;
                        }
                    } else {
                        ps[..tl].copy_from_slice(row);
                        row.fill(T::ZERO);
                    }
                    if term_scale == 0.0 {
                        continue;
                    }
                    // The voxel term's gradient, added.
                    match (resolved, categorical) {
                        (_, Some((weight, eps))) => {
                            if !softmax_dice {
                                for j in 0..tl {
                                    ps[j] = (zr[j] - mx[j]).exp_nonpositive() / se[j];
                                }
                            }
                            let (qa, qb) = q_coefficients::<T>(weight, c, eps, c_n, term_scale);
                            for j in 0..tl {
                                let q = qa + qb * t.g[j];
                                row[j] = row[j] + t.kf[j] * (ps[j] * q_sum[j] - q);
                            }
                        }
                        (Resolved::Binary { pos_weight }, None) => {
                            let w = pos_weight.map_or(1.0, |w| w[c]);
                            t.add_element_gradient(zr, row, term_scale, |zv, g| {
                                binary_ce(zv, g, w).1
                            });
                        }
                        (
                            Resolved::Focal {
                                gamma,
                                alpha,
                                weight,
                                first,
                            },
                            None,
                        ) if c >= first => {
                            let w = weight.map_or(1.0, |w| w[c]);
                            t.add_element_gradient(zr, row, term_scale, |zv, g| {
                                focal(zv, g, gamma, alpha, w).1
                            });
                        }
                        _ => {}
                    }
                }
                start += tl;
            }
        }
        Ok(())
    }
}

/// `q_c = qa + qb·g` of channel `c`, times `scale`: `w_c·((1 − ε)·g + ε/C)`.
#[inline(always)]
fn q_coefficients<T: Float>(
    weight: Option<&[f64]>,
    c: usize,
    eps: f64,
    c_n: usize,
    scale: f64,
) -> (T, T) {
    let w = weight.map_or(1.0, |w| w[c]) * scale;
    (
        T::from_f64(w * eps / c_n as f64),
        T::from_f64(w * (1.0 - eps)),
    )
}

/// How the voxel term's sum was divided (for the gradient's scale).
#[derive(Clone, Copy, Debug, Default)]
enum Divisor {
    /// One divisor for the whole batch (1 for a plain sum; 0: the term is 0).
    Fixed(f64),
    /// Each sample's sum divided by its kept voxels (MONAI's focal `sum`).
    #[default]
    PerSample,
}

/// The divisor and each sample's kept voxels (at most [`KEPT_CACHE`] samples are remembered;
/// batches are small).
#[derive(Clone, Copy, Debug, Default)]
struct Divisors {
    divisor: Divisor,
    kept: KeptCounts,
}

const KEPT_CACHE: usize = 256;

#[derive(Clone, Copy, Debug)]
struct KeptCounts {
    values: [u64; KEPT_CACHE],
    len: usize,
}

impl Default for KeptCounts {
    fn default() -> Self {
        KeptCounts {
            values: [0; KEPT_CACHE],
            len: 0,
        }
    }
}

impl KeptCounts {
    fn get(&self, n: usize) -> Option<&u64> {
        self.values[..self.len.min(KEPT_CACHE)].get(n)
    }
}

impl Divisors {
    fn push(&mut self, kept: u64) {
        if self.kept.len < KEPT_CACHE {
            self.kept.values[self.kept.len] = kept;
        }
        self.kept.len += 1;
    }
}

/// `softplus(x) = ln(1 + eˣ)`, without overflow.
#[inline]
fn softplus(x: f64) -> f64 {
    x.max(0.0) + libm::log1p(libm::exp(-x.abs()))
}

/// Binary cross-entropy with logits and its derivative in `z`:
/// `w·t·softplus(−z) + (1 − t)·softplus(z)`, `(1 − t)·σ(z) − w·t·σ(−z)`.
#[inline]
fn binary_ce(z: f64, t: f64, w: f64) -> (f64, f64) {
    let value = w * t * softplus(-z) + (1.0 - t) * softplus(z);
    let grad = (1.0 - t) * z.sigmoid() - w * t * (-z).sigmoid();
    (value, grad)
}

/// MONAI's sigmoid focal loss of one element and its derivative in `z` (module docs).
#[inline]
fn focal(z: f64, t: f64, gamma: f64, alpha: Option<f64>, w: f64) -> (f64, f64) {
    let a = w * alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
    let bce = softplus(z) - z * t;
    let u = z * (1.0 - 2.0 * t);
    // σ(u)^γ = exp(−γ·softplus(−u)); exactly 1 for γ = 0.
    let m = if gamma == 0.0 {
        1.0
    } else {
        libm::exp(-gamma * softplus(-u))
    };
    let value = a * m * bce;
    let grad = a * m * ((z.sigmoid() - t) + gamma * bce * (-u).sigmoid() * (1.0 - 2.0 * t));
    (value, grad)
}

/// Per voxel of one tile of sample `n`: the channel maximum `mx` and `Σ_c e^{z_c − mx}` in `se`;
/// `e` itself goes into `out` when it is not empty.
#[allow(clippy::too_many_arguments)]
fn log_sum_exp<T: Float>(
    z: &[T],
    c_n: usize,
    s_n: usize,
    n: usize,
    start: usize,
    tl: usize,
    mx: &mut [T; TILE],
    se: &mut [T; TILE],
    out: &mut [T],
) {
    let at = |c: usize| (n * c_n + c) * s_n + start;
    mx[..tl].copy_from_slice(&z[at(0)..at(0) + tl]);
    for c in 1..c_n {
        for (m, &v) in mx.iter_mut().zip(&z[at(c)..at(c) + tl]) {
            if v > *m {
                *m = v;
            }
        }
    }
    se[..tl].fill(T::ZERO);
    for c in 0..c_n {
        let zr = &z[at(c)..at(c) + tl];
        if out.is_empty() {
            for j in 0..tl {
                se[j] = se[j] + (zr[j] - mx[j]).exp_nonpositive();
            }
        } else {
            let o = &mut out[at(c)..at(c) + tl];
            for j in 0..tl {
                let e = (zr[j] - mx[j]).exp_nonpositive();
                o[j] = e;
                se[j] = se[j] + e;
            }
        }
    }
}

/// One tile of one sample's target: which voxels count, their labels, and the target row of
/// the channel at hand (0 where a voxel does not count).
struct Tile<'a, T> {
    target: Target<'a, T>,
    mask: Option<&'a [u8]>,
    shape: Shape,
    n: usize,
    start: usize,
    /// 1 where the voxel counts, else 0.
    kf: [T; TILE],
    label: [i64; TILE],
    /// `g(n, c, start + j)` of the last filled channel `c`, 0 where the voxel does not count.
    g: [T; TILE],
    /// `Σ_c q_c·z_c` and `Σ_c q_c` of the cross-entropy, and `Σ_c w_c·g_c` (its divisor).
    qz: [f64; TILE],
    qs: [f64; TILE],
    wy: [f64; TILE],
}

impl<'a, T: Float> Tile<'a, T> {
    fn new(input: &SoftInput<'a, T>) -> Self {
        Tile {
            target: input.target(),
            mask: input.mask(),
            shape: input.shape(),
            n: 0,
            start: 0,
            kf: [T::ZERO; TILE],
            label: [0; TILE],
            g: [T::ZERO; TILE],
            qz: [0.0; TILE],
            qs: [0.0; TILE],
            wy: [0.0; TILE],
        }
    }

    fn load(&mut self, n: usize, start: usize, tl: usize) {
        self.n = n;
        self.start = start;
        let vox = n * self.shape.spatial + start;
        for j in 0..tl {
            let keep = self.mask.is_none_or(|m| m[vox + j] != 0);
            self.kf[j] = if keep { T::ONE } else { T::ZERO };
        }
        if let Target::Labels {
            labels,
            ignore_index,
        } = self.target
        {
            with_labels!(labels, l => {
                for j in 0..tl {
                    let v = l[vox + j].to_i64();
                    self.label[j] = v;
                    if Some(v) == ignore_index {
                        self.kf[j] = T::ZERO;
                    }
                }
            });
        }
    }

    fn kept_count(&self, tl: usize) -> usize {
        self.kf[..tl].iter().filter(|&&k| k != T::ZERO).count()
    }

    /// Fills `g` for channel `c`, checking that dense values that count are in `[0, 1]`
    /// (`base` is the flat index of the tile's first element, for the error).
    fn fill_g(&mut self, c: usize, tl: usize, base: usize) -> Result<()> {
        if let Target::Dense(g) = self.target {
            let row = &g[base..base + tl];
            for j in 0..tl {
                if self.kf[j] != T::ZERO && !portable::unit(row[j]) {
                    return Err(value_error(Operand::Target, base + j, row[j]));
                }
            }
        }
        self.fill_g_checked(c, tl);
        Ok(())
    }

    /// [`Tile::fill_g`] for values already checked (the second pass).
    fn fill_g_checked(&mut self, c: usize, tl: usize) {
        match self.target {
            Target::Dense(g) => {
                let base = (self.n * self.shape.channels + c) * self.shape.spatial + self.start;
                for j in 0..tl {
                    self.g[j] = if self.kf[j] != T::ZERO {
                        g[base + j]
                    } else {
                        T::ZERO
                    };
                }
            }
            Target::Labels { .. } => {
                let c = c as i64;
                for j in 0..tl {
                    self.g[j] = if self.label[j] == c {
                        self.kf[j]
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }

    /// `∂I/∂p` at voxel `j` of the filled channel (`g`, or the soft-label slope).
    #[inline(always)]
    fn slope(&self, j: usize, p: T, soft: bool) -> T {
        if soft {
            portable::soft_label_slope(p, self.g[j])
        } else {
            self.g[j]
        }
    }

    /// Adds one tile of the filled channel, with probabilities `p`, to the statistics.
    fn add_stats(&self, p: &[T], moment: Moment, st: &mut SoftStats) {
        const L: usize = 8;
        let (mut a0, mut a1, mut a2) = ([0.0f64; L], [0.0f64; L], [0.0f64; L]);
        let tl = p.len();
        let (g, kf) = (&self.g[..tl], &self.kf[..tl]);
        for ((pc, gc), kc) in p.chunks(L).zip(g.chunks(L)).zip(kf.chunks(L)) {
            for l in 0..pc.len() {
                let (pf, gf, k) = (pc[l].to_f64(), gc[l].to_f64(), kc[l].to_f64());
                match moment {
                    Moment::Linear => {
                        a0[l] += pf * gf;
                        a1[l] += pf * k;
                        a2[l] += gf;
                    }
                    Moment::Squared => {
                        a0[l] += pf * gf;
                        a1[l] += pf * pf * k;
                        a2[l] += gf * gf;
                    }
                    Moment::SoftLabel => {
                        a0[l] += (pf - gf).abs() * k;
                        a1[l] += pf * k;
                        a2[l] += gf;
                    }
                }
            }
        }
        let sum = |a: [f64; L]| a.iter().sum::<f64>();
        let (s0, s1, s2) = (sum(a0), sum(a1), sum(a2));
        let soft = moment == Moment::SoftLabel;
        let tile = SoftStats {
            intersection: if soft { 0.0 } else { s0 },
            pred: s1,
            target: s2,
            voxels: self.kept_count(tl) as u64,
            moment,
            abs_diff: if soft { s0 } else { 0.0 },
        };
        *st = st.add_unchecked(&tile);
    }

    /// `Σ f(z, g)` over the voxels of the tile that count, for the filled channel.
    fn element_sum(&self, z: &[T], f: impl Fn(f64, f64) -> f64) -> f64 {
        let mut s = 0.0;
        for (j, &zv) in z.iter().enumerate() {
            if self.kf[j] != T::ZERO {
                s += f(zv.to_f64(), self.g[j].to_f64());
            }
        }
        s
    }

    /// `row += scale·f'(z, g)` over the voxels that count, for the filled channel.
    fn add_element_gradient(
        &self,
        z: &[T],
        row: &mut [T],
        scale: f64,
        f: impl Fn(f64, f64) -> f64,
    ) {
        for (j, (o, &zv)) in row.iter_mut().zip(z).enumerate() {
            if self.kf[j] != T::ZERO {
                *o = *o + T::from_f64(scale * f(zv.to_f64(), self.g[j].to_f64()));
            }
        }
    }

    fn clear_q(&mut self, tl: usize) {
        self.qz[..tl].fill(0.0);
        self.qs[..tl].fill(0.0);
        self.wy[..tl].fill(0.0);
    }

    /// Adds the filled channel (weight `w`) to the cross-entropy's per-voxel sums.
    fn add_q(&mut self, z: &[T], w: f64, eps: f64, c_n: usize) {
        let (qa, qb) = (w * eps / c_n as f64, w * (1.0 - eps));
        for (j, &zv) in z.iter().enumerate() {
            let (g, k) = (self.g[j].to_f64(), self.kf[j].to_f64());
            let q = k * (qa + qb * g);
            self.qz[j] += q * zv.to_f64();
            self.qs[j] += q;
            self.wy[j] += w * g;
        }
    }

    /// The categorical cross-entropy of the tile, `Σ (Q·lse − Σ_c q_c·z_c)`, and its mean's
    /// divisor (`Σ w_y` for labels, voxels for dense targets).
    fn categorical_tile(&self, tl: usize, mx: &[T; TILE], se: &[T; TILE]) -> (f64, f64) {
        let (mut sum, mut div) = (0.0f64, 0.0f64);
        let labels = matches!(self.target, Target::Labels { .. });
        for j in 0..tl {
            if self.kf[j] == T::ZERO {
                continue;
            }
            let lse = mx[j].to_f64() + libm::log(se[j].to_f64());
            sum += self.qs[j] * lse - self.qz[j];
            div += if labels { self.wy[j] } else { 1.0 };
        }
        (sum, div)
    }
}
