//! Soft scores as small pure functions of the statistics, each with its partial derivatives.
//!
//! Notation: `I = Σp·g` (intersection), `P = Σp` (or `Σp²`), `G = Σg` (or `Σg²`), `s_nr` and
//! `s_dr` the numerator and denominator smoothing. Soft `FP = P − I`, `FN = G − I`.
//!
//! Every function returns `None` exactly when its denominator is zero (which, with valid
//! inputs, happens only when `p` and `g` are both identically zero and `s_dr = 0`): the caller
//! decides what an empty group means (see [`crate::EmptyValue`]) instead of receiving a NaN.
//!
//! ## Where smoothing belongs
//! Smoothing exists to keep a *loss* and its gradient defined on empty or tiny structures. It
//! changes the value: with `s_nr = s_dr = 1`, a 10-voxel lesion predicted with 5 voxels right
//! and 5 wrong has Dice `(10 + 1)/(20 + 1) = 0.524` instead of `0.5`. A *reported* score should
//! be the hard Dice of [`crate::hard`], with no smoothing and an explicit empty policy.
//!
//! ## The peers' parameters in these terms
//! | peer | their call | here |
//! | --- | --- | --- |
//! | MONAI `DiceLoss` | `smooth_nr`, `smooth_dr` (default `1e-5`) | same names, same meaning, same defaults |
//! | MONAI `DiceLoss(jaccard=True)` | `(2I + s_nr)/(2(P + G − I) + s_dr)` | [`jaccard`], same meaning |
//! | Keras 3 `Dice` | `1 − 2I/(P + G + 1e-7)`: smoothing in the denominator only | `s_nr = 0`, `s_dr = 1e-7` |
//! | nnU-Net `SoftDiceLoss` | `(2I + s)/max(2I + FP + FN + s, 1e-8)`, `s = 1e-5` in the trainer, sums in `float32` | `s_nr = s_dr = 1e-5` (the clip only matters for `s = 0`, where [`crate::EmptyValue`] decides); nnU-Net's loss is `−score`, ours `1 − score` |
//! | smp `DiceLoss(smooth=s)` | Tversky(½, ½): `(I + s)/(I + ½FP + ½FN + s) = (2I + 2s)/(P + G + 2s)`, denominator clamped at `eps` | `s_nr = s_dr = 2s` (smp's smoothing counts twice); smp sums over the batch: `batch = true` |
//! | smp `TverskyLoss(alpha, beta, gamma)` | `(I + s)/(I + αFP + βFN + s)`, then `mean(1 − T)^γ` | [`tversky`] with `s_nr = s_dr = s`; our `γ` applies per group, before the mean (the same for one group) |
//!
//! smp ≥ 0.5 computes `I` as `(P + G − Σ|p − g|)/2`, which equals `Σp·g` for binary targets
//! only; MONAI ≥ 1.4 does the same with `soft_label=True`. Both are [`crate::SoftLoss::soft_label`]
//! ([`crate::Moment::SoftLabel`] statistics), checked against MONAI in `tests/golden_compound.rs`. Every row is checked against the peer's own output in `tests/golden.rs`.

/// The partial derivatives of a score with respect to `I`, `P` and `G`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Partials {
    /// `∂score/∂I`.
    pub intersection: f64,
    /// `∂score/∂P`.
    pub pred: f64,
    /// `∂score/∂G`.
    pub target: f64,
}

/// `n/d`, `None` when `d = 0`.
#[inline]
fn ratio(n: f64, d: f64) -> Option<f64> {
    if d == 0.0 {
        None
    } else {
        Some(n / d)
    }
}

/// Partials of `n/d` given the partials of `n` and `d` with respect to `(I, P, G)`:
/// `∂(n/d) = (∂n·d − n·∂d)/d²`.
#[inline]
fn ratio_partials(n: f64, d: f64, dn: [f64; 3], dd: [f64; 3]) -> Option<Partials> {
    if d == 0.0 {
        return None;
    }
    let d2 = d * d;
    let f = |k: usize| (dn[k] * d - n * dd[k]) / d2;
    Some(Partials {
        intersection: f(0),
        pred: f(1),
        target: f(2),
    })
}

