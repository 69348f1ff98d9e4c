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
        let status = unsafe { dice::dice_soft_params_default(params.as_mut_ptr()) };
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
        if code != 0 || out.is_null() {
            // SAFETY: the shim NUL-terminates the message within the buffer.
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            return Err(TchError::Torch(msg));
        }
        // SAFETY: a fresh tensor from the shim, owned from here on.
        Ok(unsafe { Tensor::from_ptr(out) })
    }
}

/// Builder methods every loss has.
macro_rules! common_methods {
    ($t:ident) => {
        impl $t {
            /// Keep channel 0 as a class (MONAI's `include_background`, default `true`).
            pub fn include_background(mut self, on: bool) -> Self {
                self.0.params.include_background = u8::from(on);
                self
            }
            /// The input holds logits; apply a sigmoid (binary and multi-label).
            pub fn sigmoid(mut self, on: bool) -> Self {
                self.0.params.activation = if on {
                    dice::DiceActivation::Sigmoid as i32
                } else {
                    dice::DiceActivation::None as i32
                };
                self
            }
            /// The input holds logits; apply a softmax over the channels (multi-class).
            pub fn softmax(mut self, on: bool) -> Self {
                self.0.params.activation = if on {
                    dice::DiceActivation::Softmax as i32
                } else {
                    dice::DiceActivation::None as i32
                };
                self
            }
            /// Sum the statistics over the batch before scoring (nnU-Net's `batch_dice`).
            pub fn batch(mut self, on: bool) -> Self {
                self.0.params.batch = u8::from(on);
                self
            }
            /// Numerator smoothing (default `1e-5`).
            pub fn smooth_nr(mut self, v: f64) -> Self {
                self.0.params.smooth_nr = v;
                self
            }
            /// Denominator smoothing (default `1e-5`).
            pub fn smooth_dr(mut self, v: f64) -> Self {
                self.0.params.smooth_dr = v;
                self
            }
            /// How group losses are combined. With [`Reduction::None`] the result has one loss
            /// per group: `[N, C']`, `[C']` with `batch`, `[N]` (or `[1]`) for generalized Dice.
            pub fn reduction(mut self, r: Reduction) -> Self {
                self.0.params.reduction = match r {
                    Reduction::Mean => dice::DiceReduction::Mean,
                    Reduction::Sum => dice::DiceReduction::Sum,
                    Reduction::None => dice::DiceReduction::None,
                } as i32;
                self
            }
            /// Voxels whose label equals `index` are left out of every sum and get zero gradient
            /// (label-map targets).
            pub fn ignore_index(mut self, index: i64) -> Self {
                self.0.ignore_index = Some(index);
                self
            }
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
            /// Run the device (ATen) formulation even on CPU: what CUDA tensors use. For tests
            /// and comparisons; the CPU kernels are faster and leaner.
            pub fn force_aten(mut self, on: bool) -> Self {
                self.0.force_aten = on;
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

fn core_err(e: dice_core::DiceError) -> TchError {
    TchError::Torch(format!("dice: {e}"))
}

fn to_vec<T: tch::kind::Element>(t: &Tensor) -> Result<Vec<T>, TchError>
where
    for<'a> Vec<T>: TryFrom<&'a Tensor, Error = TchError>,
{
    Vec::<T>::try_from(&t.contiguous().view(-1))
}
