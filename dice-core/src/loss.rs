//! Soft losses over `[N, C, S]` batches: the configuration ([`SoftLoss`], with MONAI's
//! parameter names), reductions, and analytic gradients written into a caller's buffer.
//!
//! ## Groups and reduction
//! A *group* is the set of voxels one score is computed over:
//! * Dice, Jaccard, Tversky: one group per (sample, class), or per class with `batch = true`
//!   (statistics summed over the batch first, as nnU-Net's `batch_dice`);
//! * generalized Dice: one group per sample (its classes weighted), or one with `batch = true`.
//!
//! Each group's loss is `w_c · form(score)^γ` (`w_c` the class weight, `form` one of
//! [`LossForm`], `γ` the focal exponent); `reduction` then takes the mean over defined groups,
//! their sum, or returns them all. Classes left out by `include_background = false` form no
//! group and get zero gradient.
//!
//! ## Gradients
//! Every score is a function of its group's `(I, P, G)`, so
//! `∂loss/∂pᵢ = k_I·gᵢ + k_P·∂P/∂pᵢ` with `∂P/∂pᵢ = 1` (or `2pᵢ` for squared moments) and two
//! constants `(k_I, k_P)` per (sample, class): one read of the target (and of `p` for squared
//! moments) and one write per element, no temporaries, no autograd graph. With
//! [`Moment::SoftLabel`] statistics `gᵢ` is replaced by `∂I/∂pᵢ = (1 − sign(pᵢ − gᵢ))/2`
//! (`gᵢ` itself at `pᵢ = gᵢ`, see [`crate::stats`]). Masked or ignored
//! voxels get 0. Through a sigmoid, `∂/∂z = ∂/∂p·p(1 − p)`; through a softmax over channels,
//! `∂/∂z_c = p_c·(∂/∂p_c − Σ_k p_k·∂/∂p_k)`.

use crate::drive::{self, Exec};
use crate::error::{invalid, DiceError, Operand, Result};
use crate::hard::EmptyValue;
use crate::kernels::portable;
use crate::layout::{check_len, with_labels, Shape, SoftInput, Target};
use crate::score::{self, Partials, Weighting};
use crate::stats::{self, value_error, Moment, SoftStats};
use crate::{Float, Label as _};

/// Which soft score a loss is built on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Score {
    /// [`score::dice`] (with `squared_pred`, the V-Net form).
    Dice,
    /// [`score::jaccard`] (MONAI's `jaccard = true`).
    Jaccard,
    /// [`score::tversky`] with false-positive weight `alpha` and false-negative weight `beta`.
    Tversky {
        /// Weight of false positives.
        alpha: f64,
        /// Weight of false negatives.
        beta: f64,
    },
    /// [`score::generalized_dice`] with class weights from the target volumes.
    Generalized(Weighting),
}

/// How a group's score becomes its loss (before the focal exponent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LossForm {
    /// `1 − score`.
    #[default]
    OneMinus,
    /// `−ln(score)` (smp's `log_loss`); a score ≤ 0 is an error.
    NegLog,
    /// `−score` (nnU-Net's `SoftDiceLoss` returns `−mean Dice`): `1 − score` less a constant,
    /// so the same gradient and nnU-Net's values. Not with a focal exponent.
    Negative,
}

/// How group losses are combined (MONAI's `reduction`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reduction {
    /// Mean over the groups whose score is defined.
    #[default]
    Mean,
    /// Sum over the groups.
    Sum,
    /// One loss per group ([`SoftLoss::group_losses`]); the scalar value is their sum.
    None,
}

/// The activation between logits and probabilities, for the fused logits gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// Element-wise sigmoid: binary and multi-label segmentation.
    Sigmoid,
    /// Softmax over the channel axis: multi-class segmentation.
    Softmax,
}

/// The upstream gradient of a loss: `1` for plain training, the autograd `grad_output`
/// otherwise (one value, or one per group for [`Reduction::None`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Upstream<'a> {
    /// One value, scaling the reduced loss.
    Scalar(f64),
    /// One value per group (only with [`Reduction::None`]).
    PerGroup(&'a [f64]),
}

/// A reduced loss and how many groups defined it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossValue {
    /// The loss after reduction (`0` when no group is defined).
    pub value: f64,
    /// Groups in the batch.
    pub groups: usize,
    /// Groups whose score was defined (not skipped by the empty policy).
    pub defined: usize,
}

/// A soft loss: its score, smoothing, form, focal exponent and reduction, with MONAI's
/// parameter names and defaults (`smooth_nr = smooth_dr = 1e-5`, `include_background = true`,
/// `batch = false`, `reduction = Mean`).
///
/// The default zero-denominator policy is [`EmptyValue::One`]: a group where `p` and `g` are
/// both identically zero and `s_dr = 0` scores 1 (loss 0, zero gradient). With the default
/// smoothing no denominator is ever zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftLoss<'w> {
    /// The score.
    pub score: Score,
    /// Use `Σp²`, `Σg²` in the denominator (Dice and Jaccard only).
    pub squared_pred: bool,
    /// The soft-label intersection `(P + G − Σ|p − g|)/2` instead of `Σp·g` (MONAI's
    /// `soft_label`): the right form for soft targets, identical for binary ones (see
    /// [`crate::stats`]). No effect with `squared_pred`, where both forms are `Σp·g`.
    pub soft_label: bool,
    /// Numerator smoothing `s_nr ≥ 0`.
    pub smooth_nr: f64,
    /// Denominator smoothing `s_dr ≥ 0`.
    pub smooth_dr: f64,
    /// `1 − score` or `−ln(score)`.
    pub form: LossForm,
    /// Focal exponent `γ > 0` applied to each group's loss (`1` = none).
    pub gamma: f64,
    /// Keep channel 0 as a class.
    pub include_background: bool,
    /// Sum statistics over the batch before scoring (nnU-Net's `batch_dice`).
    pub batch: bool,
    /// How group losses are combined.
    pub reduction: Reduction,
    /// One non-negative weight per channel multiplying that class's loss (MONAI's `weight`);
    /// not with generalized Dice, which weighs classes itself.
    pub class_weights: Option<&'w [f64]>,
    /// The score of a group whose denominator is zero.
    pub zero_denominator: EmptyValue,
    /// Runs the chunks of large passes on several threads (`None`: the calling thread).
    /// Results are bit-identical whatever runs them: see [`crate::parallel`].
    #[cfg(feature = "std")]
    pub executor: Option<&'w dyn crate::parallel::Executor>,
}

