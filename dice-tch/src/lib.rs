//! # dice-tch
//!
//! dice-core's soft losses as a real LibTorch autograd function, for training with `tch`, and
//! its exact hard metrics on tensors.
//!
//! ```no_run
//! use dice_tch::{DiceLoss, DiceMetric};
//! use tch::{Device, Kind, Tensor};
//!
//! let logits = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
//! let labels = Tensor::randint(3, [2, 16, 16], (Kind::Int64, Device::Cpu));
//! // MONAI's DiceLoss(softmax=True, to_onehot_y=True, include_background=False), label map as is.
//! let loss = DiceLoss::new().softmax(true).include_background(false).forward(&logits, &labels)?;
//! loss.backward();
//! // Report the exact hard Dice, without smoothing.
//! let report = DiceMetric::new().num_classes(3).compute(&logits.detach(), &labels)?;
//! println!("{:?}", report.mean);
//! # Ok::<(), tch::TchError>(())
//! ```
//!
//! The adapter holds no math: on CPU the autograd function's forward and backward call
//! dice-core through its C ABI (`dice-ffi`), over the tensors' memory (contiguous `f32`/`f64`
//! without copies, `f16`/`bf16` upcast); forward computes the loss and its closed-form gradient,
//! backward returns `grad_output × gradient`, so no graph of element-wise operations is kept.
//! On other devices (CUDA) the same closed form runs as ATen operations on the device.

#![warn(missing_docs)]

use std::ffi::{c_char, CStr};

use dice::{DiceSoftParams, DiceStatus};
use dice_core::hard::{self, Confusion, EmptyPolicy, MeanValue, Metric};
use dice_core::Shape;
use tch::{Device, Kind, TchError, Tensor};
use torch_sys::C_tensor;

pub use dice_core::{EmptyValue, Reduction, Weighting};

