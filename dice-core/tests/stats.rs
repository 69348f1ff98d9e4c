//! Sufficient statistics: the SIMD kernels against a plain f64 reference at every alignment and
//! around every block boundary, validation naming the right element, chunk-merge and
//! permutation invariance.

use dice_core::{DiceError, Moment, Operand, SoftStats};
use proptest::prelude::*;

fn naive(p: &[f64], g: &[f64], squared: bool) -> (f64, f64, f64) {
    let mut r = (0.0, 0.0, 0.0);
    for (&a, &b) in p.iter().zip(g) {
        r.0 += a * b;
        if squared {
            r.1 += a * a;
            r.2 += b * b;
        } else {
            r.1 += a;
            r.2 += b;
        }
    }
    r
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f64 / (1u64 << 24) as f64
    }
}

/// Every start offset within a cache line and lengths around the SIMD block sizes.
#[test]
fn kernels_match_reference_at_every_alignment_and_length() {
    let mut rng = Lcg(7);
    let big: Vec<f32> = (0..5000).map(|_| rng.next() as f32).collect();
    let gbig: Vec<f32> = (0..5000)
        .map(|_| {
            if rng.next() > 0.4 {
                1.0
            } else {
                rng.next() as f32
            }
        })
        .collect();
    let big64: Vec<f64> = big.iter().map(|&v| v as f64).collect();
    let gbig64: Vec<f64> = gbig.iter().map(|&v| v as f64).collect();
    for offset in 0..17 {
        for len in [
            0usize, 1, 7, 15, 16, 31, 32, 63, 64, 127, 128, 255, 256, 257, 511, 512, 513, 1000,
            2049, 4000,
        ] {
            for squared in [false, true] {
                let moment = if squared {
                    Moment::Squared
                } else {
                    Moment::Linear
                };
                let (p, g) = (&big[offset..offset + len], &gbig[offset..offset + len]);
                let (p64, g64) = (&big64[offset..offset + len], &gbig64[offset..offset + len]);
                let want = naive(p64, g64, squared);
                let s = SoftStats::of(p, g, moment).unwrap();
                assert!(
                    close(s.intersection, want.0, 1e-6),
                    "f32 I off={offset} len={len}"
                );
                assert!(close(s.pred, want.1, 1e-6), "f32 P off={offset} len={len}");
                assert!(
                    close(s.target, want.2, 1e-6),
                    "f32 G off={offset} len={len}"
                );
                assert_eq!(s.voxels, len as u64);
                let s = SoftStats::of(p64, g64, moment).unwrap();
                assert!(
                    close(s.intersection, want.0, 1e-13),
                    "f64 I off={offset} len={len}"
                );
                assert!(close(s.pred, want.1, 1e-13), "f64 P off={offset} len={len}");
                assert!(
                    close(s.target, want.2, 1e-13),
                    "f64 G off={offset} len={len}"
                );
                // The prediction and target may also be misaligned relative to each other.
                let (p2, g2) = (&big[offset..offset + len], &gbig[3..3 + len]);
                let want2 = naive(&big64[offset..offset + len], &gbig64[3..3 + len], squared);
                let s2 = SoftStats::of(p2, g2, moment).unwrap();
                assert!(close(s2.intersection, want2.0, 1e-6));
            }
        }
    }
}

/// A bad value anywhere (head, SIMD body, tail) is reported at its own index.
#[test]
fn invalid_values_are_named_at_their_index() {
    for len in [5usize, 300, 1000] {
        for pos in [0, 1, len / 2, len - 1] {
            for (bad, nonfinite) in [
                (f32::NAN, true),
                (f32::INFINITY, true),
                (-0.5, false),
                (1.5, false),
                (-f32::INFINITY, true),
            ] {
                let mut p = vec![0.5f32; len];
                let g = vec![1.0f32; len];
                p[pos] = bad;
                let e = SoftStats::of(&p, &g, Moment::Linear).unwrap_err();
                match e {
                    DiceError::NonFinite { operand, index } => {
                        assert!(nonfinite);
                        assert_eq!((operand, index), (Operand::Prediction, pos));
                    }
                    DiceError::OutOfRange {
                        operand,
                        index,
                        value,
                    } => {
                        assert!(!nonfinite);
                        assert_eq!(
                            (operand, index, value),
                            (Operand::Prediction, pos, bad as f64)
                        );
                    }
                    e => panic!("unexpected {e:?}"),
                }
                // Same in the target, and in f64.
                let e = SoftStats::of(&g, &p, Moment::Squared).unwrap_err();
                assert!(
                    matches!(e, DiceError::NonFinite { operand: Operand::Target, index } | DiceError::OutOfRange { operand: Operand::Target, index, .. } if index == pos)
                );
                let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
                let g64 = vec![1.0f64; len];
                let e = SoftStats::of(&p64, &g64, Moment::Linear).unwrap_err();
                assert!(
                    matches!(e, DiceError::NonFinite { operand: Operand::Prediction, index } | DiceError::OutOfRange { operand: Operand::Prediction, index, .. } if index == pos)
                );
            }
        }
    }
}

