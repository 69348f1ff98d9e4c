//! NEON (Advanced SIMD) kernels for aarch64: the soft sums in `f32` and `f64`, the threshold
//! counts in `f32` and the per-label counts of `u8` label maps. The other kernels are the
//! portable loops, which the compiler vectorizes with NEON on its own (NEON is part of every
//! aarch64 target's baseline, so nothing needs to be enabled for them).
//!
//! Soundness, as in `x86`:
//! 1. *Features.* This module is compiled only where `target_feature = "neon"` holds at compile
//!    time, which every aarch64 application target (Linux, Android, macOS, Windows) has:
//!    Advanced SIMD is mandatory in Armv8-A's application profile. The instructions are
//!    therefore always there; no run-time detection is needed, and the [`Neon`] token only
//!    carries the run-time choice of [`super::level`] (`DICE_SIMD=portable` turns it off).
//! 2. *Bounds.* Every pointer access is at `ptr.add(i + k)` with `i + k + width ≤ len` checked
//!    by the loop condition against slices whose lengths were made equal on entry. NEON loads
//!    need no alignment, and the kernels do not peel to one: their grouping of partial sums
//!    depends on the offsets within the slices only, not on the buffers' addresses.
//!
//! Accumulation and validation are those of the x86 kernels (the module docs of `kernels`):
//! four `f32x4` accumulators per sum (16 lanes, as the portable kernel), [`ROWS`] rows per
//! block, the four added pairwise (two levels), widened to `f64` once per block. Validation
//! compares the bits as unsigned integers against those of 1.0 (exactly `+0.0 ..= 1.0` are
//! not above; `f64` compares a running minimum and maximum instead), once per
//! [`CHECK_BLOCKS`] blocks after they are summed; a run that fails is searched by the portable
//! code, which names the first bad element (or finds only a `−0.0`, a valid zero).

#![allow(unsafe_code)]

use core::arch::aarch64::*;

use super::{portable, Bad, Counts, Sums, ROWS};
use crate::counts::Confusion;

/// The run-time choice of the NEON kernels (see point 1 of the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

/// `Some` when the kernels run at the NEON level.
#[inline]
pub fn isa() -> Option<Neon> {
    match super::level() {
        super::Level::Neon => Some(Neon(())),
        _ => None,
    }
}

/// Largest label count the byte-label kernel handles (more labels take the portable pass).
pub const SIMD_MAX_LABELS: usize = 16;

const ONE_F32: u32 = 0x3F80_0000;

/// Blocks validated together: the running maximum is tested once per `CHECK_BLOCKS` blocks
/// (4,096 `f32`, 16 KB of each input, which a failing check searches again from L1). Testing
/// every block, as the x86 kernels do, lets LLVM sink the block's sums below the test (they
/// are dead on the error path), where they run from the whole block's loads spilled to the
/// stack; a loop of blocks between two tests cannot be sunk.
const CHECK_BLOCKS: usize = 32;

// ---------------------------------------------------------------------------------------------
// Soft sums, f32
// ---------------------------------------------------------------------------------------------

/// NEON `Σp·g, Σp, Σg` (or squares) over `f32`.
pub fn soft_sums_f32(_: Neon, p: &[f32], g: &[f32], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: NEON is a compile-time feature (point 1); slices have equal length.
    unsafe {
        if squared {
            sums_f32::<true>(p, g)
        } else {
            sums_f32::<false>(p, g)
        }
    }
}

/// `total + widen(acc)`: the four `f32` lanes of a block's sum, added to two `f64` lanes.
#[inline(always)]
unsafe fn widen_add(acc: float32x4_t, total: float64x2_t) -> float64x2_t {
    let lo = vcvt_f64_f32(vget_low_f32(acc));
    let hi = vcvt_high_f64_f32(acc);
    vaddq_f64(total, vaddq_f64(lo, hi))
}

