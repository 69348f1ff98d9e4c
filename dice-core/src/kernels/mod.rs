//! The hot loops, and the choice between them.
//!
//! Every kernel has a portable version (`portable`, safe Rust, used on every target and for
//! the unaligned heads and tails of the SIMD kernels); on x86-64, AVX2+FMA and AVX-512
//! versions in `x86`; on aarch64, NEON versions of the soft sums and the counts in `neon`.
//! Those two are the only modules of the crate with `unsafe` code.
//!
//! Which one runs: without the `std` feature, the best one the *compile-time* target features
//! allow (`-C target-cpu=native`, or `-C target-feature=+avx2,+fma`); with `std`, the best one
//! the CPU reports at run time (detected once, then cached), so a default build is as fast as a
//! native one. NEON is in every aarch64 application target's baseline, so it is the level
//! there unless `DICE_SIMD=portable` (with `std`) asks for the portable kernels.
//!
//! ## Accumulation and its error bound
//! The sums of `f32` inputs are taken in `f32` SIMD lanes for at most [`ROWS`] consecutive
//! values per lane; the lane accumulators of a block are added pairwise (at most two levels),
//! widened to `f64` and added to `f64` lane accumulators. Every term therefore goes through at
//! most `ROWS + 2` roundings in `f32`, so the relative error of every returned sum of
//! non-negative terms is at most `(ROWS + 2)·2⁻²⁴ + n/lanes·2⁻⁵³` (about 6·10⁻⁷ worst case,
//! whatever `n`), and there is no stagnation: naive sequential `f32` summation stops growing at
//! 2²⁴, this never does. Rounding errors of real data average out: on 2²⁷ random voxels the
//! Dice agreed with an exactly rounded `f64` reference to 1.3·10⁻¹¹ or better at every level
//! (`tests/exactness.rs`). Products `p·g` are formed inside a fused multiply-add, so only the
//! sum rounds.
//! `f64` inputs are accumulated in `f64` throughout.

use crate::counts::Confusion;
pub(crate) use crate::counts::Counts;

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub(crate) mod neon;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// How many values one SIMD lane adds in `f32` before its partial sum is widened to `f64`.
pub const ROWS: usize = 8;

/// Three sums over a pair of slices: `Σp·g`, `Σp` (or `Σp²`), `Σg` (or `Σg²`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    /// `Σ pᵢ·gᵢ`.
    pub pg: f64,
    /// `Σ pᵢ` or `Σ pᵢ²`.
    pub p: f64,
    /// `Σ gᵢ` or `Σ gᵢ²`.
    pub g: f64,
}

impl Sums {
    #[inline]
    pub(crate) fn add(self, o: Sums) -> Sums {
        Sums {
            pg: self.pg + o.pg,
            p: self.p + o.p,
            g: self.g + o.g,
        }
    }
}

/// The first element that failed validation (not a number in `[0, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Flat index into the prediction slice.
    Pred(usize),
    /// Flat index into the target slice.
    Target(usize),
}

impl Bad {
    #[inline]
    pub(crate) fn shift(self, by: usize) -> Bad {
        match self {
            Bad::Pred(i) => Bad::Pred(i + by),
            Bad::Target(i) => Bad::Target(i + by),
        }
    }
}