/// Soft Dice (Sørensen–Dice) coefficient `(2I + s_nr) / (P + G + s_dr)`.
///
/// In `[0, 1]` for `s_nr ≤ s_dr` and valid statistics; `None` when `P + G + s_dr = 0`.
/// With binary `p`, `g` and no smoothing it is the hard Dice `2TP/(2TP + FP + FN)`.
pub fn dice(i: f64, p: f64, g: f64, smooth_nr: f64, smooth_dr: f64) -> Option<f64> {
    ratio(2.0 * i + smooth_nr, p + g + smooth_dr)
}

/// Partials of [`dice`]: `∂/∂I = 2/D`, `∂/∂P = ∂/∂G = −N/D²` with `N = 2I + s_nr`,
/// `D = P + G + s_dr`.
pub fn dice_partials(i: f64, p: f64, g: f64, smooth_nr: f64, smooth_dr: f64) -> Option<Partials> {
    ratio_partials(
        2.0 * i + smooth_nr,
        p + g + smooth_dr,
        [2.0, 0.0, 0.0],
        [0.0, 1.0, 1.0],
    )
}

/// Soft Jaccard index (IoU) in MONAI's form `(2I + s_nr) / (2(P + G − I) + s_dr)`.
///
/// Without smoothing this is `I/(P + G − I)`, the intersection over the union. The factor 2
/// keeps MONAI's meaning of `smooth_nr`/`smooth_dr` (`DiceLoss(jaccard=True)`). `None` when the
/// denominator is zero.
pub fn jaccard(i: f64, p: f64, g: f64, smooth_nr: f64, smooth_dr: f64) -> Option<f64> {
    ratio(2.0 * i + smooth_nr, 2.0 * (p + g - i) + smooth_dr)
}

/// Partials of [`jaccard`]: `∂/∂I = (2D + 2N)/D²`, `∂/∂P = ∂/∂G = −2N/D²`.
pub fn jaccard_partials(
    i: f64,
    p: f64,
    g: f64,
    smooth_nr: f64,
    smooth_dr: f64,
) -> Option<Partials> {
    ratio_partials(
        2.0 * i + smooth_nr,
        2.0 * (p + g - i) + smooth_dr,
        [2.0, 0.0, 0.0],
        [-2.0, 2.0, 2.0],
    )
}

/// Tversky index `(I + s_nr) / (I + α·FP + β·FN + s_dr)` with `FP = P − I`, `FN = G − I`.
///
/// `α = β = 0.5` gives Dice (with halved smoothing), `α = β = 1` gives IoU. `α` weighs false
/// positives, `β` false negatives (Salehi et al. 2017; MONAI and smp use the same roles).
/// Requires `α, β ≥ 0` and `α + β > 0` (checked by [`crate::SoftLoss::validate`]). `None` when
/// the denominator is zero.
pub fn tversky(
    i: f64,
    p: f64,
    g: f64,
    alpha: f64,
    beta: f64,
    smooth_nr: f64,
    smooth_dr: f64,
) -> Option<f64> {
    ratio(
        i + smooth_nr,
        i + alpha * (p - i) + beta * (g - i) + smooth_dr,
    )
}

/// Partials of [`tversky`]: with `N = I + s_nr` and `D = (1 − α − β)I + αP + βG + s_dr`,
/// `∂/∂I = (D − (1 − α − β)N)/D²`, `∂/∂P = −αN/D²`, `∂/∂G = −βN/D²`.
pub fn tversky_partials(
    i: f64,
    p: f64,
    g: f64,
    alpha: f64,
    beta: f64,
    smooth_nr: f64,
    smooth_dr: f64,
) -> Option<Partials> {
    ratio_partials(
        i + smooth_nr,
        i + alpha * (p - i) + beta * (g - i) + smooth_dr,
        [1.0, 0.0, 0.0],
        [1.0 - alpha - beta, alpha, beta],
    )
}

/// How generalized Dice weighs a class from its target volume `G_c` (MONAI's `w_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Weighting {
    /// `w_c = 1/G_c²` (Sudre et al. 2017; MONAI's default `"square"`).
    #[default]
    Square,
    /// `w_c = 1/G_c` (`"simple"`).
    Simple,
    /// `w_c = 1` (`"uniform"`).
    Uniform,
}

/// The weight of a present class, `1/G²`, `1/G` or `1`; `None` for an absent class (`G = 0`)
/// under `Square` and `Simple`.
pub fn class_weight(target: f64, weighting: Weighting) -> Option<f64> {
    match weighting {
        Weighting::Uniform => Some(1.0),
        _ if target == 0.0 => None,
        Weighting::Simple => Some(1.0 / target),
        Weighting::Square => Some(1.0 / (target * target)),
    }
}

