//! AVX2+FMA and AVX-512 kernels: the only `unsafe` code of the crate.
//!
//! Soundness rests on two things, stated once here and referred to at each block:
//! 1. *Features.* The `#[target_feature]` functions are reached only through the safe wrappers,
//!    which take a token ([`Avx2`] or [`Avx512`]) that can only be built by [`isa`] after the
//!    CPU (with `std`) or the compile-time target features (without `std`) reported the
//!    features. Calling them is then sound.
//! 2. *Bounds.* Every pointer access is at `ptr.add(i + k)` with `i + k + width ≤ len` checked
//!    by the loop condition against slices whose lengths were made equal on entry; aligned
//!    loads and non-temporal stores use the pointer after an alignment peel computed with
//!    `align_offset`.

#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::{portable, Bad, Counts, Sums, ROWS};
use crate::counts::Confusion;

/// Proof that AVX2 and FMA are available.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

/// Proof that AVX-512 F, BW, VL, AVX2, FMA and POPCNT are available.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

/// The instruction sets available, as tokens.
#[derive(Clone, Copy, Debug)]
pub enum Isa {
    /// Neither.
    Portable,
    /// AVX2 + FMA.
    Avx2(Avx2),
    /// AVX-512 (and AVX2 + FMA).
    Avx512(Avx512, Avx2),
}

/// Detects the instruction sets once (with `std`) or reads the compile-time target features.
#[inline]
pub fn isa() -> Isa {
    match super::level() {
        super::Level::Portable => Isa::Portable,
        super::Level::Avx2 => Isa::Avx2(Avx2(())),
        super::Level::Avx512 => Isa::Avx512(Avx512(()), Avx2(())),
        super::Level::Neon => Isa::Portable,
    }
}

/// Largest label count the byte-label SIMD kernel handles (more labels take the portable pass).
pub const SIMD_MAX_LABELS: usize = 16;

const ONE_F32: i32 = 0x3F80_0000;
const ONE_F64: i64 = 0x3FF0_0000_0000_0000;

/// Number of leading elements before `p` reaches a 64-byte boundary (at most `n`).
#[inline(always)]
fn peel<T>(p: *const T, n: usize) -> usize {
    let a = p.align_offset(64);
    if a > n {
        n
    } else {
        a
    }
}

// ---------------------------------------------------------------------------------------------
// Soft sums, f32
// ---------------------------------------------------------------------------------------------

/// AVX-512 `Σp·g, Σp, Σg` (or squares) over `f32`; see the module docs of `kernels`.
pub fn soft_sums_f32_avx512(_: Avx512, p: &[f32], g: &[f32], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: the token proves AVX-512F (point 1 of the module docs); slices have equal length.
    unsafe {
        if squared {
            sums_f32_512::<true>(p, g)
        } else {
            sums_f32_512::<false>(p, g)
        }
    }
}

#[inline(always)]
unsafe fn widen_add_512(acc: __m512, total: __m512d) -> __m512d {
    let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(acc));
    let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
        _mm512_castps_pd(acc),
    )));
    _mm512_add_pd(total, _mm512_add_pd(lo, hi))
}