/// The kernels each element type provides. Lives in a private module, so [`crate::Float`],
/// which requires it, is sealed.
pub trait Kernels: Sized {
    /// `Σp·g, Σp, Σg` (or with squares when `squared`), checking every element is in `[0, 1]`.
    fn soft_sums(p: &[Self], g: &[Self], squared: bool) -> Result<Sums, Bad>;
    /// `outᵢ = a + b·gᵢ + c·pᵢ` (`p` only read when `c ≠ 0`; pass an empty slice otherwise),
    /// with non-temporal stores where the kernel has them when `stream` (the whole pass, of
    /// which `out` may be one chunk, writes at least [`STREAM_BYTES`]).
    fn affine(out: &mut [Self], g: &[Self], p: &[Self], a: f64, b: f64, c: f64, stream: bool);
    /// Counts of `p ≥ t`, `g ≥ t` and both, checking every element is in `[0, 1]`.
    fn threshold_counts(p: &[Self], g: &[Self], t: Self) -> Result<Counts, Bad>;
    /// `out = σ(z)` element-wise (equal lengths).
    fn sigmoid_all(z: &[Self], out: &mut [Self]);
    /// [`portable::sigmoid_chain_dense`].
    fn sigmoid_chain_dense(g: &[Self], coef: (Self, Self, Self), out: &mut [Self]);
    /// [`portable::sigmoid_chain_labels`].
    fn sigmoid_chain_labels<L: crate::Label>(
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        coef: (Self, Self, Self),
        out: &mut [Self],
    );
    /// The softmax over the channels of `z` (`[batch, channels, spatial]`, finite) into `out`.
    fn softmax_all(batch: usize, channels: usize, spatial: usize, z: &[Self], out: &mut [Self]);
    /// [`portable::softmax_slices`]: the softmax of a run of voxels, one slice per channel.
    fn softmax_slices(z: &[&[Self]], out: &mut [&mut [Self]]);
    /// [`portable::softmax_chain_labels_slices`]: the chain rule of a run of voxels.
    fn softmax_chain_labels_slices<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(Self, Self, Self)],
        rows: &mut [&mut [Self]],
    );
    /// [`portable::label_sums`]: soft sums against `[label = class]`, without a voxel mask.
    fn label_sums<L: crate::Label>(
        p: &[Self],
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        squared: bool,
    ) -> Result<(Sums, u64), Bad>;
    /// [`portable::softmax_chain_labels`]: one sample's softmax chain rule against labels.
    fn softmax_chain_labels<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(Self, Self, Self)],
        grad: &mut [Self],
    );
}

/// The instruction sets a kernel may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Safe Rust only.
    Portable,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F, BW and VL (and AVX2, FMA, POPCNT).
    Avx512,
    /// aarch64's Advanced SIMD.
    Neon,
}

/// The level the kernels use on this machine.
#[inline]
pub fn level() -> Level {
    #[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std"))]
    {
        use core::sync::atomic::{AtomicU8, Ordering};
        const LEVELS: [Level; 4] = [Level::Portable, Level::Avx2, Level::Avx512, Level::Neon];
        static CACHE: AtomicU8 = AtomicU8::new(0);
        match CACHE.load(Ordering::Relaxed) {
            0 => {
                let l = detect();
                let code = LEVELS.iter().position(|&v| v == l).unwrap_or(0);
                CACHE.store(code as u8 + 1, Ordering::Relaxed);
                l
            }
            c => LEVELS[(c as usize - 1).min(LEVELS.len() - 1)],
        }
    }
    #[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std")))]
    {
        static_level()
    }
}

/// The best level of this CPU, capped by `DICE_SIMD=avx2|portable` (tests run every kernel
/// this way): the variable can only lower what the CPU reports, never raise it.
#[cfg(all(any(target_arch = "x86_64", target_arch = "aarch64"), feature = "std"))]
fn detect() -> Level {
    extern crate std;
    let best = detect_cpu();
    match std::env::var("DICE_SIMD").as_deref() {
        Ok("portable") => Level::Portable,
        Ok("avx2") if best == Level::Avx512 => Level::Avx2,
        _ => best,
    }
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn detect_cpu() -> Level {
    extern crate std;
    if std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
        && std::is_x86_feature_detected!("popcnt")
    {
        Level::Avx512
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Portable
    }
}

/// NEON is in the baseline of every aarch64 application target (see `neon`): nothing to
/// detect, the compile-time answer is the CPU's.
#[cfg(all(target_arch = "aarch64", feature = "std"))]
fn detect_cpu() -> Level {
    static_level()
}

/// The level the compile-time target features allow.
#[allow(dead_code)]
const fn static_level() -> Level {
    if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "popcnt"
    )) {
        Level::Avx512
    } else if cfg!(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )) {
        Level::Avx2
    } else if cfg!(all(target_arch = "aarch64", target_feature = "neon")) {
        Level::Neon
    } else {
        Level::Portable
    }
}

/// Writes with non-temporal stores above this many bytes of output: below it the output stays
/// in cache for the caller, above it streaming saves the read-for-ownership traffic.
pub const STREAM_BYTES: usize = 8 << 20;

