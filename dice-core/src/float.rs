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
    /// The logistic sigmoid `σ(z) = 1 / (1 + e^{−z})`, evaluated without overflow for any finite `z`.
    #[inline]
    fn sigmoid(self) -> Self {
        if self >= Self::ZERO {
            Self::ONE / (Self::ONE + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::ONE + e)
        }
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