impl Default for SoftLoss<'_> {
    fn default() -> Self {
        SoftLoss::dice()
    }
}

impl<'w> SoftLoss<'w> {
    /// Dice loss `1 − (2I + s_nr)/(P + G + s_dr)` with MONAI's defaults.
    pub const fn dice() -> Self {
        SoftLoss {
            score: Score::Dice,
            squared_pred: false,
            soft_label: false,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            form: LossForm::OneMinus,
            gamma: 1.0,
            include_background: true,
            batch: false,
            reduction: Reduction::Mean,
            class_weights: None,
            zero_denominator: EmptyValue::One,
            #[cfg(feature = "std")]
            executor: None,
        }
    }

    /// Jaccard (IoU) loss, MONAI's `DiceLoss(jaccard=True)`.
    pub const fn jaccard() -> Self {
        SoftLoss {
            score: Score::Jaccard,
            ..SoftLoss::dice()
        }
    }

    /// Tversky loss `1 − T(α, β)` (MONAI's `TverskyLoss`, default `α = β = 0.5`).
    pub const fn tversky(alpha: f64, beta: f64) -> Self {
        SoftLoss {
            score: Score::Tversky { alpha, beta },
            ..SoftLoss::dice()
        }
    }

    /// Focal Tversky loss `(1 − T(α, β))^γ` per group.
    pub const fn focal_tversky(alpha: f64, beta: f64, gamma: f64) -> Self {
        SoftLoss {
            score: Score::Tversky { alpha, beta },
            gamma,
            ..SoftLoss::dice()
        }
    }

    /// Generalized Dice loss (MONAI's `GeneralizedDiceLoss`) with the absent-class policy of
    /// [`score::generalized_weights`].
    pub const fn generalized_dice(weighting: Weighting) -> Self {
        SoftLoss {
            score: Score::Generalized(weighting),
            ..SoftLoss::dice()
        }
    }

    /// Sets `smooth_nr` and `smooth_dr`.
    pub const fn smooth(mut self, smooth_nr: f64, smooth_dr: f64) -> Self {
        self.smooth_nr = smooth_nr;
        self.smooth_dr = smooth_dr;
        self
    }

    /// Sets `squared_pred`.
    pub const fn squared_pred(mut self, on: bool) -> Self {
        self.squared_pred = on;
        self
    }

    /// Sets `soft_label`.
    pub const fn soft_label(mut self, on: bool) -> Self {
        self.soft_label = on;
        self
    }

    /// Sets the loss form.
    pub const fn form(mut self, form: LossForm) -> Self {
        self.form = form;
        self
    }

    /// Sets the focal exponent.
    pub const fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    /// Sets `include_background`.
    pub const fn include_background(mut self, on: bool) -> Self {
        self.include_background = on;
        self
    }

    /// Sets `batch`.
    pub const fn batch(mut self, on: bool) -> Self {
        self.batch = on;
        self
    }

    /// Sets the reduction.
    pub const fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets per-channel weights (length `C`).
    pub const fn class_weights(mut self, weights: &'w [f64]) -> Self {
        self.class_weights = Some(weights);
        self
    }

    /// Sets the zero-denominator policy.
    pub const fn zero_denominator(mut self, value: EmptyValue) -> Self {
        self.zero_denominator = value;
        self
    }

    /// Runs large passes on `executor`'s threads (e.g. [`crate::parallel::Threads`]): same
    /// bits as on one thread.
    #[cfg(feature = "std")]
    pub const fn executor(mut self, executor: &'w dyn crate::parallel::Executor) -> Self {
        self.executor = Some(executor);
        self
    }

    /// [`probabilities`] of `logits` into `out`, on this loss's executor (same bits on any).
    pub fn probabilities<T: Float>(
        &self,
        shape: Shape,
        logits: &[T],
        activation: Activation,
        out: &mut [T],
    ) -> Result<()> {
        probabilities_in(shape, logits, activation, out, self.exec())
    }

