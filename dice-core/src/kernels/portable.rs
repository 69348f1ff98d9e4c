//! Safe, portable kernels: the fallback on every target, and the heads and tails of the SIMD
//! kernels. Written with fixed-width lane arrays and blocks of [`ROWS`] rows so that the
//! accumulation (and its error bound) is the same as in the SIMD kernels.

use super::{Bad, Counts, Sums, ROWS};
use crate::counts::Confusion;
use crate::{Float, Label};

const LANES: usize = 16;

/// `true` for a number in `[0, 1]` (so `false` for NaN).
#[inline(always)]
pub(crate) fn unit<T: Float>(x: T) -> bool {
    (x >= T::ZERO) & (x <= T::ONE)
}

/// The first element of `p` or `g` (in that order at equal index) that is not in `[0, 1]`.
pub(crate) fn find_bad<T: Float>(p: &[T], g: &[T]) -> Option<Bad> {
    for (i, (&a, &b)) in p.iter().zip(g).enumerate() {
        if !unit(a) {
            return Some(Bad::Pred(i));
        }
        if !unit(b) {
            return Some(Bad::Target(i));
        }
    }
    None
}

#[inline(always)]
fn lanes_to_f64<T: Float>(a: &[T; LANES]) -> f64 {
    a.iter().fold(0.0, |s, &v| s + v.to_f64())
}

/// Sums of one block of at most `LANES·ROWS` elements, and whether every element was valid.
#[inline(always)]
fn block_sums<T: Float>(p: &[T], g: &[T], squared: bool) -> (Sums, bool) {
    let mut apg = [T::ZERO; LANES];
    let mut ap = [T::ZERO; LANES];
    let mut ag = [T::ZERO; LANES];
    let mut ok = true;
    let pc = p.chunks_exact(LANES);
    let gc = g.chunks_exact(LANES);
    let (pr, gr) = (pc.remainder(), gc.remainder());
    for (x, y) in pc.zip(gc) {
        for j in 0..LANES {
            let (a, b) = (x[j], y[j]);
            ok &= unit(a) & unit(b);
            apg[j] = apg[j] + a * b;
            if squared {
                ap[j] = ap[j] + a * a;
                ag[j] = ag[j] + b * b;
            } else {
                ap[j] = ap[j] + a;
                ag[j] = ag[j] + b;
            }
        }
    }
    for (j, (&a, &b)) in pr.iter().zip(gr).enumerate() {
        ok &= unit(a) & unit(b);
        apg[j] = apg[j] + a * b;
        if squared {
            ap[j] = ap[j] + a * a;
            ag[j] = ag[j] + b * b;
        } else {
            ap[j] = ap[j] + a;
            ag[j] = ag[j] + b;
        }
    }
    (
        Sums {
            pg: lanes_to_f64(&apg),
            p: lanes_to_f64(&ap),
            g: lanes_to_f64(&ag),
        },
        ok,
    )
}

/// `Σp·g, Σp, Σg` (or squares), validating every element.
pub fn soft_sums<T: Float>(p: &[T], g: &[T], squared: bool) -> Result<Sums, Bad> {
    let mut total = Sums::default();
    let mut offset = 0;
    for (pb, gb) in p.chunks(LANES * ROWS).zip(g.chunks(LANES * ROWS)) {
        let (s, ok) = block_sums(pb, gb, squared);
        if !ok {
            if let Some(bad) = find_bad(pb, gb) {
                return Err(bad.shift(offset));
            }
        }
        total = total.add(s);
        offset += pb.len();
    }
    Ok(total)
}

/// Sums over the voxels where `keep(i)` holds: `Σp·g, Σp, Σg` (or squares) and the count of
/// kept voxels. `g(i)` gives the target value of voxel `i`. Every prediction value is
/// validated, kept or not; target values only where kept.
#[inline(always)]
pub fn soft_sums_where<T: Float>(
    p: &[T],
    squared: bool,
    g: impl FnMut(usize) -> T,
    keep: impl FnMut(usize) -> bool,
) -> Result<(Sums, u64), Bad> {
    sums_where(p, g, keep, |a, v| {
        if squared {
            (a * v, a * a, v * v)
        } else {
            (a * v, a, v)
        }
    })
}

