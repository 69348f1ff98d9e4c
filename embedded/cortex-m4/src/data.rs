//! The example's inputs, generated alike on the device and on the host (`tests/cortex_m4.rs`
//! includes this file): a two-class probability map with a jittered boundary, false-positive
//! specks and holes, its reference, and a pair of 4-label maps with scattered errors. Only
//! IEEE single operations that are exact to the bit on every platform (no fused operations).

/// Batch, classes and voxels of the soft example: `[1, 2, 2048]`, 4,096 elements.
pub const N: usize = 1;
/// Classes (background and foreground).
pub const C: usize = 2;
/// Voxels per sample.
pub const S: usize = 2048;
/// Slices the streamed example cuts the voxels into (a device that holds one slice at a time).
pub const SLICES: usize = 4;
/// Voxels of the label maps.
pub const VOXELS: usize = 4096;
/// Labels of the label maps (0 is the background).
pub const LABELS: usize = 4;

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
pub struct Lcg(u64);

impl Lcg {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }
    /// The next 31 bits.
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// A value in `[0, 1)` with 24 bits.
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 7) as f32 / (1u32 << 24) as f32
    }
}

/// Fills `pred` and `target` (`[N, C, S]`, channel 0 the background): foreground runs of 24
/// voxels in every 64, predicted with noise, a shifted edge, specks and holes.
pub fn soft(pred: &mut [f32], target: &mut [f32]) {
    let mut r = Lcg::new(7);
    for s in 0..S {
        let fg = (s % 64) < 24;
        let edge = (s % 64) == 24 || (s % 64) == 25;
        let mut p = if fg || edge { 0.85f32 } else { 0.08f32 };
        p += (r.unit() - 0.5) * 0.2;
        let speck = r.next().is_multiple_of(97);
        if speck {
            p = 1.0 - p;
        }
        let p = p.clamp(0.0, 1.0);
        let g = if fg { 1.0f32 } else { 0.0 };
        pred[s] = 1.0 - p;
        pred[S + s] = p;
        target[s] = 1.0 - g;
        target[S + s] = g;
    }
}

/// Fills two label maps: blocks of labels `0..LABELS`, the prediction with one voxel in nine
/// given another label.
pub fn labels(pred: &mut [u8], target: &mut [u8]) {
    let mut r = Lcg::new(11);
    for i in 0..VOXELS {
        let l = ((i / 256) % LABELS) as u8;
        target[i] = l;
        pred[i] = if r.next().is_multiple_of(9) {
            (r.next() % LABELS as u32) as u8
        } else {
            l
        };
    }
}
