//! Exactness at the sizes where f32 breaks: 2^27 voxels (a 512³ volume).
//!
//! Naive sequential f32 summation stops growing at 2^24 and returns Dice = 1.0 on a random
//! 512³ pair; dice-core's sums must give the Dice of an exactly rounded f64 reference to 1e-9.

use dice_core::hard::{self, EmptyPolicy};
use dice_core::{score, Moment, SoftStats};
use dice_suite::random_pair_f32;

/// Neumaier-compensated f64 sums of exact f64 products: the reference.
fn exact_sums(p: &[f32], g: &[f32]) -> (f64, f64, f64) {
    fn add(s: &mut (f64, f64), x: f64) {
        let t = s.0 + x;
        if s.0.abs() >= x.abs() {
            s.1 += (s.0 - t) + x;
        } else {
            s.1 += (x - t) + s.0;
        }
        s.0 = t;
    }
    let (mut i, mut sp, mut sg) = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0));
    for (&a, &b) in p.iter().zip(g) {
        add(&mut i, a as f64 * b as f64); // a product of two f32 is exact in f64
        add(&mut sp, a as f64);
        add(&mut sg, b as f64);
    }
    (i.0 + i.1, sp.0 + sp.1, sg.0 + sg.1)
}

fn naive_f32_dice(p: &[f32], g: &[f32]) -> f32 {
    let (mut i, mut sp, mut sg) = (0.0f32, 0.0f32, 0.0f32);
    for (&a, &b) in p.iter().zip(g) {
        i += a * b;
        sp += a;
        sg += b;
    }
    2.0 * i / (sp + sg)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn soft_dice_of_512_cubed_f32_volume_matches_exact_reference() {
    let n = 1usize << 27;
    let (p, g) = random_pair_f32(n, 512);
    let (ri, rp, rg) = exact_sums(&p, &g);
    let want = score::dice(ri, rp, rg, 0.0, 0.0).unwrap();

    // The data is the failure case of naive f32 summation…
    assert_eq!(
        naive_f32_dice(&p, &g),
        1.0,
        "naive f32 summation should stagnate here"
    );
    // …which dice-core does not have, at any SIMD level this machine runs.
    let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
    let got = score::dice(s.intersection, s.pred, s.target, 0.0, 0.0).unwrap();
    eprintln!(
        "512^3 f32 ({}): dice {got:.15} reference {want:.15} relative error {:.2e}",
        dice_core::simd_level(),
        rel(got, want)
    );
    assert!(rel(got, want) < 1e-9, "dice {got} vs exact {want}");
    assert!(
        (got - 0.5).abs() < 1e-3,
        "a uniform p against a fair coin has Dice ≈ 0.5, got {got}"
    );
    for (a, b) in [(s.intersection, ri), (s.pred, rp), (s.target, rg)] {
        assert!(rel(a, b) < 1e-9, "sum {a} vs exact {b}");
    }
    assert_eq!(s.voxels, n as u64);

    // Slice by slice (512 slices of 512², as a device would see them), merged: the same.
    let mut acc = SoftStats::zero(Moment::Linear);
    for (pc, gc) in p.chunks(512 * 512).zip(g.chunks(512 * 512)) {
        acc.update(pc, gc).unwrap();
    }
    let merged = score::dice(acc.intersection, acc.pred, acc.target, 0.0, 0.0).unwrap();
    assert!(rel(merged, want) < 1e-9);

    // Hard counts are exact integers past 2^24.
    let c = hard::confusion_from_probabilities(&p, &g, 0.5).unwrap();
    let (mut tp, mut np, mut ng) = (0u64, 0u64, 0u64);
    for (&a, &b) in p.iter().zip(&g) {
        let (x, y) = (a >= 0.5, b >= 0.5);
        tp += u64::from(x && y);
        np += u64::from(x);
        ng += u64::from(y);
    }
    assert_eq!(
        (c.tp, c.tp + c.fp, c.tp + c.fn_, c.total()),
        (tp, np, ng, n as u64)
    );
    assert_eq!(
        c.dice(EmptyPolicy::DEFAULT),
        Some(2.0 * tp as f64 / (np + ng) as f64)
    );
}

/// The minimum: 2^25 elements, any SIMD level, squared moments too.
#[test]
fn two_to_the_25_never_stagnates() {
    let n = 1usize << 25;
    let (p, g) = random_pair_f32(n, 25);
    let (ri, rp, rg) = exact_sums(&p, &g);
    let want = score::dice(ri, rp, rg, 0.0, 0.0).unwrap();
    // At 2^25 naive f32 sums have already lost every addend below half an ulp of 2^23.
    let naive = naive_f32_dice(&p, &g) as f64;
    assert!(rel(naive, want) > 1e-5, "naive {naive} vs {want}");
    let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
    let got = score::dice(s.intersection, s.pred, s.target, 0.0, 0.0).unwrap();
    assert!(rel(got, want) < 1e-9, "{got} vs {want}");
    let s = SoftStats::of(&p, &g, Moment::Squared).unwrap();
    let (mut i, mut p2, mut g2) = ((0.0f64, 0.0f64), (0.0f64, 0.0f64), (0.0f64, 0.0f64));
    let kahan = |s: &mut (f64, f64), x: f64| {
        let y = x - s.1;
        let t = s.0 + y;
        s.1 = (t - s.0) - y;
        s.0 = t;
    };
    for (&a, &b) in p.iter().zip(&g) {
        kahan(&mut i, a as f64 * b as f64);
        kahan(&mut p2, a as f64 * a as f64);
        kahan(&mut g2, b as f64 * b as f64);
    }
    for (a, b) in [(s.intersection, i.0), (s.pred, p2.0), (s.target, g2.0)] {
        assert!(rel(a, b) < 1e-9, "{a} vs {b}");
    }
}

/// Adversarial input for f32 lanes: a constant value rounds the same way in every lane, so
/// errors add up instead of cancelling. The documented worst-case bound still holds.
#[test]
fn constant_inputs_stay_within_the_documented_bound() {
    let bound = (dice_core::ACCUMULATION_ROWS as f64 + 2.0) * 2f64.powi(-24) + 2f64.powi(-30);
    for v in [0.1f32, 0.3, 0.7, 1.0 / 3.0] {
        let n = 1 << 22;
        let p = vec![v; n];
        let g = vec![1.0f32; n];
        let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
        let exact = v as f64 * n as f64;
        assert!(
            rel(s.pred, exact) <= bound,
            "{v}: {:.3e} > {bound:.3e}",
            rel(s.pred, exact)
        );
        assert!(rel(s.intersection, exact) <= bound);
    }
}