/// Sums over the voxels where `keep(i)` holds of `Σ|p − g|` (in the `pg` field), `Σp` and `Σg`,
/// and the count of kept voxels: the soft-label statistics. Validation as [`soft_sums_where`].
#[inline(always)]
pub fn soft_label_sums_where<T: Float>(
    p: &[T],
    g: impl FnMut(usize) -> T,
    keep: impl FnMut(usize) -> bool,
) -> Result<(Sums, u64), Bad> {
    sums_where(p, g, keep, |a, v| (if a > v { a - v } else { v - a }, a, v))
}

/// The three sums of `terms(p, g)` over kept voxels, in lanes of [`ROWS`]-row blocks (the
/// accumulation of the SIMD kernels), with the count of kept voxels.
#[inline(always)]
fn sums_where<T: Float>(
    p: &[T],
    mut g: impl FnMut(usize) -> T,
    mut keep: impl FnMut(usize) -> bool,
    terms: impl Fn(T, T) -> (T, T, T),
) -> Result<(Sums, u64), Bad> {
    let mut total = Sums::default();
    let mut kept = 0u64;
    for (b, pb) in p.chunks(LANES * ROWS).enumerate() {
        let base = b * LANES * ROWS;
        let mut a0 = [T::ZERO; LANES];
        let mut a1 = [T::ZERO; LANES];
        let mut a2 = [T::ZERO; LANES];
        for (j, &a) in pb.iter().enumerate() {
            let i = base + j;
            if !unit(a) {
                return Err(Bad::Pred(i));
            }
            if keep(i) {
                let v = g(i);
                if !unit(v) {
                    return Err(Bad::Target(i));
                }
                let l = j % LANES;
                kept += 1;
                let (x, y, z) = terms(a, v);
                a0[l] = a0[l] + x;
                a1[l] = a1[l] + y;
                a2[l] = a2[l] + z;
            }
        }
        total = total.add(Sums {
            pg: lanes_to_f64(&a0),
            p: lanes_to_f64(&a1),
            g: lanes_to_f64(&a2),
        });
    }
    Ok((total, kept))
}

/// `∂I/∂p` of the soft-label intersection `I = (P + G − Σ|p − g|)/2` at one voxel:
/// `(1 − sign(p − g))/2`, so 1 below the target and 0 above it. At the kink `p = g` any value
/// in `[0, 1]` is a subgradient; we take `g`, the gradient of the classic `Σp·g`, so that
/// binary targets give the classic gradient everywhere (PyTorch's `sign(0) = 0`, which MONAI
/// inherits, gives ½ there).
#[inline(always)]
pub fn soft_label_slope<T: Float>(p: T, g: T) -> T {
    if p < g {
        T::ONE
    } else if p > g {
        T::ZERO
    } else {
        g
    }
}

/// `outᵢ = a + b·gᵢ + c·pᵢ` (a plain map: the compiler vectorises it).
pub fn affine<T: Float>(out: &mut [T], g: &[T], p: &[T], a: f64, b: f64, c: f64) {
    let (a, b) = (T::from_f64(a), T::from_f64(b));
    if c == 0.0 {
        for (o, &gi) in out.iter_mut().zip(g) {
            *o = a + b * gi;
        }
    } else {
        let c = T::from_f64(c);
        for ((o, &gi), &pi) in out.iter_mut().zip(g).zip(p) {
            *o = a + b * gi + c * pi;
        }
    }
}