/// Generalized Dice weights of one group of classes, written into `out`, with this crate's
/// policy for classes absent from the target (`G_c = 0`):
///
/// * an absent class gets the largest weight of the present classes (as MONAI does), so its
///   false-positive mass still counts, at the scale of the rarest present class;
/// * when *no* class is present, every class gets weight `1`, so false positives on an empty
///   target still give a loss and a gradient. MONAI gives every class weight 0 there, so the
///   loss is `1 − s_nr/s_dr = 0` whatever the prediction and the network is never told to
///   clear its false positives; Sudre's `1/(G + ε)²` gives the absent class a weight of `ε⁻²`,
///   which swamps every other class.
///
/// `targets` and `out` have one entry per class of the group.
pub fn generalized_weights(targets: &[f64], weighting: Weighting, out: &mut [f64]) {
    let mut max_present: Option<f64> = None;
    for (w, &g) in out.iter_mut().zip(targets) {
        match class_weight(g, weighting) {
            Some(v) => {
                *w = v;
                max_present = Some(max_present.map_or(v, |m: f64| m.max(v)));
            }
            None => *w = f64::NAN, // filled below
        }
    }
    let fill = max_present.unwrap_or(1.0);
    for w in out.iter_mut() {
        if w.is_nan() {
            *w = fill;
        }
    }
}

/// Generalized Dice `(2·Σ_c w_c·I_c + s_nr) / (Σ_c w_c·(P_c + G_c) + s_dr)` over the classes
/// of one group, from `(w_c, I_c, P_c, G_c)` tuples. `None` when the denominator is zero.
pub fn generalized_dice(
    classes: impl Iterator<Item = (f64, f64, f64, f64)>,
    smooth_nr: f64,
    smooth_dr: f64,
) -> Option<f64> {
    let (n, d) = generalized_terms(classes, smooth_nr, smooth_dr);
    ratio(n, d)
}

/// Numerator and denominator of [`generalized_dice`].
pub fn generalized_terms(
    classes: impl Iterator<Item = (f64, f64, f64, f64)>,
    smooth_nr: f64,
    smooth_dr: f64,
) -> (f64, f64) {
    let (mut n, mut d) = (smooth_nr, smooth_dr);
    for (w, i, p, g) in classes {
        n += 2.0 * w * i;
        d += w * (p + g);
    }
    (n, d)
}

/// Partials of [`generalized_dice`] with respect to one class's `I_c`, `P_c`, `G_c`, given the
/// group's numerator `N` and denominator `D` and the class weight `w_c` (weights are constants:
/// they depend on the target only): `∂/∂I_c = 2w_c/D`, `∂/∂P_c = ∂/∂G_c = −w_c·N/D²`.
pub fn generalized_partials(n: f64, d: f64, w: f64) -> Option<Partials> {
    ratio_partials(n, d, [2.0 * w, 0.0, 0.0], [0.0, w, w])
}

/// The loss `1 − score`; derivative `−1`.
pub fn one_minus(score: f64) -> f64 {
    1.0 - score
}

/// The log loss `−ln(score)` (smp's `log_loss`); derivative `−1/score`. `None` for a score
/// that is not positive.
pub fn neg_ln(score: f64) -> Option<f64> {
    if score > 0.0 {
        Some(-libm::log(score))
    } else {
        None
    }
}

/// The focal form `max(ℓ, 0)^γ` of a loss value `ℓ` (focal Tversky, Abraham & Khan 2019, with
/// their `1/γ` written here as `γ`); `γ = 1` leaves `ℓ` unchanged. `ℓ` is clamped at 0 because
/// a score above 1 (possible when `s_nr > s_dr`) would otherwise give a negative base.
pub fn focal(loss: f64, gamma: f64) -> f64 {
    if gamma == 1.0 {
        loss
    } else {
        libm::pow(loss.max(0.0), gamma)
    }
}

/// `d focal(ℓ)/dℓ = γ·max(ℓ, 0)^(γ−1)`, taken as 0 where `ℓ ≤ 0` (for `γ < 1` the derivative
/// is unbounded as `ℓ → 0`; at the optimum itself, 0 is the subgradient used).
pub fn focal_derivative(loss: f64, gamma: f64) -> f64 {
    if gamma == 1.0 {
        1.0
    } else if loss <= 0.0 {
        0.0
    } else {
        gamma * libm::pow(loss, gamma - 1.0)
    }
}