/// −0.0 is a valid zero (its bits exceed those of 1.0, which the fast check must not mistake).
#[test]
fn negative_zero_is_accepted() {
    let mut p = vec![0.25f32; 1000];
    p[500] = -0.0;
    p[3] = -0.0;
    let g = vec![1.0f32; 1000];
    let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
    assert!(close(s.pred, 998.0 * 0.25, 1e-9));
    let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
    let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
    assert!(SoftStats::of(&p64, &g64, Moment::Linear).is_ok());
    // After a block whose only large bits were −0.0, later blocks are still checked.
    let mut q = vec![0.25f32; 5000];
    q[10] = -0.0;
    q[700] = -0.0;
    q[3000] = 7.0;
    let gq = vec![0.0f32; 5000];
    for (a, b, op) in [(&q, &gq, Operand::Prediction), (&gq, &q, Operand::Target)] {
        assert_eq!(
            SoftStats::of(a, b, Moment::Squared).unwrap_err(),
            DiceError::OutOfRange {
                operand: op,
                index: 3000,
                value: 7.0
            }
        );
        assert_eq!(
            dice_core::hard::confusion_from_probabilities(a, b, 0.5).unwrap_err(),
            DiceError::OutOfRange {
                operand: op,
                index: 3000,
                value: 7.0
            }
        );
    }
    // A bad value after a −0.0 in the same block is still caught.
    p[501] = f32::NAN;
    assert_eq!(
        SoftStats::of(&p, &g, Moment::Linear).unwrap_err(),
        DiceError::NonFinite {
            operand: Operand::Prediction,
            index: 501
        }
    );
}

#[test]
fn length_mismatch_and_moment_mismatch_are_errors() {
    let e = SoftStats::of(&[0.5f32; 3], &[1.0f32; 4], Moment::Linear).unwrap_err();
    assert_eq!(
        e,
        DiceError::LengthMismatch {
            operand: Operand::Target,
            expected: 3,
            found: 4
        }
    );
    let a = SoftStats::zero(Moment::Linear);
    let b = SoftStats::zero(Moment::Squared);
    assert_eq!(a.merge(&b).unwrap_err(), DiceError::MomentMismatch);
}

fn pair_strategy() -> impl Strategy<Value = (Vec<f32>, Vec<f32>)> {
    (0usize..3000).prop_flat_map(|n| {
        (
            proptest::collection::vec(0.0f32..=1.0, n),
            proptest::collection::vec(prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..=1.0], n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Statistics of chunks, merged, equal the statistics of the whole slice.
    #[test]
    fn chunked_and_merged_equals_whole((p, g) in pair_strategy(), cuts in proptest::collection::vec(0usize..3000, 0..6), squared in any::<bool>()) {
        let moment = if squared { Moment::Squared } else { Moment::Linear };
        let whole = SoftStats::of(&p, &g, moment).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(p.len())).collect();
        cuts.push(0);
        cuts.push(p.len());
        cuts.sort_unstable();
        let mut acc = SoftStats::zero(moment);
        for w in cuts.windows(2) {
            acc.update(&p[w[0]..w[1]], &g[w[0]..w[1]]).unwrap();
        }
        prop_assert_eq!(acc.voxels, whole.voxels);
        prop_assert!(close(acc.intersection, whole.intersection, 1e-6));
        prop_assert!(close(acc.pred, whole.pred, 1e-6));
        prop_assert!(close(acc.target, whole.target, 1e-6));
    }

    /// Reordering the voxels (the same permutation for p and g) does not change the statistics.
    #[test]
    fn permutation_invariant((p, g) in pair_strategy(), seed in any::<u64>()) {
        let n = p.len();
        let mut idx: Vec<usize> = (0..n).collect();
        let mut rng = Lcg(seed);
        for i in (1..n).rev() {
            let j = (rng.next() * (i + 1) as f64) as usize;
            idx.swap(i, j.min(i));
        }
        let pp: Vec<f32> = idx.iter().map(|&i| p[i]).collect();
        let gg: Vec<f32> = idx.iter().map(|&i| g[i]).collect();
        let a = SoftStats::of(&p, &g, Moment::Linear).unwrap();
        let b = SoftStats::of(&pp, &gg, Moment::Linear).unwrap();
        prop_assert!(close(a.intersection, b.intersection, 1e-6));
        prop_assert!(close(a.pred, b.pred, 1e-6));
        prop_assert!(close(a.target, b.target, 1e-6));
    }

    /// Swapping prediction and target swaps P and G and keeps I: Dice is symmetric.
    #[test]
    fn symmetric((p, g) in pair_strategy()) {
        let a = SoftStats::of(&p, &g, Moment::Linear).unwrap();
        let b = SoftStats::of(&g, &p, Moment::Linear).unwrap();
        prop_assert!(close(a.intersection, b.intersection, 1e-6));
        prop_assert!(close(a.pred, b.target, 1e-6));
        let da = dice_core::score::dice(a.intersection, a.pred, a.target, 0.0, 0.0);
        let db = dice_core::score::dice(b.intersection, b.pred, b.target, 0.0, 0.0);
        match (da, db) {
            (Some(x), Some(y)) => prop_assert!(close(x, y, 1e-6)),
            (x, y) => prop_assert_eq!(x, y),
        }
    }

    /// Sums of valid inputs are bounded: 0 ≤ I ≤ min(P, G) (linear moments) and the Dice is in [0, 1].
    #[test]
    fn bounded((p, g) in pair_strategy()) {
        let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
        prop_assert!(s.intersection >= 0.0);
        prop_assert!(s.intersection <= s.pred * (1.0 + 1e-6) + 1e-9);
        prop_assert!(s.intersection <= s.target * (1.0 + 1e-6) + 1e-9);
        if let Some(d) = dice_core::score::dice(s.intersection, s.pred, s.target, 0.0, 0.0) {
            prop_assert!((0.0..=1.0 + 1e-6).contains(&d));
        }
    }
}