impl Kernels for f32 {
    #[inline]
    fn softmax_chain_labels<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(f32, f32, f32)],
        grad: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => {
                return x86::softmax_chain_labels_f32_avx512(t, labels, ignore, coef, grad)
            }
            x86::Isa::Avx2(t) => {
                return x86::softmax_chain_labels_f32_avx2(t, labels, ignore, coef, grad)
            }
            x86::Isa::Portable => {}
        }
        portable::softmax_chain_labels(labels, ignore, coef, grad)
    }

    #[inline]
    fn label_sums<L: crate::Label>(
        p: &[f32],
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        squared: bool,
    ) -> Result<(Sums, u64), Bad> {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => {
                return x86::label_sums_f32_avx512(t, p, labels, class, ignore, squared)
            }
            x86::Isa::Avx2(t) => {
                return x86::label_sums_f32_avx2(t, p, labels, class, ignore, squared)
            }
            x86::Isa::Portable => {}
        }
        portable::label_sums(p, labels, class, ignore, squared)
    }

    #[inline]
    fn sigmoid_all(z: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => return x86::sigmoid_f32_avx512(t, z, out),
            x86::Isa::Avx2(t) => return x86::sigmoid_f32_avx2(t, z, out),
            x86::Isa::Portable => {}
        }
        portable::sigmoid_all(z, out)
    }

    #[inline]
    fn sigmoid_chain_dense(g: &[f32], coef: (f32, f32, f32), out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => return x86::sigmoid_chain_dense_f32_avx512(t, g, coef, out),
            x86::Isa::Avx2(t) => return x86::sigmoid_chain_dense_f32_avx2(t, g, coef, out),
            x86::Isa::Portable => {}
        }
        portable::sigmoid_chain_dense(g, coef, out)
    }

    #[inline]
    fn sigmoid_chain_labels<L: crate::Label>(
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        coef: (f32, f32, f32),
        out: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => {
                return x86::sigmoid_chain_labels_f32_avx512(t, labels, class, ignore, coef, out)
            }
            x86::Isa::Avx2(t) => {
                return x86::sigmoid_chain_labels_f32_avx2(t, labels, class, ignore, coef, out)
            }
            x86::Isa::Portable => {}
        }
        portable::sigmoid_chain_labels(labels, class, ignore, coef, out)
    }

    #[inline]
    fn softmax_all(batch: usize, channels: usize, spatial: usize, z: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => {
                return x86::softmax_f32_avx512(t, batch, channels, spatial, z, out)
            }
            x86::Isa::Avx2(t) => return x86::softmax_f32_avx2(t, batch, channels, spatial, z, out),
            x86::Isa::Portable => {}
        }
        portable::softmax_all(batch, channels, spatial, z, out)
    }

    #[inline]
    fn softmax_slices(z: &[&[f32]], out: &mut [&mut [f32]]) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => return x86::softmax_slices_f32_avx512(t, z, out),
            x86::Isa::Avx2(t) => return x86::softmax_slices_f32_avx2(t, z, out),
            x86::Isa::Portable => {}
        }
        portable::softmax_slices(z, out)
    }

    #[inline]
    fn softmax_chain_labels_slices<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(f32, f32, f32)],
        rows: &mut [&mut [f32]],
    ) {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => {
                return x86::softmax_chain_labels_slices_f32_avx512(t, labels, ignore, coef, rows)
            }
            x86::Isa::Avx2(t) => {
                return x86::softmax_chain_labels_slices_f32_avx2(t, labels, ignore, coef, rows)
            }
            x86::Isa::Portable => {}
        }
        portable::softmax_chain_labels_slices(labels, ignore, coef, rows)
    }

    #[inline]
    fn soft_sums(p: &[f32], g: &[f32], squared: bool) -> Result<Sums, Bad> {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => return x86::soft_sums_f32_avx512(t, p, g, squared),
            x86::Isa::Avx2(t) => return x86::soft_sums_f32_avx2(t, p, g, squared),
            x86::Isa::Portable => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        if let Some(k) = neon::isa() {
            return neon::soft_sums_f32(k, p, g, squared);
        }
        portable::soft_sums(p, g, squared)
    }

    #[inline]
    fn affine(out: &mut [f32], g: &[f32], p: &[f32], a: f64, b: f64, c: f64, stream: bool) {
        #[cfg(target_arch = "x86_64")]
        if stream {
            match x86::isa() {
                x86::Isa::Avx512(t, _) => {
                    return x86::affine_f32_stream_avx512(t, out, g, p, a, b, c)
                }
                x86::Isa::Avx2(t) => return x86::affine_f32_stream_avx2(t, out, g, p, a, b, c),
                x86::Isa::Portable => {}
            }
        }
        // Streaming stores exist on x86 only; elsewhere the hint has no use.
        #[cfg(not(target_arch = "x86_64"))]
        let _ = stream;
        portable::affine(out, g, p, a, b, c)
    }

    #[inline]
    fn threshold_counts(p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(k, _) => return x86::threshold_counts_f32_avx512(k, p, g, t),
            x86::Isa::Avx2(k) => return x86::threshold_counts_f32_avx2(k, p, g, t),
            x86::Isa::Portable => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        if let Some(k) = neon::isa() {
            return neon::threshold_counts_f32(k, p, g, t);
        }
        portable::threshold_counts(p, g, t)
    }
}