    /// The executor, or `None` (always `None` without `std`).
    #[inline]
    fn exec(&self) -> Exec<'w> {
        #[cfg(feature = "std")]
        return self.executor;
        #[cfg(not(feature = "std"))]
        None
    }

    /// The moments the statistics must hold.
    pub fn moment(&self) -> Moment {
        if self.squared_pred {
            Moment::Squared
        } else if self.soft_label {
            Moment::SoftLabel
        } else {
            Moment::Linear
        }
    }

    /// Checks every parameter against the shape: smoothing finite and `≥ 0`, `γ` finite and
    /// `> 0`, `α, β` finite and `≥ 0` with `α + β > 0`, `squared_pred` only with Dice or
    /// Jaccard, class weights finite, `≥ 0`, one per channel and not with generalized Dice,
    /// and at least one class left after `include_background = false`.
    pub fn validate(&self, shape: Shape) -> Result<()> {
        shape.elements()?;
        for (name, v) in [("smooth_nr", self.smooth_nr), ("smooth_dr", self.smooth_dr)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(name, v, "smoothing must be finite and >= 0"));
            }
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(invalid(
                "gamma",
                self.gamma,
                "the focal exponent must be finite and > 0",
            ));
        }
        if self.form == LossForm::Negative && self.gamma != 1.0 {
            return Err(invalid(
                "gamma",
                self.gamma,
                "the focal exponent needs a non-negative loss: not with the form -score",
            ));
        }
        match self.score {
            Score::Tversky { alpha, beta } => {
                for (name, v) in [("alpha", alpha), ("beta", beta)] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(invalid(name, v, "Tversky weights must be finite and >= 0"));
                    }
                }
                if alpha + beta <= 0.0 {
                    return Err(invalid(
                        "alpha + beta",
                        alpha + beta,
                        "alpha + beta must be > 0",
                    ));
                }
                if self.squared_pred {
                    return Err(invalid(
                        "squared_pred",
                        1.0,
                        "applies to Dice and Jaccard only",
                    ));
                }
            }
            Score::Generalized(_) => {
                if self.squared_pred {
                    return Err(invalid(
                        "squared_pred",
                        1.0,
                        "applies to Dice and Jaccard only",
                    ));
                }
                if self.class_weights.is_some() {
                    return Err(invalid(
                        "weight",
                        f64::NAN,
                        "generalized Dice weighs classes itself: class weights do not apply",
                    ));
                }
            }
            Score::Dice | Score::Jaccard => {}
        }
        if let Some(w) = self.class_weights {
            check_len(Operand::ClassWeights, shape.channels, w.len())?;
            if let Some(&v) = w.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(invalid(
                    "weight",
                    v,
                    "class weights must be finite and >= 0",
                ));
            }
        }
        if !self.include_background && shape.channels < 2 {
            return Err(invalid(
                "include_background",
                0.0,
                "excluding the background of a single-channel prediction leaves no class",
            ));
        }
        Ok(())
    }

    /// First class that forms groups (0, or 1 without background).
    fn first_class(&self) -> usize {
        usize::from(!self.include_background)
    }

    fn generalized(&self) -> Option<Weighting> {
        match self.score {
            Score::Generalized(w) => Some(w),
            _ => None,
        }
    }

    /// Number of groups for this shape (see the module docs).
    pub fn group_count(&self, shape: Shape) -> usize {
        let samples = if self.batch { 1 } else { shape.batch };
        if self.generalized().is_some() {
            samples
        } else {
            samples.saturating_mul(shape.channels.saturating_sub(self.first_class()))
        }
    }

    /// Fills `out` (`N·C` entries) with the statistics this loss needs (see
    /// [`stats::accumulate`]). Sum them across processes or chunks before [`SoftLoss::loss`]
    /// for a loss over the union.
    pub fn statistics<T: Float>(
        &self,
        input: &SoftInput<'_, T>,
        out: &mut [SoftStats],
    ) -> Result<()> {
        self.validate(input.shape())?;
        stats::accumulate_in(input, self.moment(), out, self.exec())
    }

    /// The reduced loss from statistics (`N·C` entries, as [`SoftLoss::statistics`] fills).
    pub fn loss(&self, shape: Shape, stats: &[SoftStats]) -> Result<LossValue> {
        self.evaluate(shape, stats, |_, _| {})
    }

    /// Each group's loss (`None` for a group skipped by [`EmptyValue::Skip`]) into `out`
    /// (length [`SoftLoss::group_count`]), in sample-major, class-minor order; returns the
    /// reduced value too.
    pub fn group_losses(
        &self,
        shape: Shape,
        stats: &[SoftStats],
        out: &mut [Option<f64>],
    ) -> Result<LossValue> {
        self.validate(shape)?;
        check_len(Operand::Output, self.group_count(shape), out.len())?;
        self.evaluate(shape, stats, |g, l| out[g] = l)
    }

    /// Calls `visit(group, loss)` for each group in order (`None` for a skipped group) and
    /// returns the reduced value: [`SoftLoss::group_losses`] for callers with their own storage.
    pub fn for_each_group(
        &self,
        shape: Shape,
        stats: &[SoftStats],
        visit: impl FnMut(usize, Option<f64>),
    ) -> Result<LossValue> {
        self.evaluate(shape, stats, visit)
    }

    fn check_stats(&self, shape: Shape, stats: &[SoftStats]) -> Result<()> {
        self.validate(shape)?;
        check_len(Operand::Statistics, shape.pairs()?, stats.len())?;
        let m = self.moment();
        for s in stats {
            if s.moment != m {
                return Err(DiceError::MomentMismatch);
            }
            s.validate()?;
        }
        Ok(())
    }

    fn evaluate(
        &self,
        shape: Shape,
        stats: &[SoftStats],
        mut visit: impl FnMut(usize, Option<f64>),
    ) -> Result<LossValue> {
        self.check_stats(shape, stats)?;
        let groups = self.group_count(shape);
        let (mut sum, mut defined) = (0.0, 0usize);
        for g in 0..groups {
            let e = self.eval_group(shape, stats, g)?;
            if let Some(l) = e.loss {
                sum += l;
                defined += 1;
            }
            visit(g, e.loss);
        }
        let value = match self.reduction {
            Reduction::Mean if defined > 0 => sum / defined as f64,
            Reduction::Mean => 0.0,
            Reduction::Sum | Reduction::None => sum,
        };
        Ok(LossValue {
            value,
            groups,
            defined,
        })
    }

    /// Sample range and class of a per-class group, or the sample range of a generalized one.
    fn group_samples(&self, shape: Shape, g: usize) -> (core::ops::Range<usize>, usize) {
        let per = if self.generalized().is_some() {
            1
        } else {
            shape.channels - self.first_class()
        };
        let class = self.first_class() + g % per;
        let samples = if self.batch {
            0..shape.batch
        } else {
            g / per..g / per + 1
        };
        (samples, class)
    }

    fn eval_group(&self, shape: Shape, stats: &[SoftStats], g: usize) -> Result<GroupEval> {
        let (samples, class) = self.group_samples(shape, g);
        let sample = (!self.batch).then_some(samples.start);
        let c_n = shape.channels;
        let sum_class = |c: usize| {
            samples
                .clone()
                .fold(SoftStats::zero(self.moment()), |acc, n| {
                    acc.add_unchecked(&stats[n * c_n + c])
                })
        };
        let (snr, sdr) = (self.smooth_nr, self.smooth_dr);
        let (score, kind, class_id, weight) = match self.score {
            Score::Generalized(w) => {
                let fill = self.generalized_fill(&sum_class, c_n, w);
                let weight_of =
                    |c: usize| score::class_weight(sum_class(c).target, w).unwrap_or(fill);
                let (n, d) = score::generalized_terms(
                    (self.first_class()..c_n).map(|c| {
                        let s = sum_class(c);
                        (weight_of(c), s.intersection, s.pred, s.target)
                    }),
                    snr,
                    sdr,
                );
                let score = if d == 0.0 { None } else { Some(n / d) };
                (score, Kind::Generalized { n, d, fill }, None, 1.0)
            }
            sc => {
                let s = sum_class(class);
                let (i, p, t) = (s.intersection, s.pred, s.target);
                let (value, partials) = match sc {
                    Score::Dice => (
                        score::dice(i, p, t, snr, sdr),
                        score::dice_partials(i, p, t, snr, sdr),
                    ),
                    Score::Jaccard => (
                        score::jaccard(i, p, t, snr, sdr),
                        score::jaccard_partials(i, p, t, snr, sdr),
                    ),
                    Score::Tversky { alpha, beta } => (
                        score::tversky(i, p, t, alpha, beta, snr, sdr),
                        score::tversky_partials(i, p, t, alpha, beta, snr, sdr),
                    ),
                    Score::Generalized(_) => unreachable_generalized(),
                };
                let w = self.class_weights.map_or(1.0, |w| w[class]);
                (
                    value,
                    Kind::Class(partials.unwrap_or_default()),
                    Some(class),
                    w,
                )
            }
        };
        let Some(score) = score else {
            // Zero denominator: a constant score, so no gradient.
            let loss = match self.zero_denominator {
                EmptyValue::Skip => None,
                e => Some(
                    weight
                        * score::focal(self.form_value(e.value(), sample, class_id)?, self.gamma),
                ),
            };
            return Ok(GroupEval {
                loss,
                dscore: 0.0,
                kind,
            });
        };
        let l = self.form_value(score, sample, class_id)?;
        let dform = match self.form {
            LossForm::OneMinus | LossForm::Negative => -1.0,
            LossForm::NegLog => -1.0 / score,
        };
        let loss = weight * score::focal(l, self.gamma);
        let dscore = weight * score::focal_derivative(l, self.gamma) * dform;
        Ok(GroupEval {
            loss: Some(loss),
            dscore,
            kind,
        })
    }

    fn form_value(&self, score: f64, sample: Option<usize>, class: Option<usize>) -> Result<f64> {
        match self.form {
            LossForm::OneMinus => Ok(score::one_minus(score)),
            LossForm::Negative => Ok(-score),
            LossForm::NegLog => score::neg_ln(score).ok_or(DiceError::LogOfNonPositive {
                sample,
                class,
                score,
            }),
        }
    }

    /// The weight given to absent classes of a generalized group: the largest weight of the
    /// present classes, or 1 when none is present ([`score::generalized_weights`]).
    fn generalized_fill(
        &self,
        sum_class: &impl Fn(usize) -> SoftStats,
        c_n: usize,
        w: Weighting,
    ) -> f64 {
        (self.first_class()..c_n)
            .filter_map(|c| score::class_weight(sum_class(c).target, w))
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .unwrap_or(1.0)
    }

    /// Checks an upstream gradient against the reduction and the number of groups.
    fn check_upstream(&self, upstream: Upstream<'_>, groups: usize) -> Result<()> {
        match upstream {
            Upstream::Scalar(v) if !v.is_finite() => Err(invalid("upstream", v, "must be finite")),
            Upstream::Scalar(_) => Ok(()),
            Upstream::PerGroup(u) if self.reduction != Reduction::None => Err(invalid(
                "upstream",
                u.len() as f64,
                "values per group (the number shown) need reduction None; a reduced loss takes one scalar",
            )),
            Upstream::PerGroup(u) => {
                check_len(Operand::Upstream, groups, u.len())?;
                match u.iter().find(|v| !v.is_finite()) {
                    Some(&v) => Err(invalid("upstream", v, "must be finite")),
                    None => Ok(()),
                }
            }
        }
    }

    /// `(k_I, k_P)` of pair `(n, c)`: `∂loss/∂I` and `∂loss/∂P` of the pair's own statistics,
    /// through its group, the reduction and the upstream gradient. `total` is the evaluation
    /// of the whole batch (for the mean's divisor). O(N) or O(C) work.
    pub(crate) fn pair_coefficients(
        &self,
        shape: Shape,
        stats: &[SoftStats],
        total: &LossValue,
        upstream: Upstream<'_>,
        n: usize,
        c: usize,
    ) -> Result<(f64, f64)> {
        if c < self.first_class() {
            return Ok((0.0, 0.0));
        }
        let c_n = shape.channels;
        let generalized = self.generalized();
        let per = if generalized.is_some() {
            1
        } else {
            c_n - self.first_class()
        };
        let sample_group = if self.batch { 0 } else { n };
        let g = sample_group * per
            + if generalized.is_some() {
                0
            } else {
                c - self.first_class()
            };
        let scale = match (upstream, self.reduction) {
            (Upstream::PerGroup(u), _) => u[g],
            (Upstream::Scalar(v), Reduction::Mean) if total.defined > 0 => v / total.defined as f64,
            (Upstream::Scalar(_), Reduction::Mean) => 0.0,
            (Upstream::Scalar(v), _) => v,
        };
        let e = self.eval_group(shape, stats, g)?;
        let k = scale * e.dscore;
        if k == 0.0 {
            return Ok((0.0, 0.0));
        }
        let partials = match (e.kind, generalized) {
            (Kind::Generalized { n: num, d, fill }, Some(w)) => {
                let (samples, _) = self.group_samples(shape, g);
                let target: f64 = samples.map(|m| stats[m * c_n + c].target).sum();
                let weight = score::class_weight(target, w).unwrap_or(fill);
                score::generalized_partials(num, d, weight).unwrap_or_default()
            }
            (Kind::Class(p), _) => p,
            (Kind::Generalized { .. }, None) => Partials::default(),
        };
        Ok((k * partials.intersection, k * partials.pred))
    }

    /// `(a, b, c)` of `∂loss/∂pᵢ = a + b·gᵢ + c·pᵢ` from `(k_I, k_P)`.
    pub(crate) fn affine_of(&self, k_i: f64, k_p: f64) -> (f64, f64, f64) {
        if self.squared_pred {
            (0.0, k_i, 2.0 * k_p)
        } else {
            (k_p, k_i, 0.0)
        }
    }

    /// Writes `∂loss/∂p` (of the reduced loss, times `upstream`) into `grad` (`N·C·S`), given
    /// the statistics of the same input or their all-reduced sum across processes. With
    /// [`Reduction::None`], `Upstream::Scalar(v)` differentiates `v·Σ group losses`.
    pub fn gradient<T: Float>(
        &self,
        input: &SoftInput<'_, T>,
        stats: &[SoftStats],
        upstream: Upstream<'_>,
        grad: &mut [T],
    ) -> Result<()> {
        let shape = input.shape();
        check_len(Operand::Output, shape.elements()?, grad.len())?;
        let total = self.evaluate(shape, stats, |_, _| {})?;
        self.check_upstream(upstream, total.groups)?;
        let s_n = shape.spatial;
        let moment = self.moment();
        let stream = core::mem::size_of_val(grad) >= crate::kernels::STREAM_BYTES;
        #[cfg(feature = "std")]
        if let Some(e) = crate::parallel::pick(self.exec(), grad.len()) {
            let coef = (0..shape.pairs()?)
                .map(|pair| {
                    let (n, c) = (pair / shape.channels, pair % shape.channels);
                    let (k_i, k_p) =
                        self.pair_coefficients(shape, stats, &total, upstream, n, c)?;
                    Ok(self.affine_of(k_i, k_p))
                })
                .collect::<Result<std::vec::Vec<_>>>()?;
            let parts = row_chunks(grad, s_n).collect();
            crate::parallel::for_each_mut(e, parts, |_, (pair, start, out)| {
                let (n, c) = (pair / shape.channels, pair % shape.channels);
                let p = &input.pred()[pair * s_n + start..][..out.len()];
                write_pair(input, moment, (n, c, start), p, out, coef[pair], stream);
            });
            return Ok(());
        }
        for (pair, out) in grad.chunks_exact_mut(s_n).enumerate() {
            let (n, c) = (pair / shape.channels, pair % shape.channels);
            let (k_i, k_p) = self.pair_coefficients(shape, stats, &total, upstream, n, c)?;
            let (a, b, cc) = self.affine_of(k_i, k_p);
            let p = &input.pred()[pair * s_n..(pair + 1) * s_n];
            write_pair(input, moment, (n, c, 0), p, out, (a, b, cc), stream);
        }
        Ok(())
    }

    /// Statistics, loss and gradient with respect to the probabilities in one call.
    /// `stats` (`N·C` entries) is workspace and holds the statistics on return.
    pub fn loss_and_gradient<T: Float>(
        &self,
        input: &SoftInput<'_, T>,
        stats: &mut [SoftStats],
        grad: &mut [T],
    ) -> Result<LossValue> {
        check_len(Operand::Output, input.shape().elements()?, grad.len())?;
        self.statistics(input, stats)?;
        let value = self.loss(input.shape(), stats)?;
        self.gradient(input, stats, Upstream::Scalar(1.0), grad)?;
        Ok(value)
    }

    /// Loss and gradient with respect to *logits*, fused through the activation: `logits`
    /// holds `z` (`N·C·S`, finite), `p = σ(z)` or `softmax_c(z)`.
    ///
    /// `grad` first receives `p` (so no other buffer is needed), then `∂loss/∂z`. `stats`
    /// (`N·C`) is workspace and holds the statistics of `p` on return. With
    /// [`Reduction::None`] the gradient is that of the sum of the group losses.
    pub fn loss_and_gradient_logits<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        activation: Activation,
        stats: &mut [SoftStats],
        grad: &mut [T],
    ) -> Result<LossValue> {
        let shape = logits.shape();
        self.validate(shape)?;
        probabilities_in(shape, logits.pred(), activation, grad, self.exec())?;
        let value = {
            let input = logits.with_pred(grad);
            self.statistics(&input, stats)?;
            self.loss(shape, stats)?
        };
        self.chain_logits(
            logits,
            activation,
            stats,
            &value,
            Upstream::Scalar(1.0),
            grad,
        )?;
        Ok(value)
    }

    /// `∂loss/∂z` for logits `z`, given the statistics of `p = activation(z)` (or their
    /// all-reduced sum) and an upstream gradient (one value, or one per group with
    /// [`Reduction::None`]): the backward pass of [`SoftLoss::loss_and_gradient_logits`] when
    /// the forward ran elsewhere. `grad` first receives `p`, then the gradient.
    pub fn gradient_logits<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        activation: Activation,
        stats: &[SoftStats],
        upstream: Upstream<'_>,
        grad: &mut [T],
    ) -> Result<()> {
        let shape = logits.shape();
        let total = self.evaluate(shape, stats, |_, _| {})?;
        self.check_upstream(upstream, total.groups)?;
        probabilities_in(shape, logits.pred(), activation, grad, self.exec())?;
        self.chain_logits(logits, activation, stats, &total, upstream, grad)
    }

    /// [`SoftLoss::gradient_logits`] with `grad` already holding `p = activation(z)`, kept from
    /// the forward pass whose statistics `stats` are (or their all-reduced sum): the activation
    /// is not recomputed, and `grad` turns into `∂loss/∂z` in place. `logits` supplies the
    /// shape, target and mask (its `z` are not read).
    ///
    /// Errors: as [`SoftLoss::gradient_logits`], and a `p` that is not in `[0, 1]` (naming the
    /// element, as [`crate::Operand::Prediction`]).
    pub fn gradient_logits_from_probabilities<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        activation: Activation,
        stats: &[SoftStats],
        upstream: Upstream<'_>,
        grad: &mut [T],
    ) -> Result<()> {
        let shape = logits.shape();
        check_len(Operand::Output, shape.elements()?, grad.len())?;
        let valid: &[T] = grad;
        drive::fold(
            self.exec(),
            valid.len(),
            drive::chunks(valid.len()),
            (),
            |_, _| (),
            |k| {
                let r = drive::chunk_range(k, valid.len());
                let p = &valid[r.clone()];
                // A branch-free pass (it vectorizes); the search for the culprit only when it
                // fails.
                if p.iter().fold(true, |ok, &v| ok & portable::unit(v)) {
                    return Ok(());
                }
                let i = p.iter().position(|&v| !portable::unit(v)).unwrap_or(0);
                Err(value_error(Operand::Prediction, r.start + i, p[i]))
            },
        )?;
        let total = self.evaluate(shape, stats, |_, _| {})?;
        self.check_upstream(upstream, total.groups)?;
        self.chain_logits(logits, activation, stats, &total, upstream, grad)
    }

    /// In place over `grad`, which holds `p`: `∂loss/∂p` through the activation's chain rule.
    fn chain_logits<T: Float>(
        &self,
        logits: &SoftInput<'_, T>,
        activation: Activation,
        stats: &[SoftStats],
        value: &LossValue,
        upstream: Upstream<'_>,
        grad: &mut [T],
    ) -> Result<()> {
        let shape = logits.shape();
        let target = logits.target();
        let mask = logits.mask();
        let s_n = shape.spatial;
        match activation {
            Activation::Sigmoid => {
                let soft = self.moment() == Moment::SoftLabel;
                let coef = |pair: usize| -> Result<(T, T, T)> {
                    let (n, c) = (pair / shape.channels, pair % shape.channels);
                    let (k_i, k_p) = self.pair_coefficients(shape, stats, value, upstream, n, c)?;
                    let (a, b, cc) = self.affine_of(k_i, k_p);
                    Ok((T::from_f64(a), T::from_f64(b), T::from_f64(cc)))
                };
                let chain = |pair: usize, start: usize, out: &mut [T], (a, b, cc): (T, T, T)| {
                    let (n, c) = (pair / shape.channels, pair % shape.channels);
                    // Without mask or soft labels: the branch-free kernels (same bits).
                    match (&target, mask, soft) {
                        (Target::Dense(g), None, false) => {
                            let g = &g[pair * s_n + start..][..out.len()];
                            return T::sigmoid_chain_dense(g, (a, b, cc), out);
                        }
                        (
                            Target::Labels {
                                labels,
                                ignore_index,
                            },
                            None,
                            false,
                        ) => {
                            return with_labels!(labels, l => T::sigmoid_chain_labels(
                                &l[n * s_n + start..][..out.len()],
                                c as i64,
                                *ignore_index,
                                (a, b, cc),
                                out,
                            ));
                        }
                        _ => {}
                    }
                    let voxels = VoxelTarget {
                        target: &target,
                        mask,
                        shape,
                        n,
                        c,
                        soft,
                    };
                    for (s, o) in out.iter_mut().enumerate() {
                        let p = *o;
                        *o = match voxels.slope(start + s, p) {
                            Some(g) => (a + b * g + cc * p) * p * (T::ONE - p),
                            None => T::ZERO,
                        };
                    }
                };
                #[cfg(feature = "std")]
                if let Some(e) = crate::parallel::pick(self.exec(), grad.len()) {
                    let coef = (0..shape.pairs()?)
                        .map(coef)
                        .collect::<Result<std::vec::Vec<_>>>()?;
                    let parts = row_chunks(grad, s_n).collect();
                    crate::parallel::for_each_mut(e, parts, |_, (pair, start, out)| {
                        chain(pair, start, out, coef[pair])
                    });
                    return Ok(());
                }
                for (pair, out) in grad.chunks_exact_mut(s_n).enumerate() {
                    chain(pair, 0, out, coef(pair)?);
                }
            }
            Activation::Softmax => {
                let c_n = shape.channels;
                let soft = self.moment() == Moment::SoftLabel;
                let block = c_n * s_n;
                // The coefficients first; then, against a label map without mask, chunks of
                // voxels of every channel (the softmax couples a voxel's channels, never two
                // voxels); otherwise one sample's block per task.
                #[cfg(feature = "std")]
                if let Some(e) = crate::parallel::pick(self.exec(), grad.len()) {
                    let coef = (0..shape.pairs()?)
                        .map(|pair| {
                            let (n, c) = (pair / c_n, pair % c_n);
                            let (k_i, k_p) =
                                self.pair_coefficients(shape, stats, value, upstream, n, c)?;
                            let (a, b, cc) = self.affine_of(k_i, k_p);
                            Ok((T::from_f64(a), T::from_f64(b), T::from_f64(cc)))
                        })
                        .collect::<Result<std::vec::Vec<(T, T, T)>>>()?;
                    if let (
                        None,
                        false,
                        Target::Labels {
                            labels,
                            ignore_index,
                        },
                    ) = (mask, soft, &target)
                    {
                        let parts = voxel_chunks(grad, c_n, s_n);
                        crate::parallel::for_each_mut(e, parts, |_, (n, k, mut rows)| {
                            let r = drive::chunk_range(k, s_n);
                            with_labels!(labels, l => T::softmax_chain_labels_slices(
                                &l[n * s_n + r.start..][..r.len()],
                                *ignore_index,
                                &coef[n * c_n..(n + 1) * c_n],
                                &mut rows,
                            ));
                        });
                        return Ok(());
                    }
                    let parts = grad.chunks_exact_mut(block).enumerate().collect();
                    crate::parallel::for_each_mut(e, parts, |_, (n, out)| {
                        let coef = &coef[n * c_n..(n + 1) * c_n];
                        // Infallible: the coefficients are already computed.
                        let _ = softmax_chain(&target, mask, shape, n, soft, out, |c| Ok(coef[c]));
                    });
                    return Ok(());
                }
                let mut cache = [(T::ZERO, T::ZERO, T::ZERO); COEF_CACHE];
                for n in 0..shape.batch {
                    let cached = c_n <= COEF_CACHE;
                    if cached {
                        for (c, slot) in cache.iter_mut().enumerate().take(c_n) {
                            let (k_i, k_p) =
                                self.pair_coefficients(shape, stats, value, upstream, n, c)?;
                            let (a, b, cc) = self.affine_of(k_i, k_p);
                            *slot = (T::from_f64(a), T::from_f64(b), T::from_f64(cc));
                        }
                    }
                    let coef = |c: usize| -> Result<(T, T, T)> {
                        if cached {
                            return Ok(cache[c]);
                        }
                        let (k_i, k_p) =
                            self.pair_coefficients(shape, stats, value, upstream, n, c)?;
                        let (a, b, cc) = self.affine_of(k_i, k_p);
                        Ok((T::from_f64(a), T::from_f64(b), T::from_f64(cc)))
                    };
                    // Label maps without a mask: the branch-free kernel (same bits).
                    if let (
                        true,
                        None,
                        false,
                        Target::Labels {
                            labels,
                            ignore_index,
                        },
                    ) = (cached, mask, soft, &target)
                    {
                        with_labels!(labels, l => T::softmax_chain_labels(
                            &l[n * s_n..(n + 1) * s_n],
                            *ignore_index,
                            &cache[..c_n],
                            &mut grad[n * block..(n + 1) * block],
                        ));
                        continue;
                    }
                    let out = &mut grad[n * block..(n + 1) * block];
                    softmax_chain(&target, mask, shape, n, soft, out, coef)?;
                }
            }
        }
        Ok(())
    }
}