/// Exact counts of `p ≥ t`, `g ≥ t` and both, validating every element.
pub fn threshold_counts<T: Float>(p: &[T], g: &[T], t: T) -> Result<Counts, Bad> {
    let mut total = Counts::default();
    let mut offset = 0;
    for (pb, gb) in p.chunks(1024).zip(g.chunks(1024)) {
        let mut ok = true;
        let (mut both, mut np, mut ng) = (0u32, 0u32, 0u32);
        for (&a, &b) in pb.iter().zip(gb) {
            ok &= unit(a) & unit(b);
            let x = (a >= t) as u32;
            let y = (b >= t) as u32;
            both += x & y;
            np += x;
            ng += y;
        }
        if !ok {
            if let Some(bad) = find_bad(pb, gb) {
                return Err(bad.shift(offset));
            }
        }
        total = total.add(Counts {
            both: both as u64,
            pred: np as u64,
            target: ng as u64,
        });
        offset += pb.len();
    }
    Ok(total)
}

/// Exact counts of non-zero bytes in `p`, in `g`, and in both.
pub fn mask_counts(p: &[u8], g: &[u8]) -> Counts {
    let mut total = Counts::default();
    for (pb, gb) in p.chunks(1 << 16).zip(g.chunks(1 << 16)) {
        let (mut both, mut np, mut ng) = (0u32, 0u32, 0u32);
        for (&a, &b) in pb.iter().zip(gb) {
            let x = (a != 0) as u32;
            let y = (b != 0) as u32;
            both += x & y;
            np += x;
            ng += y;
        }
        total = total.add(Counts {
            both: both as u64,
            pred: np as u64,
            target: ng as u64,
        });
    }
    total
}

/// Per-label counts over a pair of label maps in one pass (see [`super::label_counts`]).
///
/// Segmentation maps are spatially coherent, so the pass counts runs of equal
/// `(prediction, target)` pairs in registers and touches the tables once per run, which
/// avoids the store-to-load stall of incrementing the same counter voxel after voxel.
pub fn label_counts<L: Label>(
    pred: &[L],
    target: &[L],
    ignore: Option<i64>,
    out: &mut [Confusion],
) -> Result<u64, Bad> {
    let nl = out.len() as u64;
    let mut counted = 0u64;
    let mut run = 0u64;
    let mut cur = (usize::MAX, usize::MAX);
    let flush = |out: &mut [Confusion], (p, t): (usize, usize), run: u64| {
        if run > 0 {
            if p == t {
                out[p].tp += run;
            } else {
                out[p].fp += run;
                out[t].fn_ += run;
            }
        }
    };
    for (i, (&pv, &tv)) in pred.iter().zip(target).enumerate() {
        let t = tv.to_i64();
        if Some(t) == ignore || Some(pv.to_i64()) == ignore {
            continue;
        }
        if t as u64 >= nl {
            flush(out, cur, run);
            return Err(Bad::Target(i));
        }
        let p = pv.to_i64();
        if p as u64 >= nl {
            flush(out, cur, run);
            return Err(Bad::Pred(i));
        }
        let key = (p as usize, t as usize);
        if key == cur {
            run += 1;
        } else {
            flush(out, cur, run);
            cur = key;
            run = 1;
        }
        counted += 1;
    }
    flush(out, cur, run);
    Ok(counted)
}

/// The end of a SIMD per-label count: adds the per-label counts of the vector part (`local`,
/// as both/pred/target) to `out` as TP/FP/FN, counts the voxels from `from` on with
/// [`label_counts`], and returns every counted voxel (`counted` from the vector part).
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
pub(crate) fn finish_label_counts(
    out: &mut [Confusion],
    local: &[Counts],
    pred: &[u8],
    target: &[u8],
    from: usize,
    ignore: Option<i64>,
    counted: u64,
) -> Result<u64, Bad> {
    for (o, l) in out.iter_mut().zip(local) {
        o.tp += l.both;
        o.fp += l.pred - l.both;
        o.fn_ += l.target - l.both;
    }
    let tail =
        label_counts(&pred[from..], &target[from..], ignore, out).map_err(|b| b.shift(from))?;
    Ok(counted + tail)
}

/// Channels of one softmax tile (voxels processed together per channel pass).
pub const SOFTMAX_TILE: usize = 256;

