//! Shared fixtures of the workspace's integration tests, benches and examples: a small
//! deterministic random generator and synthetic segmentation volumes. No library code of the
//! project lives here; the crates are `dice-core`, `dice-ffi` and `dice-tch`.

/// xorshift64*: deterministic, fast, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[0, 1)` with 24 random bits.
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// A pair of synthetic label volumes of `d³` voxels with `labels` labels (0 = background):
/// ellipsoids for the reference, and the same ellipsoids shifted and resized for the
/// prediction, so that every label has a Dice between about 0.6 and 0.95.
pub fn label_volumes(d: usize, labels: u8, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(seed);
    // (centre, radii, shift of the prediction, scale of the prediction)
    type Blob = ([f64; 3], [f64; 3], [f64; 3], f64);
    let shapes: Vec<Blob> = (1..labels)
        .map(|_| {
            let c = [
                0.25 + 0.5 * rng.f64(),
                0.25 + 0.5 * rng.f64(),
                0.25 + 0.5 * rng.f64(),
            ];
            let r = [
                0.06 + 0.14 * rng.f64(),
                0.06 + 0.14 * rng.f64(),
                0.06 + 0.14 * rng.f64(),
            ];
            let shift = [
                0.03 * (rng.f64() - 0.5),
                0.03 * (rng.f64() - 0.5),
                0.03 * (rng.f64() - 0.5),
            ];
            (c, r, shift, 0.9 + 0.2 * rng.f64())
        })
        .collect();
    let mut gt = vec![0u8; d * d * d];
    let mut pr = vec![0u8; d * d * d];
    let inv = 1.0 / d as f64;
    for z in 0..d {
        for y in 0..d {
            for x in 0..d {
                let pos = [
                    (x as f64 + 0.5) * inv,
                    (y as f64 + 0.5) * inv,
                    (z as f64 + 0.5) * inv,
                ];
                let i = (z * d + y) * d + x;
                for (l, (c, r, shift, scale)) in shapes.iter().enumerate() {
                    let q = |k: usize, s: f64, sc: f64| ((pos[k] - c[k] - s) / (r[k] * sc)).powi(2);
                    if q(0, 0.0, 1.0) + q(1, 0.0, 1.0) + q(2, 0.0, 1.0) <= 1.0 {
                        gt[i] = l as u8 + 1;
                    }
                    if q(0, shift[0], *scale) + q(1, shift[1], *scale) + q(2, shift[2], *scale)
                        <= 1.0
                    {
                        pr[i] = l as u8 + 1;
                    }
                }
            }
        }
    }
    (pr, gt)
}