/// The four accumulators of a block added pairwise: `(a₀ + a₁) + (a₂ + a₃)`.
#[inline(always)]
unsafe fn pairwise(a: [float32x4_t; 4]) -> float32x4_t {
    vaddq_f32(vaddq_f32(a[0], a[1]), vaddq_f32(a[2], a[3]))
}

#[inline(always)]
unsafe fn bits_max(a: float32x4x4_t, b: float32x4x4_t) -> uint32x4_t {
    let u = |v: float32x4_t| vreinterpretq_u32_f32(v);
    let ma = vmaxq_u32(vmaxq_u32(u(a.0), u(a.1)), vmaxq_u32(u(a.2), u(a.3)));
    let mb = vmaxq_u32(vmaxq_u32(u(b.0), u(b.1)), vmaxq_u32(u(b.2), u(b.3)));
    vmaxq_u32(ma, mb)
}

#[inline(always)]
unsafe fn sums_f32<const SQ: bool>(p: &[f32], g: &[f32]) -> Result<Sums, Bad> {
    const W: usize = 16;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let zero = vdupq_n_f64(0.0);
    let (mut tpg, mut tp, mut tg) = (zero, zero, zero);
    let mut i = 0;
    while i + BLOCK <= n {
        let (start, end) = (i, i + BLOCK * ((n - i) / BLOCK).min(CHECK_BLOCKS));
        let mut mx = vdupq_n_u32(0);
        while i < end {
            let z = vdupq_n_f32(0.0);
            let (mut apg, mut ap, mut ag) = ([z; 4], [z; 4], [z; 4]);
            for r in 0..ROWS {
                let o = i + r * W;
                // SAFETY: o + 16 ≤ i + BLOCK ≤ end ≤ n (point 2).
                let x = vld1q_f32_x4(pp.add(o));
                let y = vld1q_f32_x4(gp.add(o));
                let (xs, ys) = ([x.0, x.1, x.2, x.3], [y.0, y.1, y.2, y.3]);
                for k in 0..4 {
                    apg[k] = vfmaq_f32(apg[k], xs[k], ys[k]);
                    if SQ {
                        ap[k] = vfmaq_f32(ap[k], xs[k], xs[k]);
                        ag[k] = vfmaq_f32(ag[k], ys[k], ys[k]);
                    } else {
                        ap[k] = vaddq_f32(ap[k], xs[k]);
                        ag[k] = vaddq_f32(ag[k], ys[k]);
                    }
                }
                mx = vmaxq_u32(mx, bits_max(x, y));
            }
            tpg = widen_add(pairwise(apg), tpg);
            tp = widen_add(pairwise(ap), tp);
            tg = widen_add(pairwise(ag), tg);
            i += BLOCK;
        }
        if vmaxvq_u32(mx) > ONE_F32 {
            if let Some(bad) = portable::find_bad(&p[start..end], &g[start..end]) {
                return Err(bad.shift(start));
            }
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    let body = Sums {
        pg: vaddvq_f64(tpg),
        p: vaddvq_f64(tp),
        g: vaddvq_f64(tg),
    };
    Ok(body.add(tail))
}

// ---------------------------------------------------------------------------------------------
// Soft sums, f64
// ---------------------------------------------------------------------------------------------

/// NEON `Σp·g, Σp, Σg` (or squares) over `f64`, accumulated in `f64`.
pub fn soft_sums_f64(_: Neon, p: &[f64], g: &[f64], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: NEON is a compile-time feature (point 1); slices have equal length.
    unsafe {
        if squared {
            sums_f64::<true>(p, g)
        } else {
            sums_f64::<false>(p, g)
        }
    }
}

#[inline(always)]
unsafe fn sums_f64<const SQ: bool>(p: &[f64], g: &[f64]) -> Result<Sums, Bad> {
    const W: usize = 8;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let z = vdupq_n_f64(0.0);
    let one = vdupq_n_f64(1.0);
    let (mut apg, mut ap, mut ag) = ([z; 4], [z; 4], [z; 4]);
    let mut i = 0;
    while i + BLOCK <= n {
        let (start, end) = (i, i + BLOCK * ((n - i) / BLOCK).min(CHECK_BLOCKS));
        // FMIN/FMAX return NaN when either operand is NaN, so a NaN survives to the test.
        let (mut lo, mut hi) = (one, z);
        while i < end {
            for r in 0..ROWS {
                let o = i + r * W;
                // SAFETY: o + 8 ≤ i + BLOCK ≤ end ≤ n (point 2).
                let x = vld1q_f64_x4(pp.add(o));
                let y = vld1q_f64_x4(gp.add(o));
                let (xs, ys) = ([x.0, x.1, x.2, x.3], [y.0, y.1, y.2, y.3]);
                for k in 0..4 {
                    apg[k] = vfmaq_f64(apg[k], xs[k], ys[k]);
                    if SQ {
                        ap[k] = vfmaq_f64(ap[k], xs[k], xs[k]);
                        ag[k] = vfmaq_f64(ag[k], ys[k], ys[k]);
                    } else {
                        ap[k] = vaddq_f64(ap[k], xs[k]);
                        ag[k] = vaddq_f64(ag[k], ys[k]);
                    }
                }
                let mn = vminq_f64(
                    vminq_f64(vminq_f64(x.0, x.1), vminq_f64(x.2, x.3)),
                    vminq_f64(vminq_f64(y.0, y.1), vminq_f64(y.2, y.3)),
                );
                let mx = vmaxq_f64(
                    vmaxq_f64(vmaxq_f64(x.0, x.1), vmaxq_f64(x.2, x.3)),
                    vmaxq_f64(vmaxq_f64(y.0, y.1), vmaxq_f64(y.2, y.3)),
                );
                lo = vminq_f64(lo, mn);
                hi = vmaxq_f64(hi, mx);
            }
            i += BLOCK;
        }
        // Every lane 0 ≤ lo and hi ≤ 1 (both false for NaN).
        let ok = vandq_u64(vcgeq_f64(lo, z), vcleq_f64(hi, one));
        if vminvq_u32(vreinterpretq_u32_u64(ok)) != u32::MAX {
            if let Some(bad) = portable::find_bad(&p[start..end], &g[start..end]) {
                return Err(bad.shift(start));
            }
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    let sum =
        |a: [float64x2_t; 4]| vaddvq_f64(vaddq_f64(vaddq_f64(a[0], a[1]), vaddq_f64(a[2], a[3])));
    let body = Sums {
        pg: sum(apg),
        p: sum(ap),
        g: sum(ag),
    };
    Ok(body.add(tail))
}

// ---------------------------------------------------------------------------------------------
// Threshold counts, f32
// ---------------------------------------------------------------------------------------------

/// NEON counts of `p ≥ t`, `g ≥ t` and both, validating every element.
pub fn threshold_counts_f32(_: Neon, p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    let n = p.len().min(g.len());
    // SAFETY: NEON is a compile-time feature (point 1); slices cut to equal length.
    unsafe { counts_f32(&p[..n], &g[..n], t) }
}

#[inline(always)]
unsafe fn counts_f32(p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    const W: usize = 16;
    const BLOCK: usize = W * ROWS;
    // Each u32 lane gains at most one count per 16 elements: 2²⁷ elements stay far below 2³².
    const FLUSH: usize = BLOCK << 20;
    let n = p.len();
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let vt = vdupq_n_f32(t);
    let mut total = Counts::default();
    let mut i = 0;
    let reduce = |a: [uint32x4_t; 4]| -> u64 {
        // SAFETY: NEON is a compile-time feature (point 1).
        a.iter().map(|&v| unsafe { vaddlvq_u32(v) }).sum()
    };
    while i + BLOCK <= n {
        let chunk_end = (i + FLUSH).min(n);
        let z = vdupq_n_u32(0);
        let (mut cb, mut cp, mut cg) = ([z; 4], [z; 4], [z; 4]);
        while i + BLOCK <= chunk_end {
            let (start, end) = (i, i + BLOCK * ((chunk_end - i) / BLOCK).min(CHECK_BLOCKS));
            let mut mx = z;
            while i < end {
                for r in 0..ROWS {
                    let o = i + r * W;
                    // SAFETY: o + 16 ≤ i + BLOCK ≤ end ≤ n (point 2).
                    let x = vld1q_f32_x4(pp.add(o));
                    let y = vld1q_f32_x4(gp.add(o));
                    let (xs, ys) = ([x.0, x.1, x.2, x.3], [y.0, y.1, y.2, y.3]);
                    for k in 0..4 {
                        // Compares give all ones (−1) in the lanes that hold: subtracting
                        // counts them.
                        let kx = vcgeq_f32(xs[k], vt);
                        let ky = vcgeq_f32(ys[k], vt);
                        cp[k] = vsubq_u32(cp[k], kx);
                        cg[k] = vsubq_u32(cg[k], ky);
                        cb[k] = vsubq_u32(cb[k], vandq_u32(kx, ky));
                    }
                    mx = vmaxq_u32(mx, bits_max(x, y));
                }
                i += BLOCK;
            }
            if vmaxvq_u32(mx) > ONE_F32 {
                if let Some(bad) = portable::find_bad(&p[start..end], &g[start..end]) {
                    return Err(bad.shift(start));
                }
            }
        }
        total = total.add(Counts {
            both: reduce(cb),
            pred: reduce(cp),
            target: reduce(cg),
        });
    }
    let tail = portable::threshold_counts(&p[i..], &g[i..], t).map_err(|b| b.shift(i))?;
    Ok(total.add(tail))
}

// ---------------------------------------------------------------------------------------------
// Per-label counts over u8 label maps
// ---------------------------------------------------------------------------------------------

/// NEON per-label counts over two `u8` label maps with at most [`SIMD_MAX_LABELS`] labels.
pub fn label_counts_u8(
    _: Neon,
    pred: &[u8],
    target: &[u8],
    ignore: Option<u8>,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    let n = pred.len().min(target.len());
    if out.len() > SIMD_MAX_LABELS || out.is_empty() {
        return portable::label_counts(&pred[..n], &target[..n], ignore.map(i64::from), out);
    }
    // SAFETY: NEON is a compile-time feature (point 1); slices cut to equal length.
    unsafe {
        match ignore {
            Some(v) => label_counts::<true>(&pred[..n], &target[..n], v, out),
            None => label_counts::<false>(&pred[..n], &target[..n], 0, out),
        }
    }
}

/// Vectors of 16 bytes per chunk: each `u8` lane of a counter gains at most one per vector.
const CHUNK_VECTORS: usize = 255;

/// The voxels of `vp`/`vt` that count: all ones where neither map holds the ignore label.
#[inline(always)]
unsafe fn kept<const IGN: bool>(vp: uint8x16_t, vt: uint8x16_t, ign: uint8x16_t) -> uint8x16_t {
    if IGN {
        vmvnq_u8(vorrq_u8(vceqq_u8(vp, ign), vceqq_u8(vt, ign)))
    } else {
        vdupq_n_u8(0xFF)
    }
}

/// Counts a chunk at a time (at most [`CHUNK_VECTORS`] vectors, 4 KB, which stays in L1): one
/// pass validates it and counts the kept voxels, then one pass per label counts its voxels in
/// the prediction, the target and both into byte lanes, reduced once per chunk.
#[inline(always)]
unsafe fn label_counts<const IGN: bool>(
    pred: &[u8],
    target: &[u8],
    ignore: u8,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    let n = pred.len();
    let nl = out.len();
    let (pp, tp) = (pred.as_ptr(), target.as_ptr());
    let limit = vdupq_n_u8(nl as u8);
    let ign = vdupq_n_u8(ignore);
    let mut local = [Counts::default(); SIMD_MAX_LABELS];
    let mut counted = 0u64;
    let mut i = 0;
    while i + 16 <= n {
        let vectors = ((n - i) / 16).min(CHUNK_VECTORS);
        let mut kept_n = vdupq_n_u8(0);
        for v in 0..vectors {
            let o = i + 16 * v;
            // SAFETY: o + 16 ≤ i + 16·vectors ≤ n (point 2).
            let (vp, vt) = (vld1q_u8(pp.add(o)), vld1q_u8(tp.add(o)));
            let k = kept::<IGN>(vp, vt, ign);
            let oor = vandq_u8(vorrq_u8(vcgeq_u8(vt, limit), vcgeq_u8(vp, limit)), k);
            if vmaxvq_u8(oor) != 0 {
                // The first kept voxel with a label out of range, the target named first.
                for j in o..o + 16 {
                    let skip = IGN && (target[j] == ignore || pred[j] == ignore);
                    if !skip && target[j] as usize >= nl {
                        return Err(Bad::Target(j));
                    }
                    if !skip && pred[j] as usize >= nl {
                        return Err(Bad::Pred(j));
                    }
                }
            }
            kept_n = vsubq_u8(kept_n, k);
        }
        counted += vaddlvq_u8(kept_n) as u64;
        for (l, c) in local.iter_mut().enumerate().take(nl) {
            let lv = vdupq_n_u8(l as u8);
            let z = vdupq_n_u8(0);
            let (mut cp, mut ct, mut cb) = (z, z, z);
            for v in 0..vectors {
                let o = i + 16 * v;
                // SAFETY: as above.
                let (vp, vt) = (vld1q_u8(pp.add(o)), vld1q_u8(tp.add(o)));
                let k = kept::<IGN>(vp, vt, ign);
                let kp = vandq_u8(vceqq_u8(vp, lv), k);
                let kt = vandq_u8(vceqq_u8(vt, lv), k);
                cp = vsubq_u8(cp, kp);
                ct = vsubq_u8(ct, kt);
                cb = vsubq_u8(cb, vandq_u8(kp, kt));
            }
            c.pred += vaddlvq_u8(cp) as u64;
            c.target += vaddlvq_u8(ct) as u64;
            c.both += vaddlvq_u8(cb) as u64;
        }
        i += 16 * vectors;
    }
    let ignore = if IGN { Some(ignore as i64) } else { None };
    portable::finish_label_counts(out, &local, pred, target, i, ignore, counted)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// The level is NEON on aarch64 unless `DICE_SIMD=portable` asked otherwise, so the tests
    /// of the crate run these kernels and not a silent fallback.
    #[cfg(feature = "std")]
    #[test]
    fn neon_is_the_level() {
        let want = if std::env::var("DICE_SIMD").as_deref() == Ok("portable") {
            "portable"
        } else {
            "neon"
        };
        assert_eq!(crate::simd_level(), want);
    }

    /// Counts equal the portable kernels' exactly, sums within the bound of the module docs of
    /// `kernels`, at lengths around the block sizes, with `−0.0` (valid) and bad values named at
    /// their index.
    #[test]
    fn soft_kernels_agree_with_portable() {
        let k = Neon(());
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        for n in [0usize, 1, 15, 16, 127, 128, 129, 1000, 4099, 20000] {
            let p: Vec<f32> = (0..n)
                .map(|_| (next() >> 40) as f32 / (1 << 24) as f32)
                .collect();
            let mut g: Vec<f32> = (0..n).map(|_| (next() % 2) as f32).collect();
            if n > 3 {
                g[n / 2] = -0.0;
            }
            for sq in [false, true] {
                let a = soft_sums_f32(k, &p, &g, sq).unwrap();
                let b = portable::soft_sums(&p, &g, sq).unwrap();
                for (x, y) in [(a.pg, b.pg), (a.p, b.p), (a.g, b.g)] {
                    assert!(
                        (x - y).abs() <= 2e-6 * y.abs().max(1e-30),
                        "{n} {sq} {x} {y}"
                    );
                }
                let (p64, g64): (Vec<f64>, Vec<f64>) = p
                    .iter()
                    .zip(&g)
                    .map(|(&a, &b)| (a as f64, b as f64))
                    .unzip();
                let a = soft_sums_f64(k, &p64, &g64, sq).unwrap();
                let b = portable::soft_sums(&p64, &g64, sq).unwrap();
                for (x, y) in [(a.pg, b.pg), (a.p, b.p), (a.g, b.g)] {
                    assert!(
                        (x - y).abs() <= 1e-13 * y.abs().max(1e-30),
                        "{n} {sq} {x} {y}"
                    );
                }
            }
            for t in [0.0f32, 0.3, 0.5, 1.0] {
                assert_eq!(
                    threshold_counts_f32(k, &p, &g, t).unwrap(),
                    portable::threshold_counts(&p, &g, t).unwrap()
                );
            }
            for pos in [0, n / 3, n.saturating_sub(1)] {
                if n == 0 {
                    break;
                }
                for bad in [f32::NAN, 1.5, -0.5, f32::INFINITY] {
                    let mut q = p.clone();
                    q[pos] = bad;
                    assert_eq!(soft_sums_f32(k, &q, &g, false), Err(Bad::Pred(pos)));
                    assert_eq!(soft_sums_f32(k, &g, &q, true), Err(Bad::Target(pos)));
                    assert_eq!(threshold_counts_f32(k, &q, &g, 0.5), Err(Bad::Pred(pos)));
                    let q64: Vec<f64> = q.iter().map(|&v| v as f64).collect();
                    let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
                    assert_eq!(soft_sums_f64(k, &q64, &g64, true), Err(Bad::Pred(pos)));
                    assert_eq!(soft_sums_f64(k, &g64, &q64, false), Err(Bad::Target(pos)));
                }
            }
        }
    }

    /// Per-label counts equal the portable pass exactly (chunks of 255 vectors and tails, with
    /// and without an ignore label, an ignore label outside the label range), and an
    /// out-of-range label is named where the portable pass names it.
    #[test]
    fn label_counts_agree_with_portable() {
        let k = Neon(());
        let mut next = rng(0x2545_f491_4f6c_dd1d);
        for n in [0usize, 5, 16, 17, 4080, 4081, 9000, 70000] {
            for nl in [1usize, 2, 5, 16] {
                // Runs of equal labels, as in segmentations, plus noise.
                let mut p = Vec::with_capacity(n);
                let mut t = Vec::with_capacity(n);
                let (mut a, mut b) = (0u8, 0u8);
                for _ in 0..n {
                    let r = next();
                    if r.is_multiple_of(17) {
                        a = (r >> 8) as u8 % nl as u8;
                    }
                    if r.is_multiple_of(13) {
                        b = (r >> 16) as u8 % nl as u8;
                    }
                    p.push(if r.is_multiple_of(101) {
                        (r >> 24) as u8 % nl as u8
                    } else {
                        a
                    });
                    t.push(b);
                }
                for ignore in [None, Some(0u8), Some(nl as u8 - 1), Some(200)] {
                    let mut x = std::vec![Confusion::default(); nl];
                    let mut y = std::vec![Confusion::default(); nl];
                    let cx = label_counts_u8(k, &p, &t, ignore, &mut x).unwrap();
                    let cy = portable::label_counts(&p, &t, ignore.map(i64::from), &mut y).unwrap();
                    assert_eq!((cx, &x), (cy, &y), "n={n} nl={nl} ignore={ignore:?}");
                }
                if n > 10 {
                    for pos in [n / 2, n - 1] {
                        let mut q = p.clone();
                        q[pos] = nl as u8 + 3;
                        let mut x = std::vec![Confusion::default(); nl];
                        let mut y = std::vec![Confusion::default(); nl];
                        assert_eq!(
                            label_counts_u8(k, &q, &t, None, &mut x),
                            portable::label_counts(&q, &t, None, &mut y)
                        );
                        assert_eq!(
                            label_counts_u8(k, &t, &q, Some(0), &mut x),
                            portable::label_counts(&t, &q, Some(0), &mut y)
                        );
                    }
                }
            }
        }
    }
}