impl Kernels for f64 {
    #[inline]
    fn softmax_chain_labels<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(f64, f64, f64)],
        grad: &mut [f64],
    ) {
        portable::softmax_chain_labels(labels, ignore, coef, grad)
    }

    #[inline]
    fn label_sums<L: crate::Label>(
        p: &[f64],
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        squared: bool,
    ) -> Result<(Sums, u64), Bad> {
        portable::label_sums(p, labels, class, ignore, squared)
    }

    /// `libm`'s `exp` is a call: nothing to vectorize, the portable loop at every level.
    #[inline]
    fn sigmoid_all(z: &[f64], out: &mut [f64]) {
        portable::sigmoid_all(z, out)
    }

    #[inline]
    fn sigmoid_chain_dense(g: &[f64], coef: (f64, f64, f64), out: &mut [f64]) {
        portable::sigmoid_chain_dense(g, coef, out)
    }

    #[inline]
    fn sigmoid_chain_labels<L: crate::Label>(
        labels: &[L],
        class: i64,
        ignore: Option<i64>,
        coef: (f64, f64, f64),
        out: &mut [f64],
    ) {
        portable::sigmoid_chain_labels(labels, class, ignore, coef, out)
    }

    #[inline]
    fn softmax_all(batch: usize, channels: usize, spatial: usize, z: &[f64], out: &mut [f64]) {
        portable::softmax_all(batch, channels, spatial, z, out)
    }

    #[inline]
    fn softmax_slices(z: &[&[f64]], out: &mut [&mut [f64]]) {
        portable::softmax_slices(z, out)
    }

    #[inline]
    fn softmax_chain_labels_slices<L: crate::Label>(
        labels: &[L],
        ignore: Option<i64>,
        coef: &[(f64, f64, f64)],
        rows: &mut [&mut [f64]],
    ) {
        portable::softmax_chain_labels_slices(labels, ignore, coef, rows)
    }

    #[inline]
    fn soft_sums(p: &[f64], g: &[f64], squared: bool) -> Result<Sums, Bad> {
        #[cfg(target_arch = "x86_64")]
        match x86::isa() {
            x86::Isa::Avx512(t, _) => return x86::soft_sums_f64_avx512(t, p, g, squared),
            x86::Isa::Avx2(t) => return x86::soft_sums_f64_avx2(t, p, g, squared),
            x86::Isa::Portable => {}
        }
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        if let Some(k) = neon::isa() {
            return neon::soft_sums_f64(k, p, g, squared);
        }
        portable::soft_sums(p, g, squared)
    }

    #[inline]
    fn affine(out: &mut [f64], g: &[f64], p: &[f64], a: f64, b: f64, c: f64, _: bool) {
        portable::affine(out, g, p, a, b, c)
    }

    #[inline]
    fn threshold_counts(p: &[f64], g: &[f64], t: f64) -> Result<Counts, Bad> {
        portable::threshold_counts(p, g, t)
    }
}