#[target_feature(enable = "avx512f")]
unsafe fn sums_f32_512<const SQ: bool>(p: &[f32], g: &[f32]) -> Result<Sums, Bad> {
    // Two vectors a row, as the AVX2 kernel: with four, the block's twelve accumulators and
    // their loads leave too few registers, and on Zen 5 the kernel ran at 0.60 of the dot
    // product at 2^27 and 0.42 at 2^22 (two: 0.96 and 0.82).
    const U: usize = 2;
    const W: usize = 16 * U;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::soft_sums(&p[..head], &g[..head], SQ)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let one = _mm512_set1_epi32(ONE_F32);
    let (mut tpg, mut tp, mut tg) = (
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
        _mm512_setzero_pd(),
    );
    let mut i = head;
    loop {
        let mut failed = false;
        while i + BLOCK <= n {
            let mut apg = [_mm512_setzero_ps(); U];
            let mut ap = [_mm512_setzero_ps(); U];
            let mut ag = [_mm512_setzero_ps(); U];
            let mut mx = _mm512_setzero_si512();
            for r in 0..ROWS {
                let o = i + r * W;
                for u in 0..U {
                    // SAFETY: o + 16u + 16 ≤ i + BLOCK ≤ n (point 2); p + head is 64-byte
                    // aligned and o − head a multiple of 16 elements, so the load is aligned.
                    let x = _mm512_load_ps(pp.add(o + 16 * u));
                    let y = _mm512_loadu_ps(gp.add(o + 16 * u));
                    apg[u] = _mm512_fmadd_ps(x, y, apg[u]);
                    if SQ {
                        ap[u] = _mm512_fmadd_ps(x, x, ap[u]);
                        ag[u] = _mm512_fmadd_ps(y, y, ag[u]);
                    } else {
                        ap[u] = _mm512_add_ps(x, ap[u]);
                        ag[u] = _mm512_add_ps(y, ag[u]);
                    }
                    // As unsigned integers, exactly the floats +0.0 ..= 1.0 are ≤ the bits of
                    // 1.0: NaN, ±∞, negatives (and −0.0, re-checked below) are larger.
                    mx = _mm512_max_epu32(
                        mx,
                        _mm512_max_epu32(_mm512_castps_si512(x), _mm512_castps_si512(y)),
                    );
                }
            }
            // One pairwise addition over the U accumulators (one more rounding), then widen.
            tpg = widen_add_512(_mm512_add_ps(apg[0], apg[1]), tpg);
            tp = widen_add_512(_mm512_add_ps(ap[0], ap[1]), tp);
            tg = widen_add_512(_mm512_add_ps(ag[0], ag[1]), tg);
            i += BLOCK;
            // Tested after the block is summed, so that the sums do not depend on the branch
            // (else the compiler sinks them below it, keeps every load alive and spills). The
            // slow path stays out of the hot loop: a call there makes every live vector
            // register a spill candidate.
            if _mm512_cmpgt_epu32_mask(mx, one) != 0 {
                failed = true;
                break;
            }
        }
        if !failed {
            break;
        }
        // A value above 1.0 (as bits) in the block just summed: name it. If it was only −0.0
        // (a valid zero), the block's sums are right and the loop goes on.
        let start = i - BLOCK;
        if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
            return Err(bad.shift(start));
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    total = total.add(Sums {
        pg: _mm512_reduce_add_pd(tpg),
        p: _mm512_reduce_add_pd(tp),
        g: _mm512_reduce_add_pd(tg),
    });
    Ok(total.add(tail))
}

/// AVX2 `Σp·g, Σp, Σg` (or squares) over `f32`.
pub fn soft_sums_f32_avx2(_: Avx2, p: &[f32], g: &[f32], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: the token proves AVX2 and FMA (point 1); slices have equal length.
    unsafe {
        if squared {
            sums_f32_256::<true>(p, g)
        } else {
            sums_f32_256::<false>(p, g)
        }
    }
}

#[inline(always)]
unsafe fn widen_add_256(acc: __m256, total: __m256d) -> __m256d {
    let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(acc));
    let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(acc));
    _mm256_add_pd(total, _mm256_add_pd(lo, hi))
}

#[inline(always)]
unsafe fn hsum_256d(v: __m256d) -> f64 {
    let mut a = [0.0f64; 4];
    _mm256_storeu_pd(a.as_mut_ptr(), v);
    (a[0] + a[1]) + (a[2] + a[3])
}