/// Classes whose softmax coefficients are kept on the stack (more are recomputed per tile).
const COEF_CACHE: usize = 64;
/// Voxels per tile of the softmax passes.
const TILE: usize = 256;

/// A group's loss (after class weight and focal exponent; `None` when skipped) and
/// `d(loss)/d(score)` (class weight included).
struct GroupEval {
    loss: Option<f64>,
    dscore: f64,
    kind: Kind,
}

enum Kind {
    Class(Partials),
    Generalized { n: f64, d: f64, fill: f64 },
}

#[cold]
fn unreachable_generalized() -> (Option<f64>, Option<Partials>) {
    (None, None)
}

/// Writes `a + b·∂I/∂p + c·p` for the voxels of pair `(n, c)` that count, 0 for the others:
/// `∂I/∂p = g`, or [`portable::soft_label_slope`] for soft-label statistics (which is `g` again
/// for label-map targets, whose values are 0 or 1).
///
/// `p` and `out` hold the voxels `start..start + len` of the pair's row.
fn write_pair<T: Float>(
    input: &SoftInput<'_, T>,
    moment: Moment,
    (n, class, start): (usize, usize, usize),
    p: &[T],
    out: &mut [T],
    (a, b, cc): (f64, f64, f64),
    stream: bool,
) {
    let shape = input.shape();
    let (s_n, len) = (shape.spatial, out.len());
    let vox = n * s_n + start;
    let mask = input.mask().map(|m| &m[vox..vox + len]);
    let base = (n * shape.channels + class) * s_n + start;
    let soft = moment == Moment::SoftLabel;
    match (input.target(), mask) {
        (Target::Dense(g), None) if !soft => {
            T::affine(out, &g[base..base + len], p, a, b, cc, stream)
        }
        (Target::Dense(g), mask) => {
            let g = &g[base..base + len];
            let (a, b, cc) = (T::from_f64(a), T::from_f64(b), T::from_f64(cc));
            for (i, o) in out.iter_mut().enumerate() {
                *o = if mask.is_none_or(|m| m[i] != 0) {
                    let slope = if soft {
                        portable::soft_label_slope(p[i], g[i])
                    } else {
                        g[i]
                    };
                    a + b * slope + cc * p[i]
                } else {
                    T::ZERO
                };
            }
        }
        (
            Target::Labels {
                labels,
                ignore_index,
            },
            mask,
        ) => with_labels!(labels, l => {
            let l = &l[vox..vox + len];
            let (a, b, cc) = (T::from_f64(a), T::from_f64(b), T::from_f64(cc));
            let class = class as i64;
            for (i, o) in out.iter_mut().enumerate() {
                let v = l[i].to_i64();
                let keep = Some(v) != ignore_index && mask.is_none_or(|m| m[i] != 0);
                *o = match (keep, v == class) {
                    (false, _) => T::ZERO,
                    (true, true) => a + b + cc * p[i],
                    (true, false) => a + cc * p[i],
                };
            }
        }),
    }
}