extern "C" {
    fn dice_tch_compound_loss(
        params: *const DiceSoftParams,
        term: *const dice::DiceCompoundParams,
        input: *const C_tensor,
        target: *const C_tensor,
        mask: *const C_tensor,
        dice_weights: *const C_tensor,
        term_weights: *const C_tensor,
        has_ignore: u8,
        ignore_index: i64,
        force_aten: u8,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn dice_tch_loss(
        params: *const DiceSoftParams,
        input: *const C_tensor,
        target: *const C_tensor,
        mask: *const C_tensor,
        weights: *const C_tensor,
        has_ignore: u8,
        ignore_index: i64,
        force_aten: u8,
        out: *mut *mut C_tensor,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
}

/// The result of a shim call: the fresh tensor it returned, or its message as an error.
///
/// # Safety
/// `out` must be NULL or a tensor allocated by the shim and owned by no one else; `err` must
/// hold a NUL-terminated message when `code != 0` (the shim writes one within the buffer).
unsafe fn shim_result(code: i32, out: *mut C_tensor, err: &[c_char]) -> Result<Tensor, TchError> {
    if code != 0 || out.is_null() {
        // SAFETY: NUL-terminated within the buffer (the shim's contract).
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        return Err(TchError::Torch(msg));
    }
    // SAFETY: a fresh tensor from the shim, owned from here on.
    Ok(unsafe { Tensor::from_ptr(out) })
}

/// The configuration shared by every loss of this crate.
#[derive(Clone, Debug)]
struct Config {
    params: DiceSoftParams,
    weights: Option<Vec<f64>>,
    ignore_index: Option<i64>,
    force_aten: bool,
}

impl Config {
    fn new(score: i32) -> Config {
        let mut params = std::mem::MaybeUninit::<DiceSoftParams>::uninit();
        // SAFETY: a valid out-pointer to a DiceSoftParams; the call only writes it.
        let status = unsafe {
            dice::dice_soft_params_default(
                params.as_mut_ptr(),
                std::mem::size_of::<DiceSoftParams>(),
            )
        };
        assert_eq!(
            status,
            DiceStatus::Ok,
            "dice_soft_params_default cannot fail on a valid pointer"
        );
        // SAFETY: fully written by the call above.
        let mut params = unsafe { params.assume_init() };
        params.score = score;
        Config {
            params,
            weights: None,
            ignore_index: None,
            force_aten: false,
        }
    }

    fn forward(
        &self,
        input: &Tensor,
        target: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor, TchError> {
        let weights = self.weights.as_ref().map(|w| Tensor::from_slice(w));
        let mut out: *mut C_tensor = std::ptr::null_mut();
        let mut err = [0 as c_char; 1024];
        // SAFETY: every pointer is valid for the call (tensors owned by the caller or by this
        // frame); `out` receives a tensor allocated by the shim, owned by the returned Tensor.
        let code = unsafe {
            dice_tch_loss(
                &self.params,
                input.as_ptr(),
                target.as_ptr(),
                mask.map_or(std::ptr::null(), |m| m.as_ptr()),
                weights.as_ref().map_or(std::ptr::null(), |w| w.as_ptr()),
                u8::from(self.ignore_index.is_some()),
                self.ignore_index.unwrap_or(0),
                u8::from(self.force_aten),
                &mut out,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        // SAFETY: the shim's contract, as stated on `shim_result`.
        unsafe { shim_result(code, out, &err) }
    }
}

/// Builder methods of the Dice term, shared by every loss (`$c` is the path to its `Config`).
macro_rules! dice_options {
    ($t:ident, $($c:tt)+) => {
        impl $t {
            /// Keep channel 0 as a class (MONAI's `include_background`, default `true`).
            pub fn include_background(mut self, on: bool) -> Self {
                self.$($c)+.params.include_background = u8::from(on);
                self
            }
            /// The input holds logits; apply a sigmoid (binary and multi-label).
            pub fn sigmoid(mut self, on: bool) -> Self {
                self.$($c)+.params.activation = if on {
                    dice::DiceActivation::Sigmoid as i32
                } else {
                    dice::DiceActivation::None as i32
                };
                self
            }
            /// The input holds logits; apply a softmax over the channels (multi-class).
            pub fn softmax(mut self, on: bool) -> Self {
                self.$($c)+.params.activation = if on {
                    dice::DiceActivation::Softmax as i32
                } else {
                    dice::DiceActivation::None as i32
                };
                self
            }
            /// Sum the statistics over the batch before scoring (nnU-Net's `batch_dice`).
            pub fn batch(mut self, on: bool) -> Self {
                self.$($c)+.params.batch = u8::from(on);
                self
            }
            /// Numerator smoothing (default `1e-5`).
            pub fn smooth_nr(mut self, v: f64) -> Self {
                self.$($c)+.params.smooth_nr = v;
                self
            }
            /// Denominator smoothing (default `1e-5`).
            pub fn smooth_dr(mut self, v: f64) -> Self {
                self.$($c)+.params.smooth_dr = v;
                self
            }
            /// How group losses are combined. With [`Reduction::None`] the result has one loss
            /// per group: `[N, C']`, `[C']` with `batch`, `[N]` (or `[1]`) for generalized Dice.
            pub fn reduction(mut self, r: Reduction) -> Self {
                self.$($c)+.params.reduction = match r {
                    Reduction::Mean => dice::DiceReduction::Mean,
                    Reduction::Sum => dice::DiceReduction::Sum,
                    Reduction::None => dice::DiceReduction::None,
                } as i32;
                self
            }
            /// Voxels whose label equals `index` are left out of every sum and get zero gradient
            /// (label-map targets).
            pub fn ignore_index(mut self, index: i64) -> Self {
                self.$($c)+.ignore_index = Some(index);
                self
            }
            /// The soft-label intersection `(Σp + Σg − Σ|p − g|)/2` (MONAI's `soft_label`):
            /// minimal at `p = g` for soft targets (label smoothing, mixup, distillation),
            /// identical to `Σp·g` for binary ones.
            pub fn soft_label(mut self, on: bool) -> Self {
                self.$($c)+.params.soft_label = u8::from(on);
                self
            }
            /// Run the device (ATen) formulation even on CPU: what CUDA tensors use. For tests
            /// and comparisons; the CPU kernels are faster and leaner.
            pub fn force_aten(mut self, on: bool) -> Self {
                self.$($c)+.force_aten = on;
                self
            }
        }
    };
}

/// Builder methods and `forward` of the plain soft losses.
macro_rules! common_methods {
    ($t:ident) => {
        dice_options!($t, 0);
        impl $t {
            /// `−ln(score)` instead of `1 − score` (smp's `log_loss`).
            pub fn log_loss(mut self, on: bool) -> Self {
                self.0.params.form = if on {
                    dice::DiceLossForm::NegLog as i32
                } else {
                    dice::DiceLossForm::OneMinus as i32
                };
                self
            }
            /// Focal exponent `γ` applied to each group's loss (`1` = none).
            pub fn gamma(mut self, gamma: f64) -> Self {
                self.0.params.gamma = gamma;
                self
            }
            /// The score of a group whose denominator is zero (default `One`).
            pub fn zero_denominator(mut self, v: EmptyValue) -> Self {
                self.0.params.zero_denominator = match v {
                    EmptyValue::Nan => dice::DiceEmptyValue::Nan,
                    EmptyValue::One => dice::DiceEmptyValue::One,
                    EmptyValue::Zero => dice::DiceEmptyValue::Zero,
                    EmptyValue::Skip => dice::DiceEmptyValue::Skip,
                } as i32;
                self
            }
            /// The loss of `input` (`[N, C, ...]`, probabilities or logits) against `target`
            /// (dense `[N, C, ...]`, or an integer label map `[N, ...]` / `[N, 1, ...]`,
            /// never expanded to one-hot). Differentiable with respect to `input`.
            ///
            /// Errors (never panics): shapes, dtypes or devices that do not fit, NaN/∞,
            /// probabilities outside `[0, 1]`, labels out of range, invalid parameters.
            pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor, TchError> {
                self.0.forward(input, target, None)
            }
            /// [`Self::forward`] with a voxel mask `[N, ...]` (non-zero = the voxel counts).
            pub fn forward_masked(
                &self,
                input: &Tensor,
                target: &Tensor,
                mask: &Tensor,
            ) -> Result<Tensor, TchError> {
                self.0.forward(input, target, Some(mask))
            }
        }
    };
}

/// MONAI's `DiceLoss`: `1 − (2I + s_nr)/(P + G + s_dr)` per (sample, class), with
/// `squared_pred`, `jaccard`, class weights and the common options.
#[derive(Clone, Debug)]
pub struct DiceLoss(Config);

impl Default for DiceLoss {
    fn default() -> Self {
        DiceLoss::new()
    }
}

impl DiceLoss {
    /// MONAI's defaults: `include_background`, `smooth_nr = smooth_dr = 1e-5`, mean.
    pub fn new() -> Self {
        DiceLoss(Config::new(dice::DiceScore::Dice as i32))
    }
    /// `Σp²`, `Σg²` in the denominator (V-Net).
    pub fn squared_pred(mut self, on: bool) -> Self {
        self.0.params.squared_pred = u8::from(on);
        self
    }
    /// The Jaccard (IoU) loss in MONAI's form.
    pub fn jaccard(mut self, on: bool) -> Self {
        self.0.params.score = if on {
            dice::DiceScore::Jaccard
        } else {
            dice::DiceScore::Dice
        } as i32;
        self
    }
    /// One weight per channel multiplying its class's loss (MONAI's `weight`).
    pub fn weight(mut self, weights: &[f64]) -> Self {
        self.0.weights = Some(weights.to_vec());
        self.0.params.class_weights_len = weights.len();
        self
    }
}
common_methods!(DiceLoss);

/// MONAI's `TverskyLoss` (`alpha` weighs false positives, `beta` false negatives); with
/// [`TverskyLoss::gamma`], the focal Tversky loss `(1 − T)^γ`.
#[derive(Clone, Debug)]
pub struct TverskyLoss(Config);

impl TverskyLoss {
    /// Tversky loss with weights `alpha` (false positives) and `beta` (false negatives).
    pub fn new(alpha: f64, beta: f64) -> Self {
        let mut c = Config::new(dice::DiceScore::Tversky as i32);
        c.params.alpha = alpha;
        c.params.beta = beta;
        TverskyLoss(c)
    }
    /// One weight per channel multiplying its class's loss.
    pub fn weight(mut self, weights: &[f64]) -> Self {
        self.0.weights = Some(weights.to_vec());
        self.0.params.class_weights_len = weights.len();
        self
    }
}
common_methods!(TverskyLoss);

/// MONAI's `GeneralizedDiceLoss` with dice-core's policy for absent classes (largest present
/// weight; weight 1 for all when none is present, so false positives on empty targets count).
#[derive(Clone, Debug)]
pub struct GeneralizedDiceLoss(Config);

impl Default for GeneralizedDiceLoss {
    fn default() -> Self {
        GeneralizedDiceLoss::new()
    }
}

impl GeneralizedDiceLoss {
    /// Square weights (MONAI's default `w_type="square"`).
    pub fn new() -> Self {
        GeneralizedDiceLoss(Config::new(dice::DiceScore::Generalized as i32))
    }
    /// The class weighting (MONAI's `w_type`).
    pub fn w_type(mut self, w: Weighting) -> Self {
        self.0.params.weighting = match w {
            Weighting::Square => dice::DiceWeighting::Square,
            Weighting::Simple => dice::DiceWeighting::Simple,
            Weighting::Uniform => dice::DiceWeighting::Uniform,
        } as i32;
        self
    }
}
common_methods!(GeneralizedDiceLoss);

// ---------------------------------------------------------------------------------------------
// Dice + cross-entropy, Dice + focal
// ---------------------------------------------------------------------------------------------

/// The configuration of a compound loss: the Dice term's, and the voxel term's.
#[derive(Clone, Debug)]
struct CompoundConfig {
    dice: Config,
    term: dice::DiceCompoundParams,
    term_weights: Option<Vec<f64>>,
}

impl CompoundConfig {
    fn new(kind: dice::DiceTermKind) -> CompoundConfig {
        let mut term = std::mem::MaybeUninit::<dice::DiceCompoundParams>::uninit();
        // SAFETY: a valid out-pointer; the call only writes it.
        let status = unsafe {
            dice::dice_compound_params_default(
                term.as_mut_ptr(),
                std::mem::size_of::<dice::DiceCompoundParams>(),
            )
        };
        assert_eq!(status, DiceStatus::Ok, "cannot fail on a valid pointer");
        // SAFETY: fully written by the call above.
        let mut term = unsafe { term.assume_init() };
        term.term = kind as i32;
        CompoundConfig {
            dice: Config::new(dice::DiceScore::Dice as i32),
            term,
            term_weights: None,
        }
    }

    fn forward(
        &self,
        input: &Tensor,
        target: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor, TchError> {
        let dice_weights = self.dice.weights.as_ref().map(|w| Tensor::from_slice(w));
        let term_weights = self.term_weights.as_ref().map(|w| Tensor::from_slice(w));
        let mut out: *mut C_tensor = std::ptr::null_mut();
        let mut err = [0 as c_char; 1024];
        // SAFETY: as in Config::forward.
        let code = unsafe {
            dice_tch_compound_loss(
                &self.dice.params,
                &self.term,
                input.as_ptr(),
                target.as_ptr(),
                mask.map_or(std::ptr::null(), |m| m.as_ptr()),
                dice_weights
                    .as_ref()
                    .map_or(std::ptr::null(), |w| w.as_ptr()),
                term_weights
                    .as_ref()
                    .map_or(std::ptr::null(), |w| w.as_ptr()),
                u8::from(self.dice.ignore_index.is_some()),
                self.dice.ignore_index.unwrap_or(0),
                u8::from(self.dice.force_aten),
                &mut out,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        // SAFETY: the shim's contract, as stated on `shim_result`.
        unsafe { shim_result(code, out, &err) }
    }
}

/// Builder methods and `forward` of the compound losses.
macro_rules! compound_methods {
    ($t:ident) => {
        dice_options!($t, 0.dice);
        impl $t {
            /// `Σp²`, `Σg²` in the Dice term's denominator.
            pub fn squared_pred(mut self, on: bool) -> Self {
                self.0.dice.params.squared_pred = u8::from(on);
                self
            }
            /// The Jaccard (IoU) form of the Dice term.
            pub fn jaccard(mut self, on: bool) -> Self {
                self.0.dice.params.score = if on {
                    dice::DiceScore::Jaccard
                } else {
                    dice::DiceScore::Dice
                } as i32;
                self
            }
            /// The weight of the Dice term (default 1, `≥ 0`).
            pub fn lambda_dice(mut self, v: f64) -> Self {
                self.0.term.lambda_dice = v;
                self
            }
            /// The loss of `logits` (`[N, C, ...]`) against `target` (dense `[N, C, ...]` or an
            /// integer label map `[N, ...]` / `[N, 1, ...]`), differentiable with respect to the
            /// logits: both terms and the gradient in two passes over the data on CPU, the same
            /// closed form as ATen operations on other devices. Needs `sigmoid` or `softmax`,
            /// and reduction mean or sum.
            pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor, TchError> {
                self.0.forward(logits, target, None)
            }
            /// [`Self::forward`] with a voxel mask `[N, ...]` (non-zero = the voxel counts).
            pub fn forward_masked(
                &self,
                logits: &Tensor,
                target: &Tensor,
                mask: &Tensor,
            ) -> Result<Tensor, TchError> {
                self.0.forward(logits, target, Some(mask))
            }
        }
    };
}

/// MONAI's `DiceCELoss`: `lambda_dice·DiceLoss + lambda_ce·CrossEntropy` over logits, with
/// MONAI's rules: the cross-entropy is PyTorch's over the channel softmax whenever `C ≥ 2`
/// (also beside a sigmoid Dice), `BCEWithLogitsLoss(pos_weight = weight)` for one channel;
/// `weight` weighs both terms (as MONAI, which ignores it in the Dice term when `C = 1`: so do
/// we); `label_smoothing` as PyTorch defines it. Label maps go in as they are (MONAI's
/// `to_onehot_y=True`). nnU-Net's `DC_and_CE_loss`: [`DiceCELoss::nnunet`].
#[derive(Clone, Debug)]
pub struct DiceCELoss(CompoundConfig);

impl Default for DiceCELoss {
    fn default() -> Self {
        DiceCELoss::new()
    }
}

impl DiceCELoss {
    /// MONAI's defaults (set `softmax` or `sigmoid`).
    pub fn new() -> Self {
        DiceCELoss(CompoundConfig::new(dice::DiceTermKind::CrossEntropy))
    }
    /// nnU-Net v2's `DC_and_CE_loss` as its trainer builds it: softmax Dice without the
    /// background, smoothing `1e-5`, `batch_dice`, loss `CE − mean Dice` (its values exactly);
    /// give its `ignore_label` with `ignore_index`.
    pub fn nnunet(batch_dice: bool) -> Self {
        let mut l = DiceCELoss::new()
            .softmax(true)
            .include_background(false)
            .batch(batch_dice);
        l.0.dice.params.form = dice::DiceLossForm::Negative as i32;
        l
    }
    /// One weight per channel for the cross-entropy and the Dice term (MONAI's `weight`).
    pub fn weight(mut self, weights: &[f64]) -> Self {
        self.0.term_weights = Some(weights.to_vec());
        if weights.len() > 1 {
            self.0.dice.weights = Some(weights.to_vec());
            self.0.dice.params.class_weights_len = weights.len();
        } else {
            self.0.dice.weights = None;
            self.0.dice.params.class_weights_len = 0;
        }
        self
    }
    /// The weight of the cross-entropy (default 1, `≥ 0`).
    pub fn lambda_ce(mut self, v: f64) -> Self {
        self.0.term.lambda_term = v;
        self
    }
    /// Label smoothing `ε ∈ [0, 1]` of the cross-entropy (default 0).
    pub fn label_smoothing(mut self, v: f64) -> Self {
        self.0.term.label_smoothing = v;
        self
    }
    /// Binary cross-entropy on every channel instead (nnU-Net's `DC_and_BCE_loss` for
    /// region-based training; MONAI has no such option).
    pub fn binary(mut self, on: bool) -> Self {
        self.0.term.term = if on {
            dice::DiceTermKind::BinaryCrossEntropy
        } else {
            dice::DiceTermKind::CrossEntropy
        } as i32;
        self
    }
}
compound_methods!(DiceCELoss);

/// MONAI's `DiceFocalLoss`: `lambda_dice·DiceLoss + lambda_focal·FocalLoss`, the focal term
/// being MONAI's sigmoid focal loss (`gamma`, `alpha`, `weight`) on the channels the Dice
/// term counts. `weight` has one entry per channel (MONAI's lists the classes left after
/// `include_background=False`; the background's entry is unused here).
#[derive(Clone, Debug)]
pub struct DiceFocalLoss(CompoundConfig);

impl Default for DiceFocalLoss {
    fn default() -> Self {
        DiceFocalLoss::new()
    }
}

impl DiceFocalLoss {
    /// MONAI's defaults: `gamma = 2`, no `alpha`, no weights (set `softmax` or `sigmoid`).
    pub fn new() -> Self {
        DiceFocalLoss(CompoundConfig::new(dice::DiceTermKind::Focal))
    }
    /// The focal exponent `γ ≥ 0` (default 2).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.0.term.gamma = gamma;
        self
    }
    /// `α ∈ [0, 1]` of the α-balanced focal loss.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.0.term.has_alpha = 1;
        self.0.term.alpha = alpha;
        self
    }
    /// One weight per channel for both terms.
    pub fn weight(mut self, weights: &[f64]) -> Self {
        self.0.term_weights = Some(weights.to_vec());
        self.0.dice.weights = Some(weights.to_vec());
        self.0.dice.params.class_weights_len = weights.len();
        self
    }
    /// The weight of the focal term (default 1, `≥ 0`).
    pub fn lambda_focal(mut self, v: f64) -> Self {
        self.0.term.lambda_term = v;
        self
    }
}
compound_methods!(DiceFocalLoss);

// ---------------------------------------------------------------------------------------------
// Hard metric
// ---------------------------------------------------------------------------------------------

/// Hard Dice on tensors, per (sample, class), counted exactly, with an explicit empty policy
/// (MONAI's `DiceMetric`, with dice-core's default policy unless told otherwise).
///
/// Inputs: integer label maps for both (`num_classes` required), or `[N, C, ...]`
/// probabilities/one-hot for both (thresholded at `threshold`), or `[N, C, ...]` scores with a
/// label-map target (argmax over channels).
#[derive(Clone, Debug)]
pub struct DiceMetric {
    include_background: bool,
    policy: EmptyPolicy,
    threshold: f64,
    num_classes: Option<usize>,
    ignore_index: Option<i64>,
}

impl Default for DiceMetric {
    fn default() -> Self {
        DiceMetric::new()
    }
}

/// What [`DiceMetric::compute`] returns.
#[derive(Clone, Debug)]
pub struct MetricReport {
    /// Dice per sample and class (`None` where the empty policy skips).
    pub per_sample: Vec<Vec<Option<f64>>>,
    /// Mean per class over samples, with how many were defined.
    pub per_class: Vec<MeanValue>,
    /// Mean over every (sample, class) kept, with how many were defined.
    pub mean: MeanValue,
    /// The exact counts, `N·C` (sample-major).
    pub counts: Vec<Confusion>,
}

impl DiceMetric {
    /// `include_background = true`, dice-core's default empty policy, threshold 0.5.
    pub fn new() -> Self {
        DiceMetric {
            include_background: true,
            policy: EmptyPolicy::DEFAULT,
            threshold: 0.5,
            num_classes: None,
            ignore_index: None,
        }
    }
    /// Keep class 0.
    pub fn include_background(mut self, on: bool) -> Self {
        self.include_background = on;
        self
    }
    /// The empty policy (e.g. `EmptyPolicy::monai(true)` for MONAI's `ignore_empty=True`).
    pub fn empty_policy(mut self, policy: EmptyPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Threshold for probability inputs (positive iff `p ≥ threshold`).
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }
    /// Number of classes of label-map inputs.
    pub fn num_classes(mut self, c: usize) -> Self {
        self.num_classes = Some(c);
        self
    }
    /// Reference label to leave out.
    pub fn ignore_index(mut self, i: i64) -> Self {
        self.ignore_index = Some(i);
        self
    }

    /// Exact per-(sample, class) counts and Dice.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<MetricReport, TchError> {
        let bad = |m: String| TchError::Shape(m);
        let pred = pred.detach().to_device(Device::Cpu);
        let target = target.detach().to_device(Device::Cpu);
        if pred.dim() < 1 || pred.numel() == 0 {
            return Err(bad(format!("dice: empty prediction {:?}", pred.size())));
        }
        let n = pred.size()[0] as usize;
        let float_pred = pred.is_floating_point();
        let float_target = target.is_floating_point();
        let (shape, counts) = if float_pred && float_target {
            if pred.size() != target.size() || pred.dim() < 2 {
                return Err(bad(format!(
                    "dice: prediction {:?} and target {:?} must be the same [N, C, ...]",
                    pred.size(),
                    target.size()
                )));
            }
            let c = pred.size()[1] as usize;
            let shape = Shape::new(n, c, pred.numel() / (n * c).max(1));
            let p = to_vec::<f64>(&pred.to_kind(Kind::Double))?;
            let g = to_vec::<f64>(&target.to_kind(Kind::Double))?;
            let mut out = vec![Confusion::default(); n * c];
            hard::batch_confusion_probabilities(shape, &p, &g, self.threshold, None, &mut out)
                .map_err(core_err)?;
            (shape, out)
        } else {
            let (labels_pred, channels) = if float_pred {
                if pred.dim() < 2 {
                    return Err(bad(format!(
                        "dice: floating predictions must be [N, C, ...]; got {:?}",
                        pred.size()
                    )));
                }
                (pred.argmax(1, false), Some(pred.size()[1] as usize))
            } else {
                (pred, None)
            };
            let c = self
                .num_classes
                .or(channels)
                .ok_or_else(|| bad("dice: label-map predictions need num_classes".into()))?;
            if labels_pred.numel() != target.numel() {
                return Err(bad(format!(
                    "dice: label maps {:?} and {:?} differ in size",
                    labels_pred.size(),
                    target.size()
                )));
            }
            let s = labels_pred.numel() / n;
            let shape = Shape::new(n, c, s);
            let p = to_vec::<i64>(&labels_pred.to_kind(Kind::Int64))?;
            let g = to_vec::<i64>(&target.to_kind(Kind::Int64))?;
            let mut out = vec![Confusion::default(); n * c];
            hard::batch_label_confusion(shape, &p, &g, self.ignore_index, &mut out)
                .map_err(core_err)?;
            (shape, out)
        };
        let per_sample = (0..shape.batch)
            .map(|s| {
                (0..shape.channels)
                    .map(|c| counts[s * shape.channels + c].dice(self.policy))
                    .collect()
            })
            .collect();
        let mut per_class = vec![
            MeanValue {
                mean: None,
                defined: 0,
                total: 0
            };
            shape.channels
        ];
        let mean = hard::class_means(
            shape,
            &counts,
            Metric::Dice,
            self.policy,
            self.include_background,
            &mut per_class,
        )
        .map_err(core_err)?;
        Ok(MetricReport {
            per_sample,
            per_class,
            mean,
            counts,
        })
    }
}

/// Two label maps of a batch as `i64`: (prediction, reference, samples, spatial sizes).
type LabelBatch = (Vec<i64>, Vec<i64>, usize, Vec<usize>);

/// Label maps of a batch as `i64`, with their spatial sizes: integer `[N, spatial...]` maps, or
/// `[N, C, spatial...]` scores (argmax over channels) for the prediction.
fn surface_inputs(pred: &Tensor, target: &Tensor) -> Result<LabelBatch, TchError> {
    let bad = |m: String| TchError::Shape(m);
    let pred = pred.detach().to_device(Device::Cpu);
    let target = target.detach().to_device(Device::Cpu);
    if target.is_floating_point() {
        return Err(bad(
            "dice: surface metrics take an integer label-map target [N, spatial...]".into(),
        ));
    }
    let labels_pred = if pred.is_floating_point() {
        pred.argmax(1, false)
    } else {
        pred
    };
    if labels_pred.size() != target.size() {
        return Err(bad(format!(
            "dice: label maps {:?} and {:?} differ in size",
            labels_pred.size(),
            target.size()
        )));
    }
    let size: Vec<usize> = target.size().iter().map(|&d| d as usize).collect();
    if !(3..=4).contains(&size.len()) || size.contains(&0) {
        return Err(bad(format!(
            "dice: surface metrics take [N, H, W] or [N, H, W, D] label maps, not {:?}",
            target.size()
        )));
    }
    let p = to_vec::<i64>(&labels_pred.to_kind(Kind::Int64))?;
    let g = to_vec::<i64>(&target.to_kind(Kind::Int64))?;
    Ok((p, g, size[0], size[1..].to_vec()))
}

/// What the surface metrics share: classes, background, spacing, ignore label, empty policy.
#[derive(Clone, Debug)]
struct SurfaceCommon {
    include_background: bool,
    num_classes: Option<usize>,
    spacing: Option<Vec<f64>>,
    ignore_index: Option<i64>,
    policy: dice_core::surface::SurfaceEmptyPolicy,
    elements: dice_core::surface::Elements,
}

impl SurfaceCommon {
    fn new() -> Self {
        SurfaceCommon {
            include_background: false,
            num_classes: None,
            spacing: None,
            ignore_index: None,
            policy: dice_core::surface::SurfaceEmptyPolicy::DEFAULT,
            elements: dice_core::surface::Elements::Voxels,
        }
    }

    /// Surfaces of every (sample, class) (`N·C`, sample-major) with per-class tolerances.
    fn surfaces(
        &self,
        pred: &Tensor,
        target: &Tensor,
        percentile: f64,
        tolerances: Option<&[f64]>,
    ) -> Result<
        (
            Vec<dice_core::surface::Surfaces>,
            dice_core::surface::Grid,
            usize,
            usize,
        ),
        TchError,
    > {
        use dice_core::surface;
        let (p, g, n, spatial) = surface_inputs(pred, target)?;
        let c = self
            .num_classes
            .or_else(|| {
                (pred.is_floating_point() && pred.dim() >= 2).then(|| pred.size()[1] as usize)
            })
            .ok_or_else(|| {
                TchError::Shape("dice: label-map predictions need num_classes".into())
            })?;
        // Tensors are C-ordered: the last spatial axis varies fastest, the grid's x.
        let spacing = match &self.spacing {
            None => vec![1.0; spatial.len()],
            Some(s) if s.len() == spatial.len() => s.clone(),
            Some(s) => {
                return Err(TchError::Shape(format!(
                    "dice: spacing {s:?} needs one value per spatial axis of {spatial:?}"
                )))
            }
        };
        let rev = |v: &[usize]| -> [usize; 3] {
            std::array::from_fn(|k| v.iter().rev().nth(k).copied().unwrap_or(1))
        };
        let dims = rev(&spatial);
        let sp: [f64; 3] =
            std::array::from_fn(|k| spacing.iter().rev().nth(k).copied().unwrap_or(1.0));
        let grid = surface::Grid::new(dims, sp).map_err(core_err)?;
        let per = grid.voxels();
        let zeros = vec![0.0; c];
        let tolerances = tolerances.unwrap_or(&zeros);
        if tolerances.len() != c {
            return Err(TchError::Shape(format!(
                "dice: {} tolerances for {c} classes",
                tolerances.len()
            )));
        }
        let mut out = Vec::with_capacity(n * c);
        let mut res = vec![surface::Surfaces::BothEmpty; c];
        for s in 0..n {
            let (ps, gs) = (&p[s * per..(s + 1) * per], &g[s * per..(s + 1) * per]);
            let need =
                surface::label_scratch_len(self.elements, grid, ps, gs, self.ignore_index, c)
                    .map_err(core_err)?;
            let mut scratch = vec![0.0f64; need];
            surface::label_surface_distances(
                self.elements,
                grid,
                ps,
                gs,
                self.ignore_index,
                percentile,
                tolerances,
                &mut scratch,
                &mut res,
            )
            .map_err(core_err)?;
            out.extend_from_slice(&res);
        }
        Ok((out, grid, n, c))
    }

    fn report(&self, values: Vec<Option<f64>>, n: usize, c: usize) -> SurfaceReport {
        let first = usize::from(!self.include_background);
        let per_sample: Vec<Vec<Option<f64>>> = (0..n)
            .map(|s| (first..c).map(|k| values[s * c + k]).collect())
            .collect();
        let per_class = (first..c)
            .map(|k| hard::mean((0..n).map(|s| values[s * c + k])))
            .collect();
        let mean = hard::mean(per_sample.iter().flatten().copied());
        SurfaceReport {
            per_sample,
            per_class,
            mean,
        }
    }
}

/// The builder methods both surface metrics share, on their [`SurfaceCommon`].
macro_rules! surface_common_setters {
    () => {
        /// Keep class 0.
        pub fn include_background(mut self, on: bool) -> Self {
            self.common.include_background = on;
            self
        }
        /// Millimetres per spatial axis, in the tensor's axis order.
        pub fn spacing(mut self, spacing: &[f64]) -> Self {
            self.common.spacing = Some(spacing.to_vec());
            self
        }
        /// Classes of label-map predictions.
        pub fn num_classes(mut self, c: usize) -> Self {
            self.common.num_classes = Some(c);
            self
        }
        /// MONAI's `use_subvoxels`: surfels with areas (DeepMind's definition) instead of
        /// boundary voxels; means and NSD are area-weighted, percentiles by cumulative area.
        pub fn use_subvoxels(mut self, on: bool) -> Self {
            self.common.elements = if on {
                dice_core::surface::Elements::Surfels
            } else {
                dice_core::surface::Elements::Voxels
            };
            self
        }
    };
}

/// What the surface metrics return: values per sample and class (classes from 1 without the
/// background), means per class and overall, each with how many values were defined.
#[derive(Clone, Debug)]
pub struct SurfaceReport {
    /// Per sample, per class kept (`None` where the empty policy skips).
    pub per_sample: Vec<Vec<Option<f64>>>,
    /// Mean per class kept over samples.
    pub per_class: Vec<MeanValue>,
    /// Mean over every (sample, class) kept.
    pub mean: MeanValue,
}

/// Which distance [`SurfaceDistance`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistanceKind {
    /// MONAI's `HausdorffDistanceMetric` (with `percentile`, its percentile version).
    Hausdorff,
    /// MONAI's `SurfaceDistanceMetric(symmetric=True)`: the mean of the pooled distances (ASSD).
    Average,
    /// MetricsReloaded's MASD: the mean of the two directed means.
    MeanOfDirectedMeans,
}

/// Surface distances in mm of integer label maps (or `[N, C, ...]` scores, argmax), computed by
/// dice-core, with MONAI's parameter names: `include_background` (default `false`, as MONAI),
/// `distance_metric` (`"euclidean"` only: chessboard and taxicab distances are refused),
/// `percentile` (the larger of the two directed percentiles, MONAI's definition), `directed`
/// (prediction to reference only), `spacing` (mm per spatial axis, in the tensor's order;
/// default 1). Empty masks follow a [`dice_core::surface::SurfaceEmptyPolicy`] (default: the
/// image diagonal with one mask empty, skipped with both; MONAI's is `SurfaceEmptyPolicy::MONAI`).
#[derive(Clone, Debug)]
pub struct SurfaceDistance {
    common: SurfaceCommon,
    kind: DistanceKind,
    percentile: Option<f64>,
    directed: bool,
    distance_metric: String,
}

impl SurfaceDistance {
    /// The Hausdorff distance (MONAI's `HausdorffDistanceMetric()` defaults).
    pub fn hausdorff() -> Self {
        SurfaceDistance {
            common: SurfaceCommon::new(),
            kind: DistanceKind::Hausdorff,
            percentile: None,
            directed: false,
            distance_metric: "euclidean".into(),
        }
    }
    /// The average surface distance (MONAI's `SurfaceDistanceMetric(symmetric=True)`).
    pub fn average() -> Self {
        SurfaceDistance {
            kind: DistanceKind::Average,
            ..Self::hausdorff()
        }
    }
    /// Which distance.
    pub fn kind(mut self, kind: DistanceKind) -> Self {
        self.kind = kind;
        self
    }
    /// MONAI's `distance_metric`: only `"euclidean"` is accepted.
    pub fn distance_metric(mut self, name: &str) -> Self {
        self.distance_metric = name.into();
        self
    }
    /// The percentile of the Hausdorff distance (e.g. 95).
    pub fn percentile(mut self, p: f64) -> Self {
        self.percentile = Some(p);
        self
    }
    /// Prediction-to-reference distances only.
    pub fn directed(mut self, on: bool) -> Self {
        self.directed = on;
        self
    }
    /// A label left out of both masks.
    pub fn ignore_index(mut self, i: i64) -> Self {
        self.common.ignore_index = Some(i);
        self
    }
    /// The empty-mask policy.
    pub fn empty_policy(mut self, policy: dice_core::surface::SurfaceEmptyPolicy) -> Self {
        self.common.policy = policy;
        self
    }
    surface_common_setters!();

    /// Distances per (sample, class) and their means.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<SurfaceReport, TchError> {
        use dice_core::surface::{DistanceMetric, PercentileDefinition, Surfaces};
        if self.distance_metric != "euclidean" {
            return Err(TchError::Torch(format!(
                "dice: distance_metric {:?} is not supported: surface distances are Euclidean (in mm)",
                self.distance_metric
            )));
        }
        let percentile = self.percentile.unwrap_or(100.0);
        let (surfaces, grid, n, c) = self.common.surfaces(pred, target, percentile, None)?;
        let values = surfaces
            .iter()
            .map(|s| match (s, self.directed) {
                (Surfaces::Distances(d), true) => Some(match (self.kind, self.percentile) {
                    (DistanceKind::Hausdorff, None) => d.max_pred_to_ref,
                    (DistanceKind::Hausdorff, Some(_)) => d.percentile_pred_to_ref,
                    (_, _) => d.mean_pred_to_ref,
                }),
                _ => {
                    let m = match (self.kind, self.percentile) {
                        (DistanceKind::Hausdorff, None) => DistanceMetric::Hausdorff,
                        (DistanceKind::Hausdorff, Some(_)) => {
                            DistanceMetric::PercentileHausdorff(PercentileDefinition::MaxDirected)
                        }
                        (DistanceKind::Average, _) => DistanceMetric::Assd,
                        (DistanceKind::MeanOfDirectedMeans, _) => DistanceMetric::Masd,
                    };
                    s.distance(m, grid, self.common.policy)
                }
            })
            .collect();
        Ok(self.common.report(values, n, c))
    }
}

/// Normalized surface Dice of integer label maps (MONAI's `SurfaceDiceMetric` without
/// subvoxels): `class_thresholds` in mm, one per class kept (without the background when
/// `include_background` is false, as MONAI); both masks empty follows `empty` (dice's default:
/// skipped).
#[derive(Clone, Debug)]
pub struct SurfaceDiceMetric {
    common: SurfaceCommon,
    class_thresholds: Vec<f64>,
    both_empty: EmptyValue,
}

impl SurfaceDiceMetric {
    /// With one tolerance (mm) per class kept.
    pub fn new(class_thresholds: &[f64]) -> Self {
        SurfaceDiceMetric {
            common: SurfaceCommon::new(),
            class_thresholds: class_thresholds.to_vec(),
            both_empty: EmptyValue::Skip,
        }
    }
    /// NSD when both masks are empty (MONAI: NaN).
    pub fn empty(mut self, v: EmptyValue) -> Self {
        self.both_empty = v;
        self
    }
    surface_common_setters!();

    /// NSD per (sample, class) and the means.
    pub fn compute(&self, pred: &Tensor, target: &Tensor) -> Result<SurfaceReport, TchError> {
        let first = usize::from(!self.common.include_background);
        let c = self.class_thresholds.len() + first;
        let mut tol = vec![0.0; first];
        tol.extend(&self.class_thresholds);
        let mut common = self.common.clone();
        common.num_classes = Some(common.num_classes.unwrap_or(c));
        if common.num_classes != Some(c) {
            return Err(TchError::Shape(format!(
                "dice: {} class_thresholds for {} classes (one per class kept)",
                self.class_thresholds.len(),
                common.num_classes.unwrap_or(0)
            )));
        }
        let (surfaces, _, n, c) = common.surfaces(pred, target, 95.0, Some(&tol))?;
        let values = surfaces.iter().map(|s| s.nsd(self.both_empty)).collect();
        Ok(common.report(values, n, c))
    }
}

fn core_err(e: dice_core::DiceError) -> TchError {
    TchError::Torch(format!("dice: {e}"))
}

fn to_vec<T: tch::kind::Element>(t: &Tensor) -> Result<Vec<T>, TchError>
where
    for<'a> Vec<T>: TryFrom<&'a Tensor, Error = TchError>,
{
    Vec::<T>::try_from(&t.contiguous().view(-1))
}