/// `n` random probabilities and a random binary target (about half positive).
pub fn random_pair_f32(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let p = (0..n).map(|_| rng.f32()).collect();
    let g = (0..n)
        .map(|_| if rng.next_u64() >> 63 == 1 { 1.0 } else { 0.0 })
        .collect();
    (p, g)
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// A pair of `n³` `u8` label volumes with eight organ-like structures (liver, spleen, kidneys,
/// pancreas, aorta, gallbladder and a small lesion, sized as in an abdominal CT), the
/// prediction's shifted by about a voxel and scaled a few percent with a wobbling boundary:
/// `(prediction, reference)`, x fastest.
pub fn organ_volumes(n: usize) -> (Vec<u8>, Vec<u8>) {
    // label: centre and radii as fractions of n.
    const ORGANS: [([f64; 3], [f64; 3]); 8] = [
        ([0.35, 0.45, 0.50], [0.18, 0.14, 0.12]),
        ([0.72, 0.42, 0.50], [0.07, 0.06, 0.08]),
        ([0.33, 0.62, 0.45], [0.05, 0.04, 0.07]),
        ([0.67, 0.62, 0.45], [0.05, 0.04, 0.07]),
        ([0.50, 0.55, 0.50], [0.12, 0.03, 0.03]),
        ([0.50, 0.70, 0.50], [0.015, 0.015, 0.30]),
        ([0.38, 0.30, 0.45], [0.03, 0.025, 0.035]),
        ([0.30, 0.42, 0.62], [0.012, 0.012, 0.012]),
    ];
    let nf = n as f64;
    let mut pred = vec![0u8; n * n * n];
    let mut gt = vec![0u8; n * n * n];
    for (k, (c, r)) in ORGANS.iter().enumerate() {
        let label = k as u8 + 1;
        let shift = [0.004 * nf, -0.003 * nf, 0.002 * nf];
        let lo: Vec<usize> = (0..3)
            .map(|a| ((c[a] - r[a] * 1.2) * nf).floor().max(0.0) as usize)
            .collect();
        let hi: Vec<usize> = (0..3)
            .map(|a| (((c[a] + r[a] * 1.2) * nf).ceil() as usize + 2).min(n))
            .collect();
        for z in lo[2]..hi[2] {
            for y in lo[1]..hi[1] {
                for x in lo[0]..hi[0] {
                    let p = [x as f64, y as f64, z as f64];
                    let q = |centre_shift: [f64; 3], scale: f64| -> f64 {
                        (0..3)
                            .map(|a| {
                                ((p[a] - c[a] * nf - centre_shift[a]) / (r[a] * nf * scale)).powi(2)
                            })
                            .sum()
                    };
                    let i = x + n * (y + n * z);
                    if q([0.0; 3], 1.0) <= 1.0 {
                        gt[i] = label;
                    }
                    let wobble = 1.03 + 0.02 * ((p[0] * 0.21).sin() * (p[1] * 0.17).cos());
                    if q(shift, wobble) <= 1.0 {
                        pred[i] = label;
                    }
                }
            }
        }
    }
    (pred, gt)
}

/// A `n³` mask of `count` ball-shaped lesions (radius 2 to 8 voxels) at random places, the
/// workload of connected-component benchmarks (about 1 % of the volume for 1,000 lesions in
/// 512³).
pub fn lesion_mask(n: usize, count: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut m = vec![0u8; n * n * n];
    for _ in 0..count {
        let r = 2 + rng.below(7) as i64;
        let c: Vec<i64> = (0..3).map(|_| rng.below(n as u64) as i64).collect();
        for z in (c[2] - r).max(0)..(c[2] + r + 1).min(n as i64) {
            for y in (c[1] - r).max(0)..(c[1] + r + 1).min(n as i64) {
                for x in (c[0] - r).max(0)..(c[0] + r + 1).min(n as i64) {
                    let d = (x - c[0]).pow(2) + (y - c[1]).pow(2) + (z - c[2]).pow(2);
                    if d <= r * r {
                        m[x as usize + n * (y as usize + n * z as usize)] = 1;
                    }
                }
            }
        }
    }
    m
}

/// [`organ_volumes`] with the prediction a segmentation network actually outputs: `(prediction,
/// reference)`. On top of the smooth shift and wobble, the prediction gets
/// - boundary jitter: about a tenth of its boundary voxels (a voxel with a 6-neighbour of another
///   label) take a neighbour's label, so boundaries are ragged at the voxel scale;
/// - false-positive islands: three small blobs (radius 1 to 3 voxels) of every label at random
///   places anywhere in the volume, far from the organ, which make each label's bounding box
///   nearly the whole volume (what costs surface metrics on real outputs);
/// - a hole: a ball of radius `n/32` carved out of the largest organ (label 1).
///
/// Deterministic for a given `(n, seed)`.
pub fn network_like_organ_volumes(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let (mut pred, gt) = organ_volumes(n);
    let mut rng = Rng::new(seed);
    let at = |x: usize, y: usize, z: usize| x + n * (y + n * z);
    // Jitter: decide from the smooth prediction, apply after, so flips do not cascade.
    let mut flips = Vec::new();
    for z in 1..n.saturating_sub(1) {
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                let v = pred[at(x, y, z)];
                let nb = [
                    pred[at(x - 1, y, z)],
                    pred[at(x + 1, y, z)],
                    pred[at(x, y - 1, z)],
                    pred[at(x, y + 1, z)],
                    pred[at(x, y, z - 1)],
                    pred[at(x, y, z + 1)],
                ];
                if let Some(&other) = nb.iter().find(|&&w| w != v) {
                    if rng.below(10) == 0 {
                        flips.push((at(x, y, z), other));
                    }
                }
            }
        }
    }
    for (i, v) in flips {
        pred[i] = v;
    }
    let ball = |pred: &mut [u8], c: [usize; 3], r: i64, v: u8| {
        for dz in -r..=r {
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx * dx + dy * dy + dz * dz > r * r {
                        continue;
                    }
                    let p = [c[0] as i64 + dx, c[1] as i64 + dy, c[2] as i64 + dz];
                    if p.iter().all(|&q| (0..n as i64).contains(&q)) {
                        pred[at(p[0] as usize, p[1] as usize, p[2] as usize)] = v;
                    }
                }
            }
        }
    };
    for label in 1..=8u8 {
        for _ in 0..3 {
            let c = [
                rng.below(n as u64) as usize,
                rng.below(n as u64) as usize,
                rng.below(n as u64) as usize,
            ];
            let r = 1 + rng.below(3) as i64;
            ball(&mut pred, c, r, label);
        }
    }
    // The liver's centre (organ_volumes' first organ), hollowed.
    let c = [0.35, 0.45, 0.50].map(|f: f64| (f * n as f64) as usize);
    ball(&mut pred, c, (n / 32).max(1) as i64, 0);
    (pred, gt)
}