/// The target values of one (sample, class) pair, voxel by voxel.
struct VoxelTarget<'t, 'a, T> {
    target: &'t Target<'a, T>,
    mask: Option<&'a [u8]>,
    shape: Shape,
    n: usize,
    c: usize,
    /// Soft-label statistics: `∂I/∂p` is [`portable::soft_label_slope`], not `g`.
    soft: bool,
}

impl<T: Float> VoxelTarget<'_, '_, T> {
    /// `∂I/∂p` at voxel `s` where the prediction is `p`, or `None` when the voxel does not count.
    #[inline(always)]
    fn slope(&self, s: usize, p: T) -> Option<T> {
        let g = self.at(s)?;
        Some(if self.soft {
            portable::soft_label_slope(p, g)
        } else {
            g
        })
    }

    /// `g(n, c, s)`, or `None` when voxel `s` is masked out or ignored.
    #[inline(always)]
    fn at(&self, s: usize) -> Option<T> {
        let vox = self.n * self.shape.spatial + s;
        if let Some(m) = self.mask {
            if m[vox] == 0 {
                return None;
            }
        }
        match self.target {
            Target::Dense(g) => {
                Some(g[(self.n * self.shape.channels + self.c) * self.shape.spatial + s])
            }
            Target::Labels {
                labels,
                ignore_index,
            } => with_labels!(labels, l => {
                let v = l[vox].to_i64();
                if Some(v) == *ignore_index {
                    None
                } else if v == self.c as i64 {
                    Some(T::ONE)
                } else {
                    Some(T::ZERO)
                }
            }),
        }
    }
}

