//! # dice-core
//!
//! The numeric core of `dice`: soft and hard Sørensen–Dice scores, losses and their analytic
//! gradients over slices, `#![no_std]`, with `libm` as its only dependency.
//!
//! * [`stats`]: sufficient statistics `(Σp·g, Σp, Σg, voxels)` that merge, accumulated in `f64`
//!   from `f32` or `f64` inputs without stagnation.
//! * [`score`]: every soft score as a small pure function with its partial derivatives:
//!   Dice, V-Net (squared) Dice, Jaccard, Tversky, generalized Dice; loss forms `1 − s`,
//!   `−ln s`, focal `(·)^γ`.
//! * [`loss`]: [`SoftLoss`] over `[N, C, S]` batches with MONAI's parameters, and gradients
//!   with respect to probabilities or, fused, to logits through sigmoid or softmax, written
//!   into the caller's buffer without allocating.
//! * [`components`]: connected components of a mask (4/8 in 2-D, 6/18/26 in 3-D), linear time,
//!   into the caller's buffers.
//! * [`lesions`]: dilation, component overlaps, BraTS lesion-wise Dice/HD95, IoU matching with
//!   panoptic quality, false-positive and false-negative volumes.
//! * [`compound`]: Dice plus cross-entropy or focal loss over logits, fused in two passes
//!   (MONAI's `DiceCELoss`, `DiceFocalLoss`; nnU-Net's `DC_and_CE_loss`).
//! * [`hard`]: exact `u64` confusion counts from thresholded probabilities, masks and label
//!   maps (every label in one pass), the metrics computed from them, an explicit empty-mask
//!   policy, and means that report how many values were defined.
//! * [`layout`]: the `[N, C, S]` shape, dense or label-map targets, voxel masks, ignore labels.
//!
//! Bad input never panics: every function returns [`Result`] with a [`DiceError`] that names the
//! operand, the flat index and the value or parameter at fault.
//!
//! ## Soft versus hard
//! ```
//! use dice_core::{hard, Shape, SoftInput, SoftLoss, SoftStats, Target};
//!
//! // One sample, one class, four voxels.
//! let p = [0.9f32, 0.8, 0.3, 0.1];
//! let g = [1.0f32, 1.0, 0.0, 0.0];
//! let shape = Shape::new(1, 1, 4);
//! let input = SoftInput::new(shape, &p, Target::Dense(&g)).unwrap();
//!
//! // Train with the smooth loss and its gradient…
//! let loss = SoftLoss::dice();
//! let mut stats = [SoftStats::default(); 1];
//! let mut grad = [0.0f32; 4];
//! let value = loss.loss_and_gradient(&input, &mut stats, &mut grad).unwrap();
//! assert!((value.value - (1.0 - (2.0 * 1.7 + 1e-5) / (2.1 + 2.0 + 1e-5))).abs() < 1e-6);
//!
//! // …and report the exact hard score, without smoothing.
//! let c = hard::confusion_from_probabilities(&p, &g, 0.5).unwrap();
//! assert_eq!(c.dice(hard::EmptyPolicy::DEFAULT), Some(1.0));
//! ```

#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod components;
pub mod compound;
mod counts;
mod drive;
pub mod error;
pub mod float;
pub mod hard;
mod kernels;
pub mod layout;
pub mod lesions;
pub mod loss;
mod nearest;
#[cfg(feature = "std")]
pub mod parallel;
pub mod score;
pub mod stats;
pub mod surface;
mod surfel_table;

pub use compound::{CompoundLoss, CompoundValue, Term};
pub use error::{DiceError, Operand, Result};
pub use float::{Float, Label};
pub use hard::{Confusion, EmptyPolicy, EmptyValue, MeanValue, Metric};
pub use layout::{LabelSlice, Shape, SoftInput, Target};
pub use loss::{Activation, LossForm, LossValue, Reduction, Score, SoftLoss, Upstream};
pub use score::Weighting;
pub use stats::{Moment, SoftStats};

/// Voxels of one row (one sample and class) that the soft passes sum as one unit: each
/// chunk's sums are computed alone and the chunks' sums added in order, with or without
/// threads, so that the results do not depend on the thread count (see [`parallel`] with the
/// `std` feature). Rows of at most `CHUNK` voxels are summed in one piece.
pub const CHUNK: usize = 1 << 16;

/// How many values one SIMD lane adds in `f32` before its partial sum (after at most two
/// pairwise additions with the block's other lanes) is widened to `f64`.
///
/// The relative error of every sum of non-negative `f32` terms is at most
/// `(ACCUMULATION_ROWS + 2)·2⁻²⁴ + (n / lanes)·2⁻⁵³`, about `6·10⁻⁷` in the worst case
/// whatever `n`: sums never stagnate (naive `f32` summation stops growing at `2²⁴`). On real
/// data rounding errors average out: the Dice of a 2²⁷-voxel random volume matched an exactly
/// rounded `f64` reference to 1.3·10⁻¹¹ (AVX-512), 3.7·10⁻¹² (AVX2) and 1.6·10⁻¹² (portable)
/// when measured (`tests/exactness.rs` checks `10⁻⁹`).
/// `f64` inputs are accumulated in `f64` throughout.
///
/// Results are reproducible bit for bit for the same buffer. The x86 kernels peel to a 64-byte
/// boundary, so the grouping of the partial sums follows the buffer's address: the same values
/// at another alignment can differ in the last bits (within the bound above).
pub const ACCUMULATION_ROWS: usize = kernels::ROWS;

/// The SIMD level the kernels run at on this machine: `"avx512"`, `"avx2"`, `"neon"` or
/// `"portable"`.
/// With the `std` feature it is detected at run time; without, it follows the compile-time
/// target features.
pub fn simd_level() -> &'static str {
    match kernels::level() {
        kernels::Level::Avx512 => "avx512",
        kernels::Level::Avx2 => "avx2",
        kernels::Level::Neon => "neon",
        kernels::Level::Portable => "portable",
    }
}
