//! The element types: a small sealed trait over `f32` and `f64` (as `glam` and `half` do), and
//! a sealed trait over the integer label types.
//!
//! Generic code is monomorphised per type, so `f32` inputs run `f32` SIMD kernels and `f64`
//! inputs `f64` kernels, with no run-time cost for the genericity.

use core::fmt::Debug;
use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::kernels::Kernels;

/// A floating-point element type: `f32` or `f64`. Sealed: no other type can implement it.
///
/// Whatever the element type, every sum the crate returns is an `f64`, accumulated so that it
/// never stagnates (see [`crate::stats`] for the error bound).
pub trait Float:
    Kernels
    + Copy
    + Default
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Send
    + Sync
    + 'static
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// `"f32"` or `"f64"`.
    const NAME: &'static str;
    /// Widens (exactly) to `f64`.
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to this type (round to nearest).
    fn from_f64(v: f64) -> Self;
    /// `true` unless NaN or ±∞.
    fn is_finite(self) -> bool;
    /// `eˣ` (from `libm`, so also without `std`).
    fn exp(self) -> Self;
    /// `eˣ` for `x ≤ 0`, the only arguments softmax (`z − max z`) and the sigmoid (`−|z|`)
    /// need: `libm`'s `exp` for `f64`; for `f32` a branch-free polynomial that loops vectorize
    /// ([`exp_nonpositive_f32`], within 2 ulp of the correctly rounded value).
    fn exp_nonpositive(self) -> Self;
    /// The logistic sigmoid `σ(z) = 1 / (1 + e^{−z})`, evaluated without overflow for any finite `z`
    /// (`e^{−|z|}` in both halves).
    #[inline]
    fn sigmoid(self) -> Self {
        let e = (if self >= Self::ZERO { -self } else { self }).exp_nonpositive();
        if self >= Self::ZERO {
            Self::ONE / (Self::ONE + e)
        } else {
            e / (Self::ONE + e)
        }
    }
}

/// `eˣ` in `f32` for `x ≤ 0` without a call or a branch, so that loops over it vectorize:
/// Cephes' `expf` (Cody–Waite reduction `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, its degree-7
/// polynomial for `eʳ`, then `2ⁿ` through the exponent bits). At most 2 ulp from the correctly
/// rounded value on `[−87.33, 0]` (checked against `f64` exp over every 61st `f32` there, test
/// `exp_nonpositive_f32_error`); `0` below `−87.33` (where `eˣ` leaves the normal range); NaN
/// stays NaN.
#[inline(always)]
pub fn exp_nonpositive_f32(x: f32) -> f32 {
    const LOG2E: f32 = core::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and removing 1.5·2²³ rounds to the nearest integer (|t| < 2²²).
    const ROUND: f32 = 12_582_912.0;
    const LOWEST: f32 = -87.336_54;
    let xc = if x < LOWEST { LOWEST } else { x };
    let n = (xc * LOG2E + ROUND) - ROUND;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let z = r * r;
    let p = (((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 1.666_666_5e-1)
        * r
        + 0.5)
        * z
        + r
        + 1.0;
    // 2ⁿ without a float-to-integer conversion (whose saturating semantics do not
    // vectorize): adding 2²³ + 127 puts the biased exponent n + 127 (in 1..=127 here) in the
    // low mantissa bits, and the shift moves it into the exponent field.
    let scale = f32::from_bits((n + 8_388_735.0).to_bits() << 23);
    let v = p * scale;
    if x < LOWEST {
        0.0
    } else {
        v
    }
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        libm::expf(self)
    }
    #[inline(always)]
    fn exp_nonpositive(self) -> Self {
        exp_nonpositive_f32(self)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        libm::exp(self)
    }
    #[inline(always)]
    fn exp_nonpositive(self) -> Self {
        libm::exp(self)
    }
}

mod sealed {
    pub trait SealedLabel {}
    impl SealedLabel for u8 {}
    impl SealedLabel for u16 {}
    impl SealedLabel for u32 {}
    impl SealedLabel for i32 {}
    impl SealedLabel for i64 {}
}

/// An integer label type of a label map: `u8`, `u16`, `u32`, `i32` or `i64`. Sealed.
pub trait Label: sealed::SealedLabel + Copy + Eq + Debug + Send + Sync + 'static {
    /// `"u8"`, `"u16"`, ….
    const NAME: &'static str;
    /// The label as an `i64` (exact for every implementing type).
    fn to_i64(self) -> i64;
    /// The slice as bytes when the label type is `u8` (lets the byte kernels run).
    #[doc(hidden)]
    #[inline(always)]
    fn as_bytes(_s: &[Self]) -> Option<&[u8]> {
        None
    }
}

impl Label for u8 {
    const NAME: &'static str = "u8";
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
    #[inline(always)]
    fn as_bytes(s: &[u8]) -> Option<&[u8]> {
        Some(s)
    }
}

macro_rules! label_impl {
    ($($t:ty),*) => {$(
        impl Label for $t {
            const NAME: &'static str = stringify!($t);
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
        }
    )*};
}
label_impl!(u16, u32, i32, i64);

#[cfg(test)]
mod tests {
    use super::exp_nonpositive_f32;

    /// Every 61st `f32` of `[−87.33, 0]` (about 18 million values): within 2 ulp of `f64` exp
    /// rounded to `f32`; below the range 0; NaN stays NaN.
    #[test]
    fn exp_nonpositive_f32_error() {
        let (lo, hi) = ((-87.336_54f32).to_bits(), 0x8000_0000u32);
        let mut worst = 0u32;
        let mut bits = hi;
        while bits <= lo {
            let x = f32::from_bits(bits);
            let want = libm::exp(x as f64) as f32;
            let got = exp_nonpositive_f32(x);
            let ulps = want.to_bits().abs_diff(got.to_bits());
            assert!(
                ulps <= 2,
                "exp({x:e}) = {got:e}, want {want:e} ({ulps} ulp)"
            );
            worst = worst.max(ulps);
            bits += 61;
        }
        assert!(worst >= 1, "the sweep compared nothing");
        assert_eq!(exp_nonpositive_f32(0.0), 1.0);
        assert_eq!(exp_nonpositive_f32(-0.0), 1.0);
        assert_eq!(exp_nonpositive_f32(-100.0), 0.0);
        assert_eq!(exp_nonpositive_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive_f32(f32::NAN).is_nan());
    }
}