/// In place over `grad`, sample `n`'s block of `C·S` values (holding `p`): `∂/∂z_c = p_c·(d_c − Σ_k p_k·d_k)` with
/// `d_c = a_c + b_c·g_c + c_c·p_c` (0 for voxels that do not count), tile by tile.
fn softmax_chain<T: Float>(
    target: &Target<'_, T>,
    mask: Option<&[u8]>,
    shape: Shape,
    n: usize,
    soft: bool,
    grad: &mut [T],
    coef: impl Fn(usize) -> Result<(T, T, T)>,
) -> Result<()> {
    let (c_n, s_n) = (shape.channels, shape.spatial);
    let mut start = 0;
    while start < s_n {
        let len = TILE.min(s_n - start);
        let mut acc = [T::ZERO; TILE];
        for c in 0..c_n {
            let (a, b, cc) = coef(c)?;
            let voxels = VoxelTarget {
                target,
                mask,
                shape,
                n,
                c,
                soft,
            };
            let row = &grad[c * s_n + start..][..len];
            for (j, (&p, acc)) in row.iter().zip(acc.iter_mut()).enumerate() {
                if let Some(g) = voxels.slope(start + j, p) {
                    *acc = *acc + p * (a + b * g + cc * p);
                }
            }
        }
        for c in 0..c_n {
            let (a, b, cc) = coef(c)?;
            let voxels = VoxelTarget {
                target,
                mask,
                shape,
                n,
                c,
                soft,
            };
            let row = &mut grad[c * s_n + start..][..len];
            for (j, (o, &acc)) in row.iter_mut().zip(acc.iter()).enumerate() {
                let p = *o;
                let d = match voxels.slope(start + j, p) {
                    Some(g) => a + b * g + cc * p,
                    None => T::ZERO,
                };
                *o = p * (d - acc);
            }
        }
        start += len;
    }
    Ok(())
}