/// `out = σ(z)` element-wise ([`Float::sigmoid`]). Written as a plain loop over a branch-free
/// body so that the x86 entry points, which compile it with AVX2 or AVX-512 enabled, vectorize it.
#[inline(always)]
pub fn sigmoid_all<T: Float>(z: &[T], out: &mut [T]) {
    for (o, &v) in out.iter_mut().zip(z) {
        *o = v.sigmoid();
    }
}

/// In place over `out` (holding `p = σ(z)`): `∂/∂z = (a + b·g + c·p)·p·(1 − p)` against a
/// dense target row `g` (the sigmoid chain rule of a pair without mask or soft labels).
#[inline(always)]
pub fn sigmoid_chain_dense<T: Float>(g: &[T], coef: (T, T, T), out: &mut [T]) {
    let (a, b, cc) = coef;
    for (o, &gi) in out.iter_mut().zip(g) {
        let p = *o;
        *o = (a + b * gi + cc * p) * p * (T::ONE - p);
    }
}

/// [`sigmoid_chain_dense`] against `g = [label = class]`, 0 where the label is `ignore`.
#[inline(always)]
pub fn sigmoid_chain_labels<T: Float, L: Label>(
    labels: &[L],
    class: i64,
    ignore: Option<i64>,
    coef: (T, T, T),
    out: &mut [T],
) {
    let (a, b, cc) = coef;
    let (has_ignore, ignore) = (ignore.is_some(), ignore.unwrap_or(0));
    for (o, &l) in out.iter_mut().zip(labels) {
        let l = l.to_i64();
        let keep = !(has_ignore & (l == ignore));
        let g = if l == class { T::ONE } else { T::ZERO };
        let p = *o;
        let d = (a + b * g + cc * p) * p * (T::ONE - p);
        *o = if keep { d } else { T::ZERO };
    }
}

/// The channels of a run of voxels, as rows of equal length.
pub trait Rows<T> {
    /// Channel `c`'s row.
    fn row(&self, c: usize) -> &[T];
}

/// [`Rows`] that can be written.
pub trait RowsMut<T> {
    /// Channel `c`'s row.
    fn row_mut(&mut self, c: usize) -> &mut [T];
}

/// One sample's `[C, S]` block: row `c` is `data[c·S..(c + 1)·S]`.
pub struct Block<D>(pub D, pub usize);

impl<T> Rows<T> for Block<&[T]> {
    #[inline(always)]
    fn row(&self, c: usize) -> &[T] {
        &self.0[c * self.1..][..self.1]
    }
}

impl<T> RowsMut<T> for Block<&mut [T]> {
    #[inline(always)]
    fn row_mut(&mut self, c: usize) -> &mut [T] {
        &mut self.0[c * self.1..][..self.1]
    }
}

/// A run of voxels of every channel, one slice per channel (how a sample is cut into chunks
/// of voxels for threads).
impl<T> Rows<T> for [&[T]] {
    #[inline(always)]
    fn row(&self, c: usize) -> &[T] {
        self[c]
    }
}

impl<T> RowsMut<T> for [&mut [T]] {
    #[inline(always)]
    fn row_mut(&mut self, c: usize) -> &mut [T] {
        self[c]
    }
}

/// The softmax over the channel axis of `z` (`[batch, channels, spatial]`, finite) into `out`,
/// computed stably: `e^{z_c − max_k z_k} / Σ_k e^{z_k − max}`, in tiles of
/// [`SOFTMAX_TILE`] voxels so that the maxima and sums stay in registers or L1.
#[inline(always)]
pub fn softmax_all<T: Float>(batch: usize, c_n: usize, s_n: usize, z: &[T], out: &mut [T]) {
    let block = c_n * s_n;
    for n in 0..batch {
        softmax_rows(
            c_n,
            s_n,
            &Block(&z[n * block..][..block], s_n),
            &mut Block(&mut out[n * block..][..block], s_n),
        );
    }
}