#[target_feature(enable = "avx2,fma")]
unsafe fn sums_f32_256<const SQ: bool>(p: &[f32], g: &[f32]) -> Result<Sums, Bad> {
    const W: usize = 16;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::soft_sums(&p[..head], &g[..head], SQ)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let one = _mm256_set1_epi32(ONE_F32);
    let (mut tpg, mut tp, mut tg) = (
        _mm256_setzero_pd(),
        _mm256_setzero_pd(),
        _mm256_setzero_pd(),
    );
    let mut i = head;
    loop {
        let mut failed = false;
        while i + BLOCK <= n {
            let (mut pg0, mut pg1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut p0, mut p1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let (mut g0, mut g1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut mx = _mm256_setzero_si256();
            for r in 0..ROWS {
                let o = i + r * W;
                // SAFETY: o + 16 ≤ n (point 2); p + head is 64-byte aligned, o − head a
                // multiple of 8.
                let x0 = _mm256_load_ps(pp.add(o));
                let x1 = _mm256_load_ps(pp.add(o + 8));
                let y0 = _mm256_loadu_ps(gp.add(o));
                let y1 = _mm256_loadu_ps(gp.add(o + 8));
                pg0 = _mm256_fmadd_ps(x0, y0, pg0);
                pg1 = _mm256_fmadd_ps(x1, y1, pg1);
                if SQ {
                    p0 = _mm256_fmadd_ps(x0, x0, p0);
                    p1 = _mm256_fmadd_ps(x1, x1, p1);
                    g0 = _mm256_fmadd_ps(y0, y0, g0);
                    g1 = _mm256_fmadd_ps(y1, y1, g1);
                } else {
                    p0 = _mm256_add_ps(x0, p0);
                    p1 = _mm256_add_ps(x1, p1);
                    g0 = _mm256_add_ps(y0, g0);
                    g1 = _mm256_add_ps(y1, g1);
                }
                let m01 = _mm256_max_epu32(_mm256_castps_si256(x0), _mm256_castps_si256(x1));
                let m23 = _mm256_max_epu32(_mm256_castps_si256(y0), _mm256_castps_si256(y1));
                mx = _mm256_max_epu32(mx, _mm256_max_epu32(m01, m23));
            }
            // One pairwise addition (one more rounding), then widen once.
            tpg = widen_add_256(_mm256_add_ps(pg0, pg1), tpg);
            tp = widen_add_256(_mm256_add_ps(p0, p1), tp);
            tg = widen_add_256(_mm256_add_ps(g0, g1), tg);
            i += BLOCK;
            // Tested after the block is summed, so that the sums do not depend on the branch
            // (else the compiler sinks them below it, keeps every load alive and spills). The
            // slow path stays out of the hot loop: a call there makes every live vector
            // register a spill candidate.
            // mx ≤ one in every lane ⇔ max(mx, one) == one.
            let within = _mm256_cmpeq_epi32(_mm256_max_epu32(mx, one), one);
            if _mm256_movemask_epi8(within) != -1 {
                failed = true;
                break;
            }
        }
        if !failed {
            break;
        }
        // A value above 1.0 (as bits) in the block just summed: name it. If it was only −0.0
        // (a valid zero), the block's sums are right and the loop goes on.
        let start = i - BLOCK;
        if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
            return Err(bad.shift(start));
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    total = total.add(Sums {
        pg: hsum_256d(tpg),
        p: hsum_256d(tp),
        g: hsum_256d(tg),
    });
    Ok(total.add(tail))
}

// ---------------------------------------------------------------------------------------------
// Soft sums, f64
// ---------------------------------------------------------------------------------------------

/// AVX-512 `Σp·g, Σp, Σg` (or squares) over `f64`, accumulated in `f64`.
pub fn soft_sums_f64_avx512(_: Avx512, p: &[f64], g: &[f64], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: the token proves AVX-512F (point 1); slices have equal length.
    unsafe {
        if squared {
            sums_f64_512::<true>(p, g)
        } else {
            sums_f64_512::<false>(p, g)
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn sums_f64_512<const SQ: bool>(p: &[f64], g: &[f64]) -> Result<Sums, Bad> {
    const W: usize = 16;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::soft_sums(&p[..head], &g[..head], SQ)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let one = _mm512_set1_epi64(ONE_F64);
    let (mut pg0, mut pg1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let (mut p0, mut p1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let (mut g0, mut g1) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut i = head;
    loop {
        let mut failed = false;
        while i + BLOCK <= n {
            let mut mx = _mm512_setzero_si512();
            for r in 0..ROWS {
                let o = i + r * W;
                // SAFETY: o + 16 ≤ n (point 2); p + head is 64-byte aligned, o − head a
                // multiple of 8.
                let x0 = _mm512_load_pd(pp.add(o));
                let x1 = _mm512_load_pd(pp.add(o + 8));
                let y0 = _mm512_loadu_pd(gp.add(o));
                let y1 = _mm512_loadu_pd(gp.add(o + 8));
                pg0 = _mm512_fmadd_pd(x0, y0, pg0);
                pg1 = _mm512_fmadd_pd(x1, y1, pg1);
                if SQ {
                    p0 = _mm512_fmadd_pd(x0, x0, p0);
                    p1 = _mm512_fmadd_pd(x1, x1, p1);
                    g0 = _mm512_fmadd_pd(y0, y0, g0);
                    g1 = _mm512_fmadd_pd(y1, y1, g1);
                } else {
                    p0 = _mm512_add_pd(x0, p0);
                    p1 = _mm512_add_pd(x1, p1);
                    g0 = _mm512_add_pd(y0, g0);
                    g1 = _mm512_add_pd(y1, g1);
                }
                let m01 = _mm512_max_epu64(_mm512_castpd_si512(x0), _mm512_castpd_si512(x1));
                let m23 = _mm512_max_epu64(_mm512_castpd_si512(y0), _mm512_castpd_si512(y1));
                mx = _mm512_max_epu64(mx, _mm512_max_epu64(m01, m23));
            }
            i += BLOCK;
            // Tested after the block is summed, so that the sums do not depend on the branch
            // (else the compiler sinks them below it, keeps every load alive and spills). The
            // slow path stays out of the hot loop: a call there makes every live vector
            // register a spill candidate.
            if _mm512_cmpgt_epu64_mask(mx, one) != 0 {
                failed = true;
                break;
            }
        }
        if !failed {
            break;
        }
        // A value above 1.0 (as bits) in the block just summed: name it. If it was only −0.0
        // (a valid zero), the block's sums are right and the loop goes on.
        let start = i - BLOCK;
        if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
            return Err(bad.shift(start));
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    total = total.add(Sums {
        pg: _mm512_reduce_add_pd(_mm512_add_pd(pg0, pg1)),
        p: _mm512_reduce_add_pd(_mm512_add_pd(p0, p1)),
        g: _mm512_reduce_add_pd(_mm512_add_pd(g0, g1)),
    });
    Ok(total.add(tail))
}

/// AVX2 `Σp·g, Σp, Σg` (or squares) over `f64`, accumulated in `f64`.
pub fn soft_sums_f64_avx2(_: Avx2, p: &[f64], g: &[f64], squared: bool) -> Result<Sums, Bad> {
    let n = p.len().min(g.len());
    let (p, g) = (&p[..n], &g[..n]);
    // SAFETY: the token proves AVX2 and FMA (point 1); slices have equal length.
    unsafe {
        if squared {
            sums_f64_256::<true>(p, g)
        } else {
            sums_f64_256::<false>(p, g)
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn sums_f64_256<const SQ: bool>(p: &[f64], g: &[f64]) -> Result<Sums, Bad> {
    const W: usize = 8;
    const BLOCK: usize = W * ROWS;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::soft_sums(&p[..head], &g[..head], SQ)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let zero = _mm256_setzero_pd();
    let one = _mm256_set1_pd(1.0);
    let (mut pg0, mut pg1) = (zero, zero);
    let (mut p0, mut p1) = (zero, zero);
    let (mut g0, mut g1) = (zero, zero);
    let mut i = head;
    loop {
        let mut failed = false;
        while i + BLOCK <= n {
            let mut bad = zero;
            for r in 0..ROWS {
                let o = i + r * W;
                // SAFETY: o + 8 ≤ n (point 2); p + head is 64-byte aligned, o − head a
                // multiple of 4.
                let x0 = _mm256_load_pd(pp.add(o));
                let x1 = _mm256_load_pd(pp.add(o + 4));
                let y0 = _mm256_loadu_pd(gp.add(o));
                let y1 = _mm256_loadu_pd(gp.add(o + 4));
                pg0 = _mm256_fmadd_pd(x0, y0, pg0);
                pg1 = _mm256_fmadd_pd(x1, y1, pg1);
                if SQ {
                    p0 = _mm256_fmadd_pd(x0, x0, p0);
                    p1 = _mm256_fmadd_pd(x1, x1, p1);
                    g0 = _mm256_fmadd_pd(y0, y0, g0);
                    g1 = _mm256_fmadd_pd(y1, y1, g1);
                } else {
                    p0 = _mm256_add_pd(x0, p0);
                    p1 = _mm256_add_pd(x1, p1);
                    g0 = _mm256_add_pd(y0, g0);
                    g1 = _mm256_add_pd(y1, g1);
                }
                // min < 0 or max > 1 or NaN (unordered compares are true for NaN).
                let lo = _mm256_min_pd(_mm256_min_pd(x0, x1), _mm256_min_pd(y0, y1));
                let hi = _mm256_max_pd(_mm256_max_pd(x0, x1), _mm256_max_pd(y0, y1));
                bad = _mm256_or_pd(bad, _mm256_cmp_pd::<_CMP_NGE_UQ>(lo, zero));
                bad = _mm256_or_pd(bad, _mm256_cmp_pd::<_CMP_NLE_UQ>(hi, one));
                // min/max drop a NaN in their first operand: check the inputs' own order too.
                let un = _mm256_or_pd(
                    _mm256_cmp_pd::<_CMP_UNORD_Q>(x0, x1),
                    _mm256_cmp_pd::<_CMP_UNORD_Q>(y0, y1),
                );
                bad = _mm256_or_pd(bad, un);
            }
            i += BLOCK;
            // Tested after the block is summed, so that the sums do not depend on the branch
            // (else the compiler sinks them below it, keeps every load alive and spills). The
            // slow path stays out of the hot loop: a call there makes every live vector
            // register a spill candidate.
            if _mm256_movemask_pd(bad) != 0 {
                failed = true;
                break;
            }
        }
        if !failed {
            break;
        }
        // A value above 1.0 (as bits) in the block just summed: name it. If it was only −0.0
        // (a valid zero), the block's sums are right and the loop goes on.
        let start = i - BLOCK;
        if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
            return Err(bad.shift(start));
        }
    }
    let tail = portable::soft_sums(&p[i..], &g[i..], SQ).map_err(|b| b.shift(i))?;
    total = total.add(Sums {
        pg: hsum_256d(_mm256_add_pd(pg0, pg1)),
        p: hsum_256d(_mm256_add_pd(p0, p1)),
        g: hsum_256d(_mm256_add_pd(g0, g1)),
    });
    Ok(total.add(tail))
}

// ---------------------------------------------------------------------------------------------
// Gradient writer with non-temporal stores, f32
// ---------------------------------------------------------------------------------------------

/// `outᵢ = a + b·gᵢ + c·pᵢ` with AVX-512 non-temporal stores (for outputs larger than cache).
pub fn affine_f32_stream_avx512(
    _: Avx512,
    out: &mut [f32],
    g: &[f32],
    p: &[f32],
    a: f64,
    b: f64,
    c: f64,
) {
    let n = out.len().min(g.len());
    let with_p = c != 0.0;
    if with_p && p.len() < n {
        return portable::affine(out, g, p, a, b, c);
    }
    // SAFETY: the token proves AVX-512F (point 1); lengths checked just above.
    unsafe {
        if with_p {
            affine_512::<true>(
                &mut out[..n],
                &g[..n],
                &p[..n],
                a as f32,
                b as f32,
                c as f32,
            )
        } else {
            affine_512::<false>(&mut out[..n], &g[..n], &[], a as f32, b as f32, 0.0)
        }
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn affine_512<const P: bool>(out: &mut [f32], g: &[f32], p: &[f32], a: f32, b: f32, c: f32) {
    let n = out.len();
    let head = peel(out.as_ptr(), n);
    portable::affine(
        &mut out[..head],
        &g[..head],
        if P { &p[..head] } else { &[] },
        a as f64,
        b as f64,
        c as f64,
    );
    let (va, vb, vc) = (_mm512_set1_ps(a), _mm512_set1_ps(b), _mm512_set1_ps(c));
    let (op, gp, pp) = (out.as_mut_ptr(), g.as_ptr(), p.as_ptr());
    let mut i = head;
    while i + 32 <= n {
        // SAFETY: i + 32 ≤ n (point 2); out + head is 64-byte aligned and i − head a multiple
        // of 16, as the non-temporal store needs.
        // `a + b·g + c·p` rounded as the portable map rounds it (no fused multiply-add), so
        // every element has the same bits whichever kernel, chunk or alignment wrote it.
        let mut r0 = _mm512_add_ps(va, _mm512_mul_ps(vb, _mm512_loadu_ps(gp.add(i))));
        let mut r1 = _mm512_add_ps(va, _mm512_mul_ps(vb, _mm512_loadu_ps(gp.add(i + 16))));
        if P {
            r0 = _mm512_add_ps(r0, _mm512_mul_ps(vc, _mm512_loadu_ps(pp.add(i))));
            r1 = _mm512_add_ps(r1, _mm512_mul_ps(vc, _mm512_loadu_ps(pp.add(i + 16))));
        }
        _mm512_stream_ps(op.add(i), r0);
        _mm512_stream_ps(op.add(i + 16), r1);
        i += 32;
    }
    _mm_sfence();
    portable::affine(
        &mut out[i..],
        &g[i..],
        if P { &p[i..] } else { &[] },
        a as f64,
        b as f64,
        c as f64,
    );
}

/// `outᵢ = a + b·gᵢ + c·pᵢ` with AVX non-temporal stores.
pub fn affine_f32_stream_avx2(
    _: Avx2,
    out: &mut [f32],
    g: &[f32],
    p: &[f32],
    a: f64,
    b: f64,
    c: f64,
) {
    let n = out.len().min(g.len());
    let with_p = c != 0.0;
    if with_p && p.len() < n {
        return portable::affine(out, g, p, a, b, c);
    }
    // SAFETY: the token proves AVX2 and FMA (point 1); lengths checked just above.
    unsafe {
        if with_p {
            affine_256::<true>(
                &mut out[..n],
                &g[..n],
                &p[..n],
                a as f32,
                b as f32,
                c as f32,
            )
        } else {
            affine_256::<false>(&mut out[..n], &g[..n], &[], a as f32, b as f32, 0.0)
        }
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn affine_256<const P: bool>(out: &mut [f32], g: &[f32], p: &[f32], a: f32, b: f32, c: f32) {
    let n = out.len();
    let head = peel(out.as_ptr(), n);
    portable::affine(
        &mut out[..head],
        &g[..head],
        if P { &p[..head] } else { &[] },
        a as f64,
        b as f64,
        c as f64,
    );
    let (va, vb, vc) = (_mm256_set1_ps(a), _mm256_set1_ps(b), _mm256_set1_ps(c));
    let (op, gp, pp) = (out.as_mut_ptr(), g.as_ptr(), p.as_ptr());
    let mut i = head;
    while i + 16 <= n {
        // SAFETY: i + 16 ≤ n (point 2); out + head is 64-byte aligned, i − head a multiple of 8.
        // Rounded as the portable map (see `affine_512`).
        let mut r0 = _mm256_add_ps(va, _mm256_mul_ps(vb, _mm256_loadu_ps(gp.add(i))));
        let mut r1 = _mm256_add_ps(va, _mm256_mul_ps(vb, _mm256_loadu_ps(gp.add(i + 8))));
        if P {
            r0 = _mm256_add_ps(r0, _mm256_mul_ps(vc, _mm256_loadu_ps(pp.add(i))));
            r1 = _mm256_add_ps(r1, _mm256_mul_ps(vc, _mm256_loadu_ps(pp.add(i + 8))));
        }
        _mm256_stream_ps(op.add(i), r0);
        _mm256_stream_ps(op.add(i + 8), r1);
        i += 16;
    }
    _mm_sfence();
    portable::affine(
        &mut out[i..],
        &g[i..],
        if P { &p[i..] } else { &[] },
        a as f64,
        b as f64,
        c as f64,
    );
}

// ---------------------------------------------------------------------------------------------
// Hard counts from thresholded f32 probabilities
// ---------------------------------------------------------------------------------------------

/// AVX-512 counts of `p ≥ t`, `g ≥ t` and both, validating every element.
pub fn threshold_counts_f32_avx512(_: Avx512, p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    let n = p.len().min(g.len());
    // SAFETY: the token proves AVX-512F (point 1); slices cut to equal length.
    unsafe { counts_f32_512(&p[..n], &g[..n], t) }
}

#[target_feature(enable = "avx512f")]
unsafe fn counts_f32_512(p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    const W: usize = 32;
    const BLOCK: usize = W * ROWS;
    // Per-lane u32 counters take at most 2 increments a row: flushed to u64 long before 2³².
    const FLUSH: usize = BLOCK << 20;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::threshold_counts(&p[..head], &g[..head], t)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let one = _mm512_set1_epi32(ONE_F32);
    let vt = _mm512_set1_ps(t);
    let minus_one = _mm512_set1_epi32(-1);
    let mut i = head;
    let reduce = |v: __m512i| -> u64 {
        let mut lanes = [0u32; 16];
        // SAFETY: `lanes` holds 16 u32; AVX-512F is enabled in the enclosing function.
        unsafe { _mm512_storeu_si512(lanes.as_mut_ptr() as *mut _, v) };
        lanes.iter().map(|&c| c as u64).sum()
    };
    while i + BLOCK <= n {
        let chunk_end = (i + FLUSH).min(n);
        let (mut cb, mut cp, mut cg) = (
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
            _mm512_setzero_si512(),
        );
        loop {
            let mut failed = false;
            while i + BLOCK <= chunk_end {
                let mut mx = _mm512_setzero_si512();
                for r in 0..ROWS {
                    let o = i + r * W;
                    for u in 0..2 {
                        // SAFETY: o + 16u + 16 ≤ n (point 2); aligned as in `sums_f32_512`.
                        let x = _mm512_load_ps(pp.add(o + 16 * u));
                        let y = _mm512_loadu_ps(gp.add(o + 16 * u));
                        let kx = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, vt);
                        let ky = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(y, vt);
                        // counter − (−1) in the lanes the mask selects: one uop, no mask-to-GPR
                        // transfer and popcount per vector.
                        cp = _mm512_mask_sub_epi32(cp, kx, cp, minus_one);
                        cg = _mm512_mask_sub_epi32(cg, ky, cg, minus_one);
                        cb = _mm512_mask_sub_epi32(cb, kx & ky, cb, minus_one);
                        mx = _mm512_max_epu32(
                            mx,
                            _mm512_max_epu32(_mm512_castps_si512(x), _mm512_castps_si512(y)),
                        );
                    }
                }
                i += BLOCK;
                // Tested after the block is counted (see `sums_f32_512`). −0.0 compares like +0.0
                // (not ≥ any threshold > 0, and ≥ 0), so a block with only −0.0 counts right.
                if _mm512_cmpgt_epu32_mask(mx, one) != 0 {
                    failed = true;
                    break;
                }
            }
            if !failed {
                break;
            }
            let start = i - BLOCK;
            if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
                return Err(bad.shift(start));
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

/// AVX2 counts of `p ≥ t`, `g ≥ t` and both, validating every element.
pub fn threshold_counts_f32_avx2(_: Avx2, p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    let n = p.len().min(g.len());
    // SAFETY: the token proves AVX2 (point 1); slices cut to equal length.
    unsafe { counts_f32_256(&p[..n], &g[..n], t) }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn counts_f32_256(p: &[f32], g: &[f32], t: f32) -> Result<Counts, Bad> {
    const W: usize = 16;
    const BLOCK: usize = W * ROWS;
    const FLUSH: usize = BLOCK << 20;
    let n = p.len();
    let head = peel(p.as_ptr(), n);
    let mut total = portable::threshold_counts(&p[..head], &g[..head], t)?;
    let (pp, gp) = (p.as_ptr(), g.as_ptr());
    let one = _mm256_set1_epi32(ONE_F32);
    let vt = _mm256_set1_ps(t);
    let mut i = head;
    let reduce = |v: __m256i| -> u64 {
        let mut lanes = [0u32; 8];
        // SAFETY: `lanes` holds 8 u32; AVX is enabled in the enclosing function.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, v) };
        lanes.iter().map(|&c| c as u64).sum()
    };
    while i + BLOCK <= n {
        let chunk_end = (i + FLUSH).min(n);
        let (mut cb, mut cp, mut cg) = (
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
            _mm256_setzero_si256(),
        );
        loop {
            let mut failed = false;
            while i + BLOCK <= chunk_end {
                let mut mx = _mm256_setzero_si256();
                for r in 0..ROWS {
                    let o = i + r * W;
                    for u in 0..2 {
                        // SAFETY: o + 8u + 8 ≤ n (point 2); aligned as in `sums_f32_256`.
                        let x = _mm256_load_ps(pp.add(o + 8 * u));
                        let y = _mm256_loadu_ps(gp.add(o + 8 * u));
                        // Compares give −1 in the lanes that hold: subtracting counts them.
                        let kx = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(x, vt));
                        let ky = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(y, vt));
                        cp = _mm256_sub_epi32(cp, kx);
                        cg = _mm256_sub_epi32(cg, ky);
                        cb = _mm256_sub_epi32(cb, _mm256_and_si256(kx, ky));
                        mx = _mm256_max_epu32(
                            mx,
                            _mm256_max_epu32(_mm256_castps_si256(x), _mm256_castps_si256(y)),
                        );
                    }
                }
                i += BLOCK;
                // Tested after the block is counted (see `sums_f32_512`).
                let within = _mm256_cmpeq_epi32(_mm256_max_epu32(mx, one), one);
                if _mm256_movemask_epi8(within) != -1 {
                    failed = true;
                    break;
                }
            }
            if !failed {
                break;
            }
            let start = i - BLOCK;
            if let Some(bad) = portable::find_bad(&p[start..i], &g[start..i]) {
                return Err(bad.shift(start));
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

/// AVX-512BW per-label counts over two `u8` label maps with at most [`SIMD_MAX_LABELS`] labels.
pub fn label_counts_u8_avx512(
    _: Avx512,
    pred: &[u8],
    target: &[u8],
    ignore: Option<u8>,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    let n = pred.len().min(target.len());
    if out.len() > SIMD_MAX_LABELS || out.is_empty() {
        return portable::label_counts(&pred[..n], &target[..n], ignore.map(i64::from), out);
    }
    // SAFETY: the token proves AVX-512F/BW (point 1); slices cut to equal length.
    unsafe { label_counts_512(&pred[..n], &target[..n], ignore, out) }
}

#[target_feature(enable = "avx512f,avx512bw,popcnt")]
unsafe fn label_counts_512(
    pred: &[u8],
    target: &[u8],
    ignore: Option<u8>,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    let n = pred.len();
    let nl = out.len();
    let (pp, tp) = (pred.as_ptr(), target.as_ptr());
    let limit = _mm512_set1_epi8(nl as i8);
    let ign = _mm512_set1_epi8(ignore.unwrap_or(0) as i8);
    let mut labels = [_mm512_setzero_si512(); SIMD_MAX_LABELS];
    for (l, v) in labels.iter_mut().enumerate().take(nl) {
        *v = _mm512_set1_epi8(l as i8);
    }
    let mut local = [Counts::default(); SIMD_MAX_LABELS];
    let mut counted = 0u64;
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: i + 64 ≤ n (point 2).
        let vp = _mm512_loadu_si512(pp.add(i) as *const _);
        let vt = _mm512_loadu_si512(tp.add(i) as *const _);
        let valid: u64 = if ignore.is_some() {
            _mm512_cmpneq_epi8_mask(vt, ign) & _mm512_cmpneq_epi8_mask(vp, ign)
        } else {
            !0
        };
        let out_of_range =
            (_mm512_cmpge_epu8_mask(vt, limit) | _mm512_cmpge_epu8_mask(vp, limit)) & valid;
        if out_of_range != 0 {
            let j = out_of_range.trailing_zeros() as usize;
            return Err(if target[i + j] as usize >= nl {
                Bad::Target(i + j)
            } else {
                Bad::Pred(i + j)
            });
        }
        let eq = _mm512_cmpeq_epi8_mask(vp, vt) & valid;
        for l in 0..nl {
            let kp = _mm512_cmpeq_epi8_mask(vp, labels[l]) & valid;
            let kt = _mm512_cmpeq_epi8_mask(vt, labels[l]) & valid;
            local[l].both += (kp & eq).count_ones() as u64;
            local[l].pred += kp.count_ones() as u64;
            local[l].target += kt.count_ones() as u64;
        }
        counted += valid.count_ones() as u64;
        i += 64;
    }
    portable::finish_label_counts(out, &local, pred, target, i, ignore.map(i64::from), counted)
}

// ---------------------------------------------------------------------------------------------
// Portable loops compiled with the wider instruction sets: activations, label-map sums and the
// softmax chain rule in f32. No FMA contraction happens without fast-math and the loops keep
// their order of additions, so the results are bit-identical to the portable ones (tested).
// ---------------------------------------------------------------------------------------------

/// Defines `$avx512` and `$avx2`, safe entry points taking the feature token, that run the
/// portable `$body` compiled with AVX-512 or AVX2 enabled.
macro_rules! compiled_for {
    ($(#[$doc:meta])* $avx512:ident, $avx2:ident, <$($g:ident: $b:path),*>
     ($($arg:ident: $ty:ty),*) -> $ret:ty => $body:path) => {
        $(#[$doc])*
        /// (AVX-512.)
        pub fn $avx512<$($g: $b),*>(_: Avx512, $($arg: $ty),*) -> $ret {
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn inner<$($g: $b),*>($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            // SAFETY: the token proves the features (point 1 of the module docs); the body
            // is safe code.
            unsafe { inner($($arg),*) }
        }

        $(#[$doc])*
        /// (AVX2.)
        pub fn $avx2<$($g: $b),*>(_: Avx2, $($arg: $ty),*) -> $ret {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn inner<$($g: $b),*>($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            // SAFETY: as above.
            unsafe { inner($($arg),*) }
        }
    };
}

compiled_for!(
    /// [`portable::sigmoid_all`].
    sigmoid_f32_avx512, sigmoid_f32_avx2, <>
    (z: &[f32], out: &mut [f32]) -> () => portable::sigmoid_all
);

compiled_for!(
    /// [`portable::sigmoid_chain_dense`].
    sigmoid_chain_dense_f32_avx512, sigmoid_chain_dense_f32_avx2, <>
    (g: &[f32], coef: (f32, f32, f32), out: &mut [f32]) -> () => portable::sigmoid_chain_dense
);

compiled_for!(
    /// [`portable::sigmoid_chain_labels`].
    sigmoid_chain_labels_f32_avx512, sigmoid_chain_labels_f32_avx2, <L: crate::Label>
    (labels: &[L], class: i64, ignore: Option<i64>, coef: (f32, f32, f32), out: &mut [f32]) -> ()
        => portable::sigmoid_chain_labels
);

compiled_for!(
    /// [`portable::softmax_all`] over `[batch, channels, spatial]`.
    softmax_f32_avx512, softmax_f32_avx2, <>
    (batch: usize, channels: usize, spatial: usize, z: &[f32], out: &mut [f32]) -> ()
        => portable::softmax_all
);

compiled_for!(
    /// [`portable::label_sums`].
    label_sums_f32_avx512, label_sums_f32_avx2, <L: crate::Label>
    (p: &[f32], labels: &[L], class: i64, ignore: Option<i64>, squared: bool)
        -> Result<(Sums, u64), Bad> => portable::label_sums
);

compiled_for!(
    /// [`portable::softmax_slices`].
    softmax_slices_f32_avx512, softmax_slices_f32_avx2, <>
    (z: &[&[f32]], out: &mut [&mut [f32]]) -> () => portable::softmax_slices
);

compiled_for!(
    /// [`portable::softmax_chain_labels_slices`].
    softmax_chain_labels_slices_f32_avx512, softmax_chain_labels_slices_f32_avx2, <L: crate::Label>
    (labels: &[L], ignore: Option<i64>, coef: &[(f32, f32, f32)], rows: &mut [&mut [f32]]) -> ()
        => portable::softmax_chain_labels_slices
);

compiled_for!(
    /// [`portable::softmax_chain_labels`].
    softmax_chain_labels_f32_avx512, softmax_chain_labels_f32_avx2, <L: crate::Label>
    (labels: &[L], ignore: Option<i64>, coef: &[(f32, f32, f32)], grad: &mut [f32]) -> ()
        => portable::softmax_chain_labels
);