/// Writes the probabilities of `logits` (`N·C·S`) into `out`: `σ(z)` element-wise, or the
/// softmax over the channel axis (computed stably: `e^{z_c − max_k z_k} / Σ_k e^{z_k − max}`).
///
/// Errors: a NaN or infinite logit ([`DiceError::NonFinite`] naming it), length mismatch, a
/// single-channel softmax (constant 1: use sigmoid).
pub fn probabilities<T: Float>(
    shape: Shape,
    logits: &[T],
    activation: Activation,
    out: &mut [T],
) -> Result<()> {
    probabilities_in(shape, logits, activation, out, None)
}

/// [`probabilities`], by `exec` when there is one: chunks of [`crate::CHUNK`] for the
/// sigmoid, one sample a task for the softmax (element-wise results: the same bits).
fn probabilities_in<T: Float>(
    shape: Shape,
    logits: &[T],
    activation: Activation,
    out: &mut [T],
    exec: Exec<'_>,
) -> Result<()> {
    let len = shape.elements()?;
    check_len(Operand::Logits, len, logits.len())?;
    check_len(Operand::Output, len, out.len())?;
    if activation == Activation::Softmax && shape.channels < 2 {
        return Err(invalid(
            "softmax",
            1.0,
            "softmax over a single channel is constant 1: use sigmoid",
        ));
    }
    drive::fold(
        exec,
        len,
        drive::chunks(len),
        (),
        |_, _| (),
        |k| {
            let r = drive::chunk_range(k, len);
            let z = &logits[r.clone()];
            // A branch-free pass (it vectorizes); the search for the culprit only when it fails.
            if z.iter().fold(true, |ok, z| ok & z.is_finite()) {
                return Ok(());
            }
            let i = z.iter().position(|z| !z.is_finite()).unwrap_or(0);
            Err(value_error(Operand::Logits, r.start + i, z[i]))
        },
    )?;
    match activation {
        Activation::Sigmoid => {
            let parts = out.chunks_mut(crate::CHUNK).enumerate();
            drive::each(exec, len, parts, |(k, o)| {
                T::sigmoid_all(&logits[k * crate::CHUNK..][..o.len()], o)
            });
        }
        Activation::Softmax => {
            let (c_n, s_n) = (shape.channels, shape.spatial);
            // Chunks of voxels of every channel (each voxel's softmax on its own: any cut
            // gives the same bits).
            #[cfg(feature = "std")]
            if let Some(e) = crate::parallel::pick(exec, len) {
                let parts = voxel_chunks(out, c_n, s_n);
                crate::parallel::for_each_mut(e, parts, |_, (n, k, mut rows)| {
                    let r = drive::chunk_range(k, s_n);
                    let z: std::vec::Vec<&[T]> = (0..c_n)
                        .map(|c| &logits[(n * c_n + c) * s_n + r.start..][..r.len()])
                        .collect();
                    T::softmax_slices(&z, &mut rows);
                });
                return Ok(());
            }
            T::softmax_all(shape.batch, c_n, s_n, logits, out);
        }
    }
    Ok(())
}