/// [`softmax_all`] over a run of voxels given as one slice per channel (all of one length).
#[inline(always)]
pub fn softmax_slices<T: Float>(z: &[&[T]], out: &mut [&mut [T]]) {
    let width = out.first().map_or(0, |r| r.len());
    softmax_rows(out.len(), width, z, out);
}

/// The softmax of `width` voxels of `c_n` channels: every voxel on its own, so any cut of
/// the voxels gives the same bits.
#[inline(always)]
fn softmax_rows<T: Float, Z: Rows<T> + ?Sized, O: RowsMut<T> + ?Sized>(
    c_n: usize,
    width: usize,
    z: &Z,
    out: &mut O,
) {
    let mut start = 0;
    while start < width {
        let len = SOFTMAX_TILE.min(width - start);
        let mut max = [T::ZERO; SOFTMAX_TILE];
        let mut sum = [T::ZERO; SOFTMAX_TILE];
        max[..len].copy_from_slice(&z.row(0)[start..start + len]);
        for c in 1..c_n {
            for (m, &v) in max[..len].iter_mut().zip(&z.row(c)[start..start + len]) {
                *m = if v > *m { v } else { *m };
            }
        }
        for c in 0..c_n {
            let row = &mut out.row_mut(c)[start..start + len];
            for (((o, &v), &m), s) in row
                .iter_mut()
                .zip(&z.row(c)[start..start + len])
                .zip(&max[..len])
                .zip(sum[..len].iter_mut())
            {
                let e = (v - m).exp_nonpositive();
                *o = e;
                *s = *s + e;
            }
        }
        for c in 0..c_n {
            for (o, &s) in out.row_mut(c)[start..start + len]
                .iter_mut()
                .zip(&sum[..len])
            {
                *o = *o / s;
            }
        }
        start += len;
    }
}

/// [`soft_sums_where`] for a label-map target without a voxel mask: `g = [label = class]`,
/// voxels whose label is `ignore` left out. Same lanes, same order of additions, so the same
/// bits; written branch-free over rows of [`LANES`] (validation first, per block, with the
/// first bad element searched only when a block fails) so that it vectorizes when compiled
/// with AVX2 or AVX-512 (the x86 entry points).
#[inline(always)]
pub fn label_sums<T: Float, L: Label>(
    p: &[T],
    labels: &[L],
    class: i64,
    ignore: Option<i64>,
    squared: bool,
) -> Result<(Sums, u64), Bad> {
    let n = p.len().min(labels.len());
    let (p, labels) = (&p[..n], &labels[..n]);
    let (has_ignore, ignore) = (ignore.is_some(), ignore.unwrap_or(0));
    let mut total = Sums::default();
    let mut kept = 0u64;
    for (b, (pb, lb)) in p
        .chunks(LANES * ROWS)
        .zip(labels.chunks(LANES * ROWS))
        .enumerate()
    {
        if !pb.iter().fold(true, |ok, &a| ok & unit(a)) {
            let j = pb.iter().position(|&a| !unit(a)).unwrap_or(0);
            return Err(Bad::Pred(b * LANES * ROWS + j));
        }
        let mut a0 = [T::ZERO; LANES];
        let mut a1 = [T::ZERO; LANES];
        let mut a2 = [T::ZERO; LANES];
        let mut count = [0u32; LANES];
        let rows = pb.chunks_exact(LANES).zip(lb.chunks_exact(LANES));
        for (pr, lr) in rows {
            for k in 0..LANES {
                let (a, l) = (pr[k], lr[k].to_i64());
                let keep = !(has_ignore & (l == ignore));
                let v = if l == class { T::ONE } else { T::ZERO };
                let (x, y, z) = if squared {
                    (a * v, a * a, v * v)
                } else {
                    (a * v, a, v)
                };
                a0[k] = if keep { a0[k] + x } else { a0[k] };
                a1[k] = if keep { a1[k] + y } else { a1[k] };
                a2[k] = if keep { a2[k] + z } else { a2[k] };
                count[k] += u32::from(keep);
            }
        }
        let tail = pb.len() / LANES * LANES;
        for (k, (&a, &l)) in pb[tail..].iter().zip(&lb[tail..]).enumerate() {
            let l = l.to_i64();
            if has_ignore && l == ignore {
                continue;
            }
            let v = if l == class { T::ONE } else { T::ZERO };
            let (x, y, z) = if squared {
                (a * v, a * a, v * v)
            } else {
                (a * v, a, v)
            };
            a0[k] = a0[k] + x;
            a1[k] = a1[k] + y;
            a2[k] = a2[k] + z;
            count[k] += 1;
        }
        kept += count.iter().map(|&c| u64::from(c)).sum::<u64>();
        total = total.add(Sums {
            pg: lanes_to_f64(&a0),
            p: lanes_to_f64(&a1),
            g: lanes_to_f64(&a2),
        });
    }
    Ok((total, kept))
}