/// Per-label counts over a pair of label maps, one pass: adds to `out[l]` the true positives
/// (both maps say `l`), false positives (the prediction says `l`, the target another label) and
/// false negatives of every label `l`; voxels where either map is `ignore` are skipped, and `tn` is
/// left to the caller. Returns the number of voxels counted, or the first voxel holding a label
/// outside `0..out.len()` (and not `ignore`).
pub fn label_counts<L: crate::Label>(
    pred: &[L],
    target: &[L],
    ignore: Option<i64>,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    #[cfg(target_arch = "x86_64")]
    {
        if let (Some(p), Some(t), x86::Isa::Avx512(k, _)) =
            (L::as_bytes(pred), L::as_bytes(target), x86::isa())
        {
            if !out.is_empty() && out.len() <= x86::SIMD_MAX_LABELS {
                // An ignore label a byte cannot hold never matches a byte label.
                let ign = match ignore {
                    Some(v) if (0..=255).contains(&v) => Some(v as u8),
                    _ => None,
                };
                return x86::label_counts_u8_avx512(k, p, t, ign, out);
            }
        }
    }
    #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
    if let (Some(p), Some(t), Some(k)) = (L::as_bytes(pred), L::as_bytes(target), neon::isa()) {
        if !out.is_empty() && out.len() <= neon::SIMD_MAX_LABELS {
            let ign = match ignore {
                Some(v) if (0..=255).contains(&v) => Some(v as u8),
                _ => None,
            };
            return neon::label_counts_u8(k, p, t, ign, out);
        }
    }
    portable::label_counts(pred, target, ignore, out)
}

#[cfg(test)]
mod activation_tests {
    extern crate std;
    use super::{portable, Kernels};
    use std::vec;
    use std::vec::Vec;

    /// The label-map sums (dispatched) equal the generic masked sums bit for bit, with and
    /// without an ignore label, squared or not, on lengths with block and row tails; and name
    /// the first invalid prediction.
    #[test]
    fn label_sums_equal_generic_sums() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [1usize, 15, 16, 17, 127, 128, 129, 1000, 4099] {
            let p: Vec<f32> = (0..n)
                .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32)
                .collect();
            let l8: Vec<u8> = (0..n).map(|_| (next() % 4) as u8).collect();
            let l64: Vec<i64> = l8.iter().map(|&v| v as i64).collect();
            for (class, ignore, squared) in [
                (1i64, None, false),
                (2, Some(3i64), true),
                (0, Some(0), false),
            ] {
                let want = portable::soft_sums_where(
                    &p,
                    squared,
                    |i| if l8[i] as i64 == class { 1.0 } else { 0.0 },
                    |i| Some(l8[i] as i64) != ignore,
                )
                .unwrap();
                let a = f32::label_sums(&p, &l8, class, ignore, squared).unwrap();
                let b = f32::label_sums(&p, &l64, class, ignore, squared).unwrap();
                for got in [a, b] {
                    assert_eq!(got.1, want.1);
                    assert_eq!(
                        [got.0.pg.to_bits(), got.0.p.to_bits(), got.0.g.to_bits()],
                        [want.0.pg.to_bits(), want.0.p.to_bits(), want.0.g.to_bits()]
                    );
                }
            }
            if n > 20 {
                let mut bad = p.clone();
                bad[n - 3] = f32::NAN;
                bad[n - 1] = 2.0;
                assert_eq!(
                    f32::label_sums(&bad, &l8, 1, None, false).unwrap_err(),
                    super::Bad::Pred(n - 3)
                );
            }
        }
    }

    /// The dispatched (AVX-512/AVX2) activations equal the portable loops bit for bit, on
    /// shapes with tile tails and logits spanning the range where the exponential underflows.
    #[test]
    fn dispatched_activations_equal_portable() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for (batch, channels, spatial) in [(1, 2, 1), (2, 3, 257), (1, 5, 1000), (3, 4, 17)] {
            let n = batch * channels * spatial;
            let z: Vec<f32> = (0..n).map(|_| (next() - 0.5) * 220.0).collect();
            let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
            f32::softmax_all(batch, channels, spatial, &z, &mut a);
            portable::softmax_all(batch, channels, spatial, &z, &mut b);
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            f32::sigmoid_all(&z, &mut a);
            portable::sigmoid_all(&z, &mut b);
            assert_eq!(
                a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