/// The chunks of [`crate::CHUNK`] voxels of every sample of a `[N, C, S]` buffer, as
/// `(sample, chunk, one slice per channel)`.
#[cfg(feature = "std")]
fn voxel_chunks<T>(
    buf: &mut [T],
    c_n: usize,
    s_n: usize,
) -> std::vec::Vec<(usize, usize, std::vec::Vec<&mut [T]>)> {
    let per_row = drive::chunks(s_n);
    let mut parts = std::vec::Vec::new();
    for (n, block) in buf.chunks_exact_mut(c_n * s_n).enumerate() {
        let mut cut: std::vec::Vec<std::vec::Vec<&mut [T]>> = (0..per_row)
            .map(|_| std::vec::Vec::with_capacity(c_n))
            .collect();
        for row in block.chunks_exact_mut(s_n) {
            for (k, piece) in row.chunks_mut(crate::CHUNK).enumerate() {
                cut[k].push(piece);
            }
        }
        parts.extend(cut.into_iter().enumerate().map(|(k, rows)| (n, k, rows)));
    }
    parts
}

/// The chunks of [`crate::CHUNK`] voxels of every row of `s_n` voxels of `grad`, as
/// `(row, first voxel, values)`.
#[cfg(feature = "std")]
fn row_chunks<T>(grad: &mut [T], s_n: usize) -> impl Iterator<Item = (usize, usize, &mut [T])> {
    grad.chunks_exact_mut(s_n).enumerate().flat_map(|(row, r)| {
        r.chunks_mut(crate::CHUNK)
            .enumerate()
            .map(move |(k, out)| (row, k * crate::CHUNK, out))
    })
}