/// Voxels per tile of [`softmax_chain_labels`].
const CHAIN_TILE: usize = 256;

/// The softmax chain rule of one sample against a label map, without a voxel mask:
/// `grad` holds `p` (`[C, S]`) and becomes `p_c·(d_c − Σ_k p_k·d_k)` with
/// `d_c = a_c + b_c·[label = c] + c_c·p_c`, and `d_c = 0` where the label is `ignore`.
/// The same operations in the same order as the general chain of `loss.rs`, branch-free, so
/// that it vectorizes when compiled with AVX2 or AVX-512 (the x86 entry points).
#[inline(always)]
pub fn softmax_chain_labels<T: Float, L: Label>(
    labels: &[L],
    ignore: Option<i64>,
    coef: &[(T, T, T)],
    grad: &mut [T],
) {
    softmax_chain_label_rows(labels, ignore, coef, &mut Block(grad, labels.len()));
}

/// [`softmax_chain_labels`] over a run of voxels given as one slice per channel.
#[inline(always)]
pub fn softmax_chain_labels_slices<T: Float, L: Label>(
    labels: &[L],
    ignore: Option<i64>,
    coef: &[(T, T, T)],
    rows: &mut [&mut [T]],
) {
    softmax_chain_label_rows(labels, ignore, coef, rows);
}

/// The chain rule of `labels.len()` voxels: every voxel on its own (any cut, same bits).
#[inline(always)]
fn softmax_chain_label_rows<T: Float, L: Label, R: RowsMut<T> + ?Sized>(
    labels: &[L],
    ignore: Option<i64>,
    coef: &[(T, T, T)],
    grad: &mut R,
) {
    let s_n = labels.len();
    let (has_ignore, ignore) = (ignore.is_some(), ignore.unwrap_or(0));
    let mut start = 0;
    while start < s_n {
        let len = CHAIN_TILE.min(s_n - start);
        let mut acc = [T::ZERO; CHAIN_TILE];
        let tile = &labels[start..start + len];
        for (c, &(a, b, cc)) in coef.iter().enumerate() {
            let row = &grad.row_mut(c)[start..start + len];
            for ((&p, acc), &l) in row.iter().zip(acc[..len].iter_mut()).zip(tile) {
                let l = l.to_i64();
                let keep = !(has_ignore & (l == ignore));
                let g = if l == c as i64 { T::ONE } else { T::ZERO };
                let t = *acc + p * (a + b * g + cc * p);
                *acc = if keep { t } else { *acc };
            }
        }
        for (c, &(a, b, cc)) in coef.iter().enumerate() {
            let row = &mut grad.row_mut(c)[start..start + len];
            for ((o, &acc), &l) in row.iter_mut().zip(acc[..len].iter()).zip(tile) {
                let l = l.to_i64();
                let keep = !(has_ignore & (l == ignore));
                let g = if l == c as i64 { T::ONE } else { T::ZERO };
                let p = *o;
                let d = if keep { a + b * g + cc * p } else { T::ZERO };
                *o = p * (d - acc);
            }
        }
        start += len;
    }
}
