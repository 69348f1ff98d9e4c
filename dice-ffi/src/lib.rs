//! C ABI of `dice-core`.
//!
//! Thin by design: every function converts C arguments into `dice-core` calls and back, and
//! holds no math. Each `extern "C"` function
//! * checks every pointer (null, alignment) and every length (overflow-checked `N·C·S`) before
//!   forming a slice, and never reads or writes past the lengths it was given;
//! * receives enumerations as `int32_t` and validates them (an unknown value is
//!   [`DiceStatus::InvalidEnum`], never undefined behaviour);
//! * runs its body inside one boundary ([`boundary`]) that catches panics, records the error
//!   message for [`dice_last_error_message`] and returns a [`DiceStatus`];
//! * allocates nothing, except [`dice_accumulator_new`].

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use dice_core::hard::{self, EmptyPolicy, EmptyValue, Metric};
use dice_core::surface;
use dice_core::{
    Activation, DiceError, LabelSlice, LossForm, Moment, Reduction, Score, Shape, SoftInput,
    SoftLoss, SoftStats, Target, Upstream, Weighting,
};

// ---------------------------------------------------------------------------------------------
// Status, errors, boundary
// ---------------------------------------------------------------------------------------------

/// The result of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceStatus {
    /// Success.
    Ok = 0,
    /// A required pointer was NULL.
    NullPointer = 1,
    /// A buffer does not have the length the shape or another argument asks for.
    LengthMismatch = 2,
    /// `N·C·S` (or a byte size) overflows `size_t`.
    ShapeOverflow = 3,
    /// A dimension is zero or an input holds no element.
    Empty = 4,
    /// A NaN or infinity in an input.
    NonFinite = 5,
    /// A probability outside [0, 1] (logits passed as probabilities end up here).
    OutOfRange = 6,
    /// A label outside `0..classes` that is not the ignore label.
    LabelOutOfRange = 7,
    /// A parameter outside its domain, or a misaligned pointer.
    InvalidParameter = 8,
    /// An enumeration value that is not one of its constants.
    InvalidEnum = 9,
    /// Statistics with linear and squared moments were combined.
    MomentMismatch = 10,
    /// −ln(score) of a score that is not positive.
    LogOfNonPositive = 11,
    /// A bug in dice (a Rust panic, caught at the boundary). Please report it.
    Panic = 12,
    /// Memory for what was asked could not be allocated (nothing was changed).
    OutOfMemory = 13,
}

struct FfiError {
    status: DiceStatus,
    message: String,
}

impl From<DiceError> for FfiError {
    fn from(e: DiceError) -> Self {
        let status = match e {
            DiceError::LengthMismatch { .. } => DiceStatus::LengthMismatch,
            DiceError::ShapeOverflow { .. } => DiceStatus::ShapeOverflow,
            DiceError::Empty { .. } => DiceStatus::Empty,
            DiceError::NonFinite { .. } => DiceStatus::NonFinite,
            DiceError::OutOfRange { .. } => DiceStatus::OutOfRange,
            DiceError::LabelOutOfRange { .. } => DiceStatus::LabelOutOfRange,
            DiceError::InvalidParameter { .. } => DiceStatus::InvalidParameter,
            DiceError::MomentMismatch => DiceStatus::MomentMismatch,
            DiceError::LogOfNonPositive { .. } => DiceStatus::LogOfNonPositive,
        };
        FfiError {
            status,
            message: e.to_string(),
        }
    }
}

fn err(status: DiceStatus, message: impl Into<String>) -> FfiError {
    FfiError {
        status,
        message: message.into(),
    }
}

type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// The one boundary every `extern "C"` function runs its body in: a panic becomes
/// [`DiceStatus::Panic`], an error its status, and either one's message is kept for
/// [`dice_last_error_message`].
fn boundary(body: impl FnOnce() -> FfiResult) -> DiceStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => DiceStatus::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!(
                "internal error (a bug in dice, please report it): {what}"
            ));
            DiceStatus::Panic
        }
    }
}

/// A slice from a C pointer and length, after checking it: NULL is allowed only for `len = 0`;
/// the pointer must be aligned for `T`; `len·sizeof(T)` must fit in `isize`.
///
/// # Safety
/// If non-null, `ptr` must point to `len` initialised `T` that stay valid and unmodified for
/// `'a` (the C caller's promise, stated on every function).
unsafe fn slice<'a, T>(ptr: *const T, len: usize, what: &str) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    check_ptr(ptr, len, what)?;
    // SAFETY: non-null, aligned, size fits isize (checked); validity is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The mutable counterpart of [`slice`].
///
/// # Safety
/// If non-null, `ptr` must point to `len` `T` writable for `'a` and not aliased by any other
/// argument.
unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize, what: &str) -> FfiResult<&'a mut [T]> {
    if len == 0 {
        return Ok(&mut []);
    }
    check_ptr(ptr, len, what)?;
    // SAFETY: as in `slice`, plus exclusivity, which is the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn check_ptr<T>(ptr: *const T, len: usize, what: &str) -> FfiResult {
    if ptr.is_null() {
        return Err(err(
            DiceStatus::NullPointer,
            format!("{what} is NULL but its length is {len}"),
        ));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!("{what} is not aligned for its element type"),
        ));
    }
    if len
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(err(
            DiceStatus::ShapeOverflow,
            format!("{what}: {len} elements overflow the address space"),
        ));
    }
    Ok(())
}

/// A reference from a required C pointer.
///
/// # Safety
/// If non-null, `ptr` must point to a valid `T` for `'a`.
unsafe fn reference<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    check_ptr(ptr, 1, what)?;
    // SAFETY: non-null and aligned (checked); validity is the caller's promise.
    Ok(unsafe { &*ptr })
}

/// Writes through a required C out-pointer.
///
/// # Safety
/// If non-null, `ptr` must be valid for writing a `T`.
unsafe fn write<T>(ptr: *mut T, value: T, what: &str) -> FfiResult {
    check_ptr(ptr, 1, what)?;
    // SAFETY: non-null and aligned (checked); writability is the caller's promise.
    unsafe { ptr.write(value) };
    Ok(())
}

fn flag(v: u8) -> bool {
    v != 0
}

// ---------------------------------------------------------------------------------------------
// Enumerations (received as int32_t)
// ---------------------------------------------------------------------------------------------

/// `from_i32` for a C enumeration received as `int32_t`: an unknown value is an error.
macro_rules! from_i32 {
    ($name:ident { $($variant:ident),* $(,)? }) => {
        impl $name {
            fn from_i32(v: i32, what: &str) -> FfiResult<$name> {
                $(if v == $name::$variant as i32 {
                    return Ok($name::$variant);
                })*
                Err(err(DiceStatus::InvalidEnum, format!("{what} = {v} is not a {}", stringify!($name))))
            }
        }
    };
}

/// The soft score of a loss (`DiceSoftParams::score`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceScore {
    /// `(2I + s_nr)/(P + G + s_dr)`.
    Dice = 0,
    /// `(2I + s_nr)/(2(P + G − I) + s_dr)` (MONAI's `jaccard`).
    Jaccard = 1,
    /// `(I + s_nr)/(I + α·FP + β·FN + s_dr)`.
    Tversky = 2,
    /// `(2Σ w_c I_c + s_nr)/(Σ w_c (P_c + G_c) + s_dr)`.
    Generalized = 3,
}

from_i32!(DiceScore {
    Dice,
    Jaccard,
    Tversky,
    Generalized
});

/// Generalized Dice class weights (`DiceSoftParams::weighting`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceWeighting {
    /// `1/G_c²`.
    Square = 0,
    /// `1/G_c`.
    Simple = 1,
    /// `1`.
    Uniform = 2,
}

from_i32!(DiceWeighting {
    Square,
    Simple,
    Uniform
});

/// `1 − score` or `−ln(score)` (`DiceSoftParams::form`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceLossForm {
    /// `1 − score`.
    OneMinus = 0,
    /// `−ln(score)`.
    NegLog = 1,
}

from_i32!(DiceLossForm { OneMinus, NegLog });

/// How group losses combine (`DiceSoftParams::reduction`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceReduction {
    /// Mean over defined groups.
    Mean = 0,
    /// Sum over groups.
    Sum = 1,
    /// One value per group (their number is dice_soft_group_count(); read them with the
    /// `values` output of dice_soft_loss_from_stats()); the scalar is their sum.
    None = 2,
}

from_i32!(DiceReduction { Mean, Sum, None });

/// What an undefined or degenerate score becomes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceEmptyValue {
    /// NaN.
    Nan = 0,
    /// 1.
    One = 1,
    /// 0.
    Zero = 2,
    /// No value (left out of means).
    Skip = 3,
}

from_i32!(DiceEmptyValue {
    Nan,
    One,
    Zero,
    Skip
});

/// What the prediction holds (`DiceSoftParams::activation`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceActivation {
    /// Probabilities in [0, 1].
    None = 0,
    /// Logits, through an element-wise sigmoid.
    Sigmoid = 1,
    /// Logits, through a softmax over the channel axis.
    Softmax = 2,
}

from_i32!(DiceActivation {
    None,
    Sigmoid,
    Softmax
});

/// The form of a target (`DiceTarget::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceTargetKind {
    /// Dense `[N, C, S]` of the prediction's type (float or double).
    Dense = 0,
    /// Label map `[N, S]` of uint8_t.
    LabelsU8 = 1,
    /// Label map `[N, S]` of uint16_t.
    LabelsU16 = 2,
    /// Label map `[N, S]` of uint32_t.
    LabelsU32 = 3,
    /// Label map `[N, S]` of int32_t.
    LabelsI32 = 4,
    /// Label map `[N, S]` of int64_t.
    LabelsI64 = 5,
}

from_i32!(DiceTargetKind {
    Dense,
    LabelsU8,
    LabelsU16,
    LabelsU32,
    LabelsI32,
    LabelsI64
});

/// The element type of a label map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceLabelType {
    /// uint8_t.
    U8 = 0,
    /// uint16_t.
    U16 = 1,
    /// uint32_t.
    U32 = 2,
    /// int32_t.
    I32 = 3,
    /// int64_t.
    I64 = 4,
}

from_i32!(DiceLabelType {
    U8,
    U16,
    U32,
    I32,
    I64
});

/// A hard metric.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceMetric {
    /// `2TP/(2TP + FP + FN)`.
    Dice = 0,
    /// `TP/(TP + FP + FN)`.
    Iou = 1,
    /// `TP/(TP + FP)`.
    Precision = 2,
    /// `TP/(TP + FN)`.
    Recall = 3,
    /// `TN/(TN + FP)`.
    Specificity = 4,
    /// `1 − |FP − FN|/(2TP + FP + FN)`.
    VolumeSimilarity = 5,
}

from_i32!(DiceMetric {
    Dice,
    Iou,
    Precision,
    Recall,
    Specificity,
    VolumeSimilarity
});

impl DiceEmptyValue {
    fn core(self) -> EmptyValue {
        match self {
            DiceEmptyValue::Nan => EmptyValue::Nan,
            DiceEmptyValue::One => EmptyValue::One,
            DiceEmptyValue::Zero => EmptyValue::Zero,
            DiceEmptyValue::Skip => EmptyValue::Skip,
        }
    }
}

impl DiceMetric {
    fn core(self) -> Metric {
        match self {
            DiceMetric::Dice => Metric::Dice,
            DiceMetric::Iou => Metric::Iou,
            DiceMetric::Precision => Metric::Precision,
            DiceMetric::Recall => Metric::Recall,
            DiceMetric::Specificity => Metric::Specificity,
            DiceMetric::VolumeSimilarity => Metric::VolumeSimilarity,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plain structs
// ---------------------------------------------------------------------------------------------

/// The shape `[N, C, S]`: batch, channels, flattened spatial size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiceShape {
    /// N.
    pub batch: usize,
    /// C.
    pub channels: usize,
    /// S.
    pub spatial: usize,
}

impl DiceShape {
    fn core(self) -> Shape {
        Shape::new(self.batch, self.channels, self.spatial)
    }
}

/// Sufficient statistics of one (sample, class): `I = Σp·g`, `P = Σp` (or `Σp²`),
/// `G = Σg` (or `Σg²`), voxels counted. Sum them across chunks or processes, then score.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiceStats {
    /// `Σ p·g`.
    pub intersection: f64,
    /// `Σ p` or `Σ p²`.
    pub pred: f64,
    /// `Σ g` or `Σ g²`.
    pub target: f64,
    /// Voxels counted.
    pub voxels: u64,
    /// 1 when `pred` and `target` hold squares (`squared_pred`), else 0.
    pub squared: u8,
}

impl DiceStats {
    fn from_core(s: &SoftStats) -> DiceStats {
        DiceStats {
            intersection: s.intersection,
            pred: s.pred,
            target: s.target,
            voxels: s.voxels,
            squared: u8::from(s.moment == Moment::Squared),
        }
    }
}

/// Exact confusion counts of one class.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiceConfusion {
    /// True positives.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// False negatives.
    pub fn_: u64,
    /// True negatives.
    pub tn: u64,
}

impl DiceConfusion {
    fn from_core(c: &hard::Confusion) -> Self {
        DiceConfusion {
            tp: c.tp,
            fp: c.fp,
            fn_: c.fn_,
            tn: c.tn,
        }
    }
    fn core(&self) -> hard::Confusion {
        hard::Confusion {
            tp: self.tp,
            fp: self.fp,
            fn_: self.fn_,
            tn: self.tn,
        }
    }
}

/// The values of the two empty cases of hard metrics (each a ::DiceEmptyValue).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiceEmptyPolicy {
    /// Reference empty, prediction not.
    pub reference_empty: i32,
    /// Reference and prediction both empty.
    pub both_empty: i32,
}

impl DiceEmptyPolicy {
    fn core(self) -> FfiResult<EmptyPolicy> {
        Ok(EmptyPolicy {
            reference_empty: DiceEmptyValue::from_i32(self.reference_empty, "reference_empty")?
                .core(),
            both_empty: DiceEmptyValue::from_i32(self.both_empty, "both_empty")?.core(),
        })
    }
}

/// A reduced loss and how many groups defined it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiceLossValue {
    /// The loss after reduction.
    pub value: f64,
    /// Groups in the batch.
    pub groups: usize,
    /// Groups whose score was defined.
    pub defined: usize,
}

/// A target: dense `[N, C, S]` of the prediction's type, or a label map `[N, S]`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceTarget {
    /// A ::DiceTargetKind.
    pub kind: i32,
    /// The elements.
    pub data: *const c_void,
    /// Number of elements (`N·C·S` dense, `N·S` labels).
    pub len: usize,
    /// Non-zero when `ignore_index` applies (label maps only).
    pub has_ignore_index: u8,
    /// Voxels whose label equals this are left out of every sum (label maps only).
    pub ignore_index: i64,
}

/// Parameters of a soft loss; get the defaults (MONAI's) from dice_soft_params_default().
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceSoftParams {
    /// A ::DiceScore.
    pub score: i32,
    /// Tversky weight of false positives (`≥ 0`, `alpha + beta > 0`).
    pub alpha: f64,
    /// Tversky weight of false negatives.
    pub beta: f64,
    /// A ::DiceWeighting (generalized Dice).
    pub weighting: i32,
    /// Non-zero: `Σp²`, `Σg²` in the denominator (Dice and Jaccard).
    pub squared_pred: u8,
    /// Numerator smoothing `≥ 0` (default 1e-5).
    pub smooth_nr: f64,
    /// Denominator smoothing `≥ 0` (default 1e-5).
    pub smooth_dr: f64,
    /// A ::DiceLossForm.
    pub form: i32,
    /// Focal exponent `> 0` applied to each group's loss (1 = none).
    pub gamma: f64,
    /// Non-zero: channel 0 is a class (default 1).
    pub include_background: u8,
    /// Non-zero: sum statistics over the batch before scoring.
    pub batch: u8,
    /// A ::DiceReduction.
    pub reduction: i32,
    /// A ::DiceEmptyValue: the score of a group whose denominator is zero (default ONE).
    pub zero_denominator: i32,
    /// A ::DiceActivation: what the prediction holds.
    pub activation: i32,
    /// Per-channel weights multiplying each class's loss (NULL for none).
    pub class_weights: *const f64,
    /// Number of class weights (must be C when `class_weights` is not NULL).
    pub class_weights_len: usize,
}

impl DiceSoftParams {
    fn defaults() -> DiceSoftParams {
        let d = SoftLoss::dice();
        DiceSoftParams {
            score: DiceScore::Dice as i32,
            alpha: 0.5,
            beta: 0.5,
            weighting: DiceWeighting::Square as i32,
            squared_pred: 0,
            smooth_nr: d.smooth_nr,
            smooth_dr: d.smooth_dr,
            form: DiceLossForm::OneMinus as i32,
            gamma: 1.0,
            include_background: 1,
            batch: 0,
            reduction: DiceReduction::Mean as i32,
            zero_denominator: DiceEmptyValue::One as i32,
            activation: DiceActivation::None as i32,
            class_weights: std::ptr::null(),
            class_weights_len: 0,
        }
    }

    /// The core loss and activation.
    ///
    /// # Safety
    /// `class_weights`, if non-null, must point to `class_weights_len` doubles.
    unsafe fn core<'w>(&self) -> FfiResult<(SoftLoss<'w>, Option<Activation>)> {
        let weighting = match DiceWeighting::from_i32(self.weighting, "weighting")? {
            DiceWeighting::Square => Weighting::Square,
            DiceWeighting::Simple => Weighting::Simple,
            DiceWeighting::Uniform => Weighting::Uniform,
        };
        let score = match DiceScore::from_i32(self.score, "score")? {
            DiceScore::Dice => Score::Dice,
            DiceScore::Jaccard => Score::Jaccard,
            DiceScore::Tversky => Score::Tversky {
                alpha: self.alpha,
                beta: self.beta,
            },
            DiceScore::Generalized => Score::Generalized(weighting),
        };
        let form = match DiceLossForm::from_i32(self.form, "form")? {
            DiceLossForm::OneMinus => LossForm::OneMinus,
            DiceLossForm::NegLog => LossForm::NegLog,
        };
        let reduction = match DiceReduction::from_i32(self.reduction, "reduction")? {
            DiceReduction::Mean => Reduction::Mean,
            DiceReduction::Sum => Reduction::Sum,
            DiceReduction::None => Reduction::None,
        };
        let activation = match DiceActivation::from_i32(self.activation, "activation")? {
            DiceActivation::None => None,
            DiceActivation::Sigmoid => Some(Activation::Sigmoid),
            DiceActivation::Softmax => Some(Activation::Softmax),
        };
        let mut loss = SoftLoss {
            score,
            squared_pred: flag(self.squared_pred),
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            form,
            gamma: self.gamma,
            include_background: flag(self.include_background),
            batch: flag(self.batch),
            reduction,
            class_weights: None,
            zero_denominator: DiceEmptyValue::from_i32(self.zero_denominator, "zero_denominator")?
                .core(),
        };
        if !self.class_weights.is_null() || self.class_weights_len != 0 {
            // SAFETY: the caller's promise on `class_weights`.
            loss.class_weights = Some(unsafe {
                slice(self.class_weights, self.class_weights_len, "class_weights")?
            });
        }
        Ok((loss, activation))
    }
}

// ---------------------------------------------------------------------------------------------
// Library information
// ---------------------------------------------------------------------------------------------

/// The library version, `"MAJOR.MINOR.PATCH"` (a static string).
#[no_mangle]
pub extern "C" fn dice_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// A static, human-readable name of a status (`"ok"`, `"null pointer"`, …); unknown values
/// give `"unknown status"`.
#[no_mangle]
pub extern "C" fn dice_status_str(status: i32) -> *const c_char {
    let s: &'static str = match status {
        0 => "ok\0",
        1 => "null pointer\0",
        2 => "length mismatch\0",
        3 => "shape overflow\0",
        4 => "empty input\0",
        5 => "NaN or infinity\0",
        6 => "value outside [0, 1]\0",
        7 => "label out of range\0",
        8 => "invalid parameter\0",
        9 => "invalid enumeration value\0",
        10 => "moment mismatch\0",
        11 => "logarithm of a non-positive score\0",
        12 => "internal error (panic)\0",
        13 => "out of memory\0",
        _ => "unknown status\0",
    };
    s.as_ptr().cast()
}

/// The message of the last error on this thread (what was wrong and where), or `""` if none.
/// The pointer stays valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn dice_last_error_message() -> *const c_char {
    LAST_ERROR.with(|l| l.borrow().as_ptr())
}

// ---------------------------------------------------------------------------------------------
// Soft losses
// ---------------------------------------------------------------------------------------------

/// Writes MONAI's defaults into `*out`: Dice, `smooth_nr = smooth_dr = 1e-5`,
/// `include_background = 1`, `batch = 0`, mean reduction, `1 − score`, `gamma = 1`,
/// probabilities (no activation), zero-denominator ONE, Tversky `alpha = beta = 0.5`,
/// square weighting.
///
/// # Safety
/// `out` must be NULL or valid for writing a ::DiceSoftParams.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_params_default(out: *mut DiceSoftParams) -> DiceStatus {
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write(out, DiceSoftParams::defaults(), "out") })
}

/// The number of groups (values of a `NONE` reduction) for these parameters and shape.
///
/// # Safety
/// `params` and `out` must be NULL or valid; `params->class_weights` as documented there.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_group_count(
    params: *const DiceSoftParams,
    shape: DiceShape,
    out: *mut usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises on `params` and `out`.
        let (loss, _) = unsafe { reference(params, "params")?.core()? };
        loss.validate(shape.core())?;
        unsafe { write(out, loss.group_count(shape.core()), "out") }
    })
}

/// Builds the core input from C buffers of element type `T`.
///
/// # Safety
/// The pointers must satisfy the promises of the calling function.
unsafe fn soft_input<'a, T: dice_core::Float>(
    shape: DiceShape,
    pred: *const T,
    target: &DiceTarget,
    mask: *const u8,
) -> FfiResult<SoftInput<'a, T>> {
    let s = shape.core();
    let len = s.elements()?;
    let voxels = s.voxels()?;
    // SAFETY (all four blocks): the caller's promise that each pointer holds its length.
    let pred = unsafe { slice(pred, len, "pred")? };
    let ignore_index = flag(target.has_ignore_index).then_some(target.ignore_index);
    let kind = DiceTargetKind::from_i32(target.kind, "target.kind")?;
    if kind != DiceTargetKind::Dense && target.len != voxels {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Labels,
            expected: voxels,
            found: target.len,
        }
        .into());
    }
    if kind == DiceTargetKind::Dense && target.len != len {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Target,
            expected: len,
            found: target.len,
        }
        .into());
    }
    let labels = |l: LabelSlice<'a>| Target::Labels {
        labels: l,
        ignore_index,
    };
    let t = match kind {
        DiceTargetKind::Dense => {
            Target::Dense(unsafe { slice(target.data.cast::<T>(), len, "target.data")? })
        }
        DiceTargetKind::LabelsU8 => labels(LabelSlice::U8(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsU16 => labels(LabelSlice::U16(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsU32 => labels(LabelSlice::U32(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsI32 => labels(LabelSlice::I32(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
        DiceTargetKind::LabelsI64 => labels(LabelSlice::I64(unsafe {
            slice(target.data.cast(), voxels, "target.data")?
        })),
    };
    let input = SoftInput::new(s, pred, t)?;
    if mask.is_null() {
        Ok(input)
    } else {
        Ok(input.with_mask(unsafe { slice(mask, voxels, "mask")? })?)
    }
}

// `DiceStats` and `SoftStats` have the same layout, so the caller's buffer serves as the core's
// workspace without a copy or an allocation. Checked at compile time, field by field.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<DiceStats>() == size_of::<SoftStats>());
    assert!(align_of::<DiceStats>() == align_of::<SoftStats>());
    assert!(offset_of!(DiceStats, intersection) == offset_of!(SoftStats, intersection));
    assert!(offset_of!(DiceStats, pred) == offset_of!(SoftStats, pred));
    assert!(offset_of!(DiceStats, target) == offset_of!(SoftStats, target));
    assert!(offset_of!(DiceStats, voxels) == offset_of!(SoftStats, voxels));
    assert!(offset_of!(DiceStats, squared) == offset_of!(SoftStats, moment));
    assert!(size_of::<Moment>() == 1 && Moment::Linear as u8 == 0 && Moment::Squared as u8 == 1);
};

/// The caller's statistics as core statistics, after checking every `squared` byte is 0 or 1
/// (the only valid `Moment` values).
fn stats_in(s: &[DiceStats]) -> FfiResult<&[SoftStats]> {
    if let Some(i) = s.iter().position(|x| x.squared > 1) {
        return Err(err(
            DiceStatus::InvalidEnum,
            format!("stats[{i}].squared = {} is not 0 or 1", s[i].squared),
        ));
    }
    for (i, x) in s.iter().enumerate() {
        possible_stats(i, x)?;
    }
    // SAFETY: identical layout (checked above) and every `squared` byte is a valid `Moment`.
    Ok(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<SoftStats>(), s.len()) })
}

/// Rejects statistics that no probabilities and targets in [0, 1] can have: a sum that is
/// NaN, infinite or negative, or an intersection `Σp·g` above `Σp` or `Σg` (beyond rounding).
/// With squared moments `Σp·g ≤ √(Σp²·Σg²)` (Cauchy–Schwarz) is the bound.
fn possible_stats(i: usize, x: &DiceStats) -> FfiResult {
    let sums = [
        ("intersection", x.intersection),
        ("pred", x.pred),
        ("target", x.target),
    ];
    if let Some((name, v)) = sums.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!("stats[{i}].{name} = {v} is not a finite sum of values in [0, 1]"),
        ));
    }
    let bound = if x.squared == 1 {
        (x.pred * x.target).sqrt()
    } else {
        x.pred.min(x.target)
    };
    // Sums of f32 products carry a relative error of about 1e-6; allow that, no more.
    if x.intersection > bound * (1.0 + 1e-6) + 1e-9 {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "stats[{i}] is impossible: intersection {} exceeds {} (pred {}, target {})",
                x.intersection,
                if x.squared == 1 {
                    "sqrt(pred * target)"
                } else {
                    "min(pred, target)"
                },
                x.pred,
                x.target
            ),
        ));
    }
    Ok(())
}

/// The caller's statistics buffer as core statistics to write into: reset first, so that
/// every element is a valid `SoftStats` whatever the buffer held.
fn stats_out(s: &mut [DiceStats]) -> &mut [SoftStats] {
    s.fill(DiceStats::default());
    // SAFETY: identical layout (checked above); every element was just made valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<SoftStats>(), s.len()) }
}

fn check_pairs(shape: DiceShape, stats_len: usize) -> FfiResult {
    let pairs = shape.core().pairs()?;
    if stats_len != pairs {
        return Err(DiceError::LengthMismatch {
            operand: dice_core::Operand::Statistics,
            expected: pairs,
            found: stats_len,
        }
        .into());
    }
    Ok(())
}

/// Shared body of dice_soft_loss_f32() and dice_soft_loss_f64().
///
/// # Safety
/// As documented on dice_soft_loss_f32().
#[allow(clippy::too_many_arguments)]
unsafe fn soft_loss<T: dice_core::Float>(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const T,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut T,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> FfiResult {
    // SAFETY: every pointer below carries the caller's promise and is checked for NULL,
    // alignment and length before use.
    let (loss, activation) = unsafe { reference(params, "params")?.core()? };
    let target = unsafe { reference(target, "target")? };
    let input = unsafe { soft_input(shape, pred, target, mask)? };
    check_pairs(shape, stats_len)?;
    let ws = stats_out(unsafe { slice_mut(stats, stats_len, "stats")? });
    let value = match (activation, grad.is_null()) {
        (Some(act), false) => {
            let g = unsafe { slice_mut(grad, grad_len, "grad")? };
            loss.loss_and_gradient_logits(&input, act, ws, g)?
        }
        (Some(_), true) => {
            return Err(err(
                DiceStatus::NullPointer,
                "logits need the grad buffer (it first holds the probabilities)",
            ))
        }
        (None, false) => {
            let g = unsafe { slice_mut(grad, grad_len, "grad")? };
            loss.loss_and_gradient(&input, ws, g)?
        }
        (None, true) => {
            loss.statistics(&input, ws)?;
            loss.loss(shape.core(), ws)?
        }
    };
    unsafe {
        write(
            out,
            DiceLossValue {
                value: value.value,
                groups: value.groups,
                defined: value.defined,
            },
            "out",
        )
    }
}

/// Soft loss of a batch of `float` predictions `[N, C, S]`, with its gradient.
///
/// - `params`: the loss (see ::DiceSoftParams; `activation` says whether `pred` holds
///   probabilities or logits).
/// - `target`: dense `[N, C, S]` floats or a label map `[N, S]` (see ::DiceTarget).
/// - `mask`: NULL, or `N·S` bytes; voxels whose byte is 0 are left out and get zero gradient.
/// - `stats`: workspace of `stats_len = N·C` ::DiceStats; holds each (sample, class)'s
///   statistics on return (sum them across processes for a distributed loss).
/// - `grad`: NULL for the value only, or `grad_len = N·C·S` floats receiving ∂loss/∂pred
///   (∂loss/∂logits with an activation, which requires it).
/// - `out`: the reduced loss.
///
/// Errors: NULL pointers, lengths, NaN/∞, probabilities outside [0, 1], labels out of range,
/// invalid parameters or enumerations; see dice_last_error_message().
///
/// # Safety
/// Every non-NULL pointer must be valid for the number of elements stated, `grad` and `stats`
/// writable and not overlapping any input, for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_f32(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f32,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f32,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_loss(
            params, shape, pred, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

/// dice_soft_loss_f32() for `double` predictions (and dense `double` targets).
///
/// # Safety
/// As dice_soft_loss_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_f64(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f64,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *mut DiceStats,
    stats_len: usize,
    grad: *mut f64,
    grad_len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_loss(
            params, shape, pred, target, mask, stats, stats_len, grad, grad_len, out,
        )
    })
}

/// The reduced loss from statistics (`N·C` of them, e.g. summed across processes), and, when
/// `values` is not NULL, each group's loss (`len` = dice_soft_group_count()) with
/// `defined[g]` = 0 for a group skipped by the zero-denominator policy.
///
/// # Safety
/// `params`, `stats` (`stats_len`), `values` and `defined` (`len` each, or NULL), `out` valid.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_loss_from_stats(
    params: *const DiceSoftParams,
    shape: DiceShape,
    stats: *const DiceStats,
    stats_len: usize,
    values: *mut f64,
    defined: *mut u8,
    len: usize,
    out: *mut DiceLossValue,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (loss, _) = unsafe { reference(params, "params")?.core()? };
        check_pairs(shape, stats_len)?;
        let st = stats_in(unsafe { slice(stats, stats_len, "stats")? })?;
        let v = if values.is_null() {
            loss.loss(shape.core(), st)?
        } else {
            let groups = loss.group_count(shape.core());
            if len != groups {
                return Err(DiceError::LengthMismatch {
                    operand: dice_core::Operand::Output,
                    expected: groups,
                    found: len,
                }
                .into());
            }
            let vals = unsafe { slice_mut(values, len, "values")? };
            let def = unsafe { slice_mut(defined, len, "defined")? };
            loss.for_each_group(shape.core(), st, |g, l| {
                vals[g] = l.unwrap_or(f64::NAN);
                def[g] = u8::from(l.is_some());
            })?
        };
        unsafe {
            write(
                out,
                DiceLossValue {
                    value: v.value,
                    groups: v.groups,
                    defined: v.defined,
                },
                "out",
            )
        }
    })
}

/// Shared body of the gradient entry points.
///
/// # Safety
/// As dice_soft_gradient_f32().
#[allow(clippy::too_many_arguments)]
unsafe fn soft_gradient<T: dice_core::Float>(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const T,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut T,
    grad_len: usize,
) -> FfiResult {
    // SAFETY: every pointer carries the caller's promise and is checked before use.
    let (loss, activation) = unsafe { reference(params, "params")?.core()? };
    let target = unsafe { reference(target, "target")? };
    let input = unsafe { soft_input(shape, pred, target, mask)? };
    check_pairs(shape, stats_len)?;
    let st = stats_in(unsafe { slice(stats, stats_len, "stats")? })?;
    let up = unsafe { slice(upstream, upstream_len, "upstream")? };
    if loss.reduction != Reduction::None && up.len() != 1 {
        return Err(err(
            DiceStatus::LengthMismatch,
            format!(
                "upstream has {} values: a reduced loss (MEAN or SUM) takes exactly 1; one per \
                 group needs reduction NONE",
                up.len()
            ),
        ));
    }
    let upstream = match up.len() {
        1 if loss.reduction != Reduction::None || loss.group_count(shape.core()) == 1 => {
            Upstream::Scalar(up[0])
        }
        _ => Upstream::PerGroup(up),
    };
    let g = unsafe { slice_mut(grad, grad_len, "grad")? };
    match activation {
        None => Ok(loss.gradient(&input, st, upstream, g)?),
        Some(act) => Ok(loss.gradient_logits(&input, act, st, upstream, g)?),
    }
}

/// ∂loss/∂pred given statistics `stats` (`N·C`, of the probabilities, e.g. all-reduced across
/// processes) and the upstream gradient: one value (`upstream_len = 1`) scaling the reduced
/// loss (or every group's loss with a `NONE` reduction), or one per group with a `NONE`
/// reduction. `pred` holds probabilities, or logits when `params->activation` says so (then
/// the gradient is with respect to the logits). Writes `grad_len = N·C·S` floats.
///
/// # Safety
/// Every non-NULL pointer must be valid for the number of elements stated; `grad` writable
/// and not overlapping any input.
#[no_mangle]
pub unsafe extern "C" fn dice_soft_gradient_f32(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f32,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut f32,
    grad_len: usize,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_gradient(
            params,
            shape,
            pred,
            target,
            mask,
            stats,
            stats_len,
            upstream,
            upstream_len,
            grad,
            grad_len,
        )
    })
}

/// dice_soft_gradient_f32() for `double`.
///
/// # Safety
/// As dice_soft_gradient_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_soft_gradient_f64(
    params: *const DiceSoftParams,
    shape: DiceShape,
    pred: *const f64,
    target: *const DiceTarget,
    mask: *const u8,
    stats: *const DiceStats,
    stats_len: usize,
    upstream: *const f64,
    upstream_len: usize,
    grad: *mut f64,
    grad_len: usize,
) -> DiceStatus {
    // SAFETY: forwarded caller promises.
    boundary(|| unsafe {
        soft_gradient(
            params,
            shape,
            pred,
            target,
            mask,
            stats,
            stats_len,
            upstream,
            upstream_len,
            grad,
            grad_len,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Hard metrics
// ---------------------------------------------------------------------------------------------

/// Writes this library's default empty policy: reference empty → ZERO, both empty → SKIP.
///
/// # Safety
/// `out` must be NULL or valid for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_empty_policy_default(out: *mut DiceEmptyPolicy) -> DiceStatus {
    let p = DiceEmptyPolicy {
        reference_empty: DiceEmptyValue::Zero as i32,
        both_empty: DiceEmptyValue::Skip as i32,
    };
    // SAFETY: the caller's promise on `out`.
    boundary(|| unsafe { write(out, p, "out") })
}

/// Confusion counts of `pred ≥ threshold` against `target ≥ threshold`, both `len` floats in
/// [0, 1].
///
/// # Safety
/// `pred` and `target` valid for `len` floats, `out` for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_probabilities_f32(
    pred: *const f32,
    target: *const f32,
    len: usize,
    threshold: f64,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_probabilities(p, t, threshold)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// dice_confusion_from_probabilities_f32() for `double`.
///
/// # Safety
/// As dice_confusion_from_probabilities_f32().
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_probabilities_f64(
    pred: *const f64,
    target: *const f64,
    len: usize,
    threshold: f64,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_probabilities(p, t, threshold)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// Confusion counts of two binary masks of `len` bytes (non-zero = positive).
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `out` for writing.
#[no_mangle]
pub unsafe extern "C" fn dice_confusion_from_masks_u8(
    pred: *const u8,
    target: *const u8,
    len: usize,
    out: *mut DiceConfusion,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let c = hard::confusion_from_masks(p, t)?;
        unsafe { write(out, DiceConfusion::from_core(&c), "out") }
    })
}

/// Per-label confusion counts of two label maps of `len` voxels of type `label_type` (a
/// ::DiceLabelType), every label in one pass: `out[l]` for `l < labels`. Voxels whose
/// *reference* equals `ignore_index` (when `has_ignore_index`) are left out. `counted`, if
/// not NULL, receives the number of voxels counted.
///
/// # Safety
/// `pred` and `target` valid for `len` elements of the label type, `out` for `labels`
/// writable ::DiceConfusion, `counted` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn dice_label_confusion(
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    has_ignore_index: u8,
    ignore_index: i64,
    out: *mut DiceConfusion,
    labels: usize,
    counted: *mut u64,
) -> DiceStatus {
    boundary(|| {
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        let ignore = flag(has_ignore_index).then_some(ignore_index);
        // SAFETY: the caller's promises, checked before use.
        let out = unsafe { slice_mut(out, labels, "out")? };
        let n = unsafe { label_confusion_typed(ty, pred, target, len, ignore, out)? };
        if !counted.is_null() {
            unsafe { write(counted, n, "counted")? };
        }
        Ok(())
    })
}

/// Runs `$body` with `$p` and `$t` bound to the two label maps as slices of the type `$ty` (a
/// ::DiceLabelType) names, after the pointer checks. Use inside `unsafe`: the caller promises
/// both pointers hold `$len` elements of that type.
macro_rules! with_label_slices {
    ($ty:expr, $pred:expr, $target:expr, $len:expr, |$p:ident, $t:ident| $body:expr) => {
        match $ty {
            DiceLabelType::U8 => {
                let ($p, $t) = (
                    slice::<u8>($pred.cast(), $len, "pred")?,
                    slice::<u8>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::U16 => {
                let ($p, $t) = (
                    slice::<u16>($pred.cast(), $len, "pred")?,
                    slice::<u16>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::U32 => {
                let ($p, $t) = (
                    slice::<u32>($pred.cast(), $len, "pred")?,
                    slice::<u32>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::I32 => {
                let ($p, $t) = (
                    slice::<i32>($pred.cast(), $len, "pred")?,
                    slice::<i32>($target.cast(), $len, "target")?,
                );
                $body
            }
            DiceLabelType::I64 => {
                let ($p, $t) = (
                    slice::<i64>($pred.cast(), $len, "pred")?,
                    slice::<i64>($target.cast(), $len, "target")?,
                );
                $body
            }
        }
    };
}

/// # Safety
/// `pred` and `target` valid for `len` elements of `ty`.
unsafe fn label_confusion_typed(
    ty: DiceLabelType,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    ignore: Option<i64>,
    out: &mut [DiceConfusion],
) -> FfiResult<u64> {
    // Counts go straight into the caller's buffer, converted in place: `DiceConfusion` and
    // `hard::Confusion` are four u64 each, but only the latter is the core's type, so convert
    // through a fixed stack chunk to keep the hot path allocation-free.
    fn run<L: dice_core::Label>(
        p: &[L],
        t: &[L],
        ignore: Option<i64>,
        out: &mut [DiceConfusion],
    ) -> FfiResult<u64> {
        let core = confusions_out(out);
        let n = hard::label_confusion(p, t, ignore, core)?;
        Ok(n)
    }
    // SAFETY: the caller's promise that both pointers hold `len` elements of `ty`.
    unsafe { with_label_slices!(ty, pred, target, len, |p, t| run(p, t, ignore, out)) }
}

// `DiceConfusion` and `hard::Confusion` have the same layout (four u64, every bit pattern
// valid), so the caller's buffer holds the core's counts directly.
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<DiceConfusion>() == size_of::<hard::Confusion>());
    assert!(align_of::<DiceConfusion>() == align_of::<hard::Confusion>());
    assert!(offset_of!(DiceConfusion, tp) == offset_of!(hard::Confusion, tp));
    assert!(offset_of!(DiceConfusion, fp) == offset_of!(hard::Confusion, fp));
    assert!(offset_of!(DiceConfusion, fn_) == offset_of!(hard::Confusion, fn_));
    assert!(offset_of!(DiceConfusion, tn) == offset_of!(hard::Confusion, tn));
};

fn confusions_out(s: &mut [DiceConfusion]) -> &mut [hard::Confusion] {
    // SAFETY: identical layout (checked above); every bit pattern of four u64 is valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<hard::Confusion>(), s.len()) }
}

/// One hard metric (a ::DiceMetric) of each of `n` confusion counts under `policy`:
/// `values[i]` receives the value (NaN when skipped) and `defined[i]` 1, or 0 when the empty
/// policy skipped it.
///
/// # Safety
/// `counts` valid for `n`, `values` and `defined` writable for `n`.
#[no_mangle]
pub unsafe extern "C" fn dice_metrics(
    counts: *const DiceConfusion,
    n: usize,
    metric: i32,
    policy: DiceEmptyPolicy,
    values: *mut f64,
    defined: *mut u8,
) -> DiceStatus {
    boundary(|| {
        let metric = DiceMetric::from_i32(metric, "metric")?.core();
        let policy = policy.core()?;
        // SAFETY: the caller's promises, checked before use.
        let (c, v, d) = unsafe {
            (
                slice(counts, n, "counts")?,
                slice_mut(values, n, "values")?,
                slice_mut(defined, n, "defined")?,
            )
        };
        if let Some(i) = c.iter().position(|k| k.core().validate().is_err()) {
            let k = c[i];
            return Err(err(
                DiceStatus::InvalidParameter,
                format!(
                    "counts[{i}] = (tp {}, fp {}, fn {}, tn {}) overflow u64 when summed: not the \
                     counts of one set of voxels",
                    k.tp, k.fp, k.fn_, k.tn
                ),
            ));
        }
        for i in 0..n {
            let m = c[i].core().metric(metric, policy);
            v[i] = m.unwrap_or(f64::NAN);
            d[i] = u8::from(m.is_some());
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Surface distances
// ---------------------------------------------------------------------------------------------

/// A 2-D or 3-D image: sizes (x fastest; `z = 1` for 2-D) and spacing in mm per axis.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceGrid {
    /// Voxels along x, y, z.
    pub dims: [usize; 3],
    /// Millimetres per voxel along x, y, z (positive, finite).
    pub spacing: [f64; 3],
}

impl DiceGrid {
    fn core(self) -> FfiResult<surface::Grid> {
        Ok(surface::Grid::new(self.dims, self.spacing)?)
    }
}

/// Which masks of a pair were empty (`DiceSurfaceDistances::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceKind {
    /// Both masks have voxels: the distances are set.
    Distances = 0,
    /// The reference is empty, the prediction not.
    ReferenceEmpty = 1,
    /// The prediction is empty, the reference not.
    PredictionEmpty = 2,
    /// Both are empty.
    BothEmpty = 3,
}

from_i32!(DiceSurfaceKind {
    Distances,
    ReferenceEmpty,
    PredictionEmpty,
    BothEmpty
});

/// Surface distances of a pair (mm), as dice-core's `SurfaceDistances`; every field 0 unless
/// `kind` is ::DICE_SURFACE_KIND_DISTANCES. Score them with dice_surface_metric().
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DiceSurfaceDistances {
    /// A ::DiceSurfaceKind.
    pub kind: i32,
    /// Surface voxels of the prediction and of the reference.
    pub pred_surface: u64,
    /// See `pred_surface`.
    pub ref_surface: u64,
    /// Directed maxima (mm).
    pub max_pred_to_ref: f64,
    /// See `max_pred_to_ref`.
    pub max_ref_to_pred: f64,
    /// Directed means (mm).
    pub mean_pred_to_ref: f64,
    /// See `mean_pred_to_ref`.
    pub mean_ref_to_pred: f64,
    /// Directed percentiles (mm) at the percentile asked for.
    pub percentile_pred_to_ref: f64,
    /// See `percentile_pred_to_ref`.
    pub percentile_ref_to_pred: f64,
    /// The percentile of the pooled distances (mm).
    pub percentile_pooled: f64,
    /// Surface voxels within the NSD tolerance of the other surface.
    pub pred_within_tolerance: u64,
    /// See `pred_within_tolerance`.
    pub ref_within_tolerance: u64,
    /// The surfaces' sizes: voxel counts, or surfel areas (mm², mm in 2-D).
    pub pred_area: f64,
    /// See `pred_area`.
    pub ref_area: f64,
    /// The parts of the surfaces within the NSD tolerance, likewise.
    pub pred_area_within: f64,
    /// See `pred_area_within`.
    pub ref_area_within: f64,
}

impl DiceSurfaceDistances {
    fn from_core(s: &surface::Surfaces) -> Self {
        match s {
            surface::Surfaces::Distances(d) => DiceSurfaceDistances {
                kind: DiceSurfaceKind::Distances as i32,
                pred_surface: d.pred_surface,
                ref_surface: d.ref_surface,
                max_pred_to_ref: d.max_pred_to_ref,
                max_ref_to_pred: d.max_ref_to_pred,
                mean_pred_to_ref: d.mean_pred_to_ref,
                mean_ref_to_pred: d.mean_ref_to_pred,
                percentile_pred_to_ref: d.percentile_pred_to_ref,
                percentile_ref_to_pred: d.percentile_ref_to_pred,
                percentile_pooled: d.percentile_pooled,
                pred_within_tolerance: d.pred_within_tolerance,
                ref_within_tolerance: d.ref_within_tolerance,
                pred_area: d.pred_area,
                ref_area: d.ref_area,
                pred_area_within: d.pred_area_within,
                ref_area_within: d.ref_area_within,
            },
            surface::Surfaces::ReferenceEmpty => Self::empty(DiceSurfaceKind::ReferenceEmpty),
            surface::Surfaces::PredictionEmpty => Self::empty(DiceSurfaceKind::PredictionEmpty),
            surface::Surfaces::BothEmpty => Self::empty(DiceSurfaceKind::BothEmpty),
        }
    }

    fn empty(kind: DiceSurfaceKind) -> Self {
        DiceSurfaceDistances {
            kind: kind as i32,
            ..Default::default()
        }
    }

    fn core(&self) -> FfiResult<surface::Surfaces> {
        Ok(
            match DiceSurfaceKind::from_i32(self.kind, "surfaces->kind")? {
                DiceSurfaceKind::Distances => {
                    if self.pred_surface == 0
                        || self.ref_surface == 0
                        || !(self.pred_area > 0.0 && self.ref_area > 0.0)
                    {
                        return Err(err(
                            DiceStatus::InvalidParameter,
                            "surfaces->kind says distances, but a surface has no voxel",
                        ));
                    }
                    surface::Surfaces::Distances(surface::SurfaceDistances {
                        pred_surface: self.pred_surface,
                        ref_surface: self.ref_surface,
                        max_pred_to_ref: self.max_pred_to_ref,
                        max_ref_to_pred: self.max_ref_to_pred,
                        mean_pred_to_ref: self.mean_pred_to_ref,
                        mean_ref_to_pred: self.mean_ref_to_pred,
                        percentile_pred_to_ref: self.percentile_pred_to_ref,
                        percentile_ref_to_pred: self.percentile_ref_to_pred,
                        percentile_pooled: self.percentile_pooled,
                        pred_within_tolerance: self.pred_within_tolerance,
                        ref_within_tolerance: self.ref_within_tolerance,
                        pred_area: self.pred_area,
                        ref_area: self.ref_area,
                        pred_area_within: self.pred_area_within,
                        ref_area_within: self.ref_area_within,
                    })
                }
                DiceSurfaceKind::ReferenceEmpty => surface::Surfaces::ReferenceEmpty,
                DiceSurfaceKind::PredictionEmpty => surface::Surfaces::PredictionEmpty,
                DiceSurfaceKind::BothEmpty => surface::Surfaces::BothEmpty,
            },
        )
    }
}

/// What surfaces are made of (`elements` of the surface functions).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceElements {
    /// Boundary voxels, each counting 1 (medpy, MONAI without subvoxels).
    Voxels = 0,
    /// Surfels with areas (DeepMind surface-distance, MONAI `use_subvoxels`).
    Surfels = 1,
}

from_i32!(DiceSurfaceElements { Voxels, Surfels });

impl DiceSurfaceElements {
    fn core(self) -> surface::Elements {
        match self {
            DiceSurfaceElements::Voxels => surface::Elements::Voxels,
            DiceSurfaceElements::Surfels => surface::Elements::Surfels,
        }
    }
}

/// A surface metric (dice_surface_metric()).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceSurfaceMetric {
    /// Hausdorff distance.
    Hausdorff = 0,
    /// The larger of the two directed percentiles (MONAI, DeepMind, MetricsReloaded).
    PercentileMaxDirected = 1,
    /// The percentile of the pooled distances (medpy `hd95`).
    PercentilePooled = 2,
    /// Mean of the pooled distances (medpy `assd`, MONAI symmetric).
    Assd = 3,
    /// Mean of the directed means (MetricsReloaded `masd`).
    Masd = 4,
    /// Normalized surface Dice (counted).
    Nsd = 5,
}

from_i32!(DiceSurfaceMetric {
    Hausdorff,
    PercentileMaxDirected,
    PercentilePooled,
    Assd,
    Masd,
    Nsd
});

/// What a distance becomes with an empty mask (`DiceEmptyDistance::kind`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiceEmptyDistanceKind {
    /// NaN.
    Nan = 0,
    /// No value (`defined` = 0).
    Skip = 1,
    /// 0.
    Zero = 2,
    /// +∞ (MONAI, one mask empty).
    Infinity = 3,
    /// The image diagonal (MetricsReloaded's worst case).
    Diagonal = 4,
    /// `DiceEmptyDistance::value` mm (a fixed penalty, e.g. BraTS's 373.13).
    Value = 5,
}

from_i32!(DiceEmptyDistanceKind {
    Nan,
    Skip,
    Zero,
    Infinity,
    Diagonal,
    Value
});

/// An empty-mask distance.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceEmptyDistance {
    /// A ::DiceEmptyDistanceKind.
    pub kind: i32,
    /// The penalty of ::DICE_EMPTY_DISTANCE_KIND_VALUE (mm, finite, ≥ 0).
    pub value: f64,
}

impl DiceEmptyDistance {
    fn core(self, what: &str) -> FfiResult<surface::EmptyDistance> {
        Ok(match DiceEmptyDistanceKind::from_i32(self.kind, what)? {
            DiceEmptyDistanceKind::Nan => surface::EmptyDistance::Nan,
            DiceEmptyDistanceKind::Skip => surface::EmptyDistance::Skip,
            DiceEmptyDistanceKind::Zero => surface::EmptyDistance::Zero,
            DiceEmptyDistanceKind::Infinity => surface::EmptyDistance::Infinity,
            DiceEmptyDistanceKind::Diagonal => surface::EmptyDistance::Diagonal,
            DiceEmptyDistanceKind::Value => {
                if !(self.value.is_finite() && self.value >= 0.0) {
                    return Err(err(
                        DiceStatus::InvalidParameter,
                        format!(
                            "{what}.value = {} must be a finite number of mm >= 0",
                            self.value
                        ),
                    ));
                }
                surface::EmptyDistance::Value(self.value)
            }
        })
    }
}

/// Distances with empty masks: `one_empty` when one mask is empty, `both_empty` when both are;
/// NSD is 0 with one mask empty and `nsd_both_empty` (a ::DiceEmptyValue) with both.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiceSurfaceEmptyPolicy {
    /// One mask empty.
    pub one_empty: DiceEmptyDistance,
    /// Both masks empty.
    pub both_empty: DiceEmptyDistance,
    /// NSD with both masks empty (a ::DiceEmptyValue).
    pub nsd_both_empty: i32,
}

/// Both masks hold the grid's voxels.
fn check_masks(g: surface::Grid, p: &[u8], t: &[u8]) -> FfiResult {
    for (op, m) in [
        (dice_core::Operand::Prediction, p),
        (dice_core::Operand::Target, t),
    ] {
        if m.len() != g.voxels() {
            return Err(DiceError::LengthMismatch {
                operand: op,
                expected: g.voxels(),
                found: m.len(),
            }
            .into());
        }
    }
    Ok(())
}

/// `f64` elements of scratch dice_surface_distances() needs for this pair (0 when a mask is
/// empty): the masks' bounding box, both surfaces and one line.
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn dice_surface_scratch_len(
    elements: i32,
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    out: *mut usize,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let g = grid.core()?;
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        check_masks(g, p, t)?;
        let (pf, tf) = (|i: usize| p[i] != 0, |i: usize| t[i] != 0);
        let n = surface::scratch_len_for(el, g, surface::bounding_box(g, p, t), &pf, &tf);
        unsafe { write(out, n, "out") }
    })
}

/// Surface distances of two masks (`u8`, non-zero = inside; `len` = the grid's voxels) at
/// `percentile` (in [0, 100]) with NSD tolerance `tolerance` (mm), using the caller's scratch
/// of at least dice_surface_scratch_len() doubles (nothing is allocated).
///
/// # Safety
/// `pred` and `target` valid for `len` bytes, `scratch` writable for `scratch_len` doubles and
/// not overlapping them, `out` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_surface_distances(
    elements: i32,
    grid: DiceGrid,
    pred: *const u8,
    target: *const u8,
    len: usize,
    percentile: f64,
    tolerance: f64,
    scratch: *mut f64,
    scratch_len: usize,
    out: *mut DiceSurfaceDistances,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let g = grid.core()?;
        check_ptr(out, 1, "out")?;
        // SAFETY: the caller's promises, checked before use.
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        let s = unsafe { slice_mut(scratch, scratch_len, "scratch")? };
        check_masks(g, p, t)?;
        let (pf, tf) = (|i: usize| p[i] != 0, |i: usize| t[i] != 0);
        let b = surface::bounding_box(g, p, t);
        let r = surface::distances_for(el, g, b, &pf, &tf, percentile, tolerance, s)?;
        unsafe { write(out, DiceSurfaceDistances::from_core(&r), "out") }
    })
}

/// Surface distances of every label `0..labels` of two label maps of `label_type` (voxels
/// holding the ignore label in either map are outside every mask), with one NSD tolerance per
/// label (`tolerances`, `labels` of them) into `out` (`labels` of them). The scratch is
/// allocated here, fallibly: the largest any one label needs (its box, its surfaces, a line),
/// released before returning; ::DICE_STATUS_OUT_OF_MEMORY when it cannot be had.
///
/// # Safety
/// `pred` and `target` valid for `len` elements of `label_type`, `tolerances` for `labels`
/// doubles, `out` writable for `labels` entries.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dice_label_surface_distances(
    elements: i32,
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    len: usize,
    grid: DiceGrid,
    has_ignore_index: u8,
    ignore_index: i64,
    percentile: f64,
    tolerances: *const f64,
    out: *mut DiceSurfaceDistances,
    labels: usize,
) -> DiceStatus {
    boundary(|| {
        let el = DiceSurfaceElements::from_i32(elements, "elements")?.core();
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        let g = grid.core()?;
        let ignore = flag(has_ignore_index).then_some(ignore_index);
        // SAFETY: the caller's promises, checked before use.
        let tol = unsafe { slice(tolerances, labels, "tolerances")? };
        let o = unsafe { slice_mut(out, labels, "out")? };
        #[allow(clippy::too_many_arguments)]
        fn run<L: dice_core::Label>(
            el: surface::Elements,
            g: surface::Grid,
            p: &[L],
            t: &[L],
            ignore: Option<i64>,
            percentile: f64,
            tol: &[f64],
            o: &mut [DiceSurfaceDistances],
        ) -> FfiResult {
            let need = surface::label_scratch_len(el, g, p, t, ignore, o.len())?;
            let mut scratch = try_vec(need, 0.0f64, "the distance transform")?;
            let mut res = try_vec(o.len(), surface::Surfaces::BothEmpty, "the results")?;
            surface::label_surface_distances(
                el,
                g,
                p,
                t,
                ignore,
                percentile,
                tol,
                &mut scratch,
                &mut res,
            )?;
            for (d, r) in o.iter_mut().zip(&res) {
                *d = DiceSurfaceDistances::from_core(r);
            }
            Ok(())
        }
        // SAFETY: the caller's promise that both pointers hold `len` elements of the type.
        unsafe {
            with_label_slices!(ty, pred, target, len, |p, t| run(
                el, g, p, t, ignore, percentile, tol, o
            ))
        }
    })
}

/// One surface metric (a ::DiceSurfaceMetric) of a pair's distances on `grid` under `policy`:
/// `*value` receives it (NaN when skipped) and `*defined` 1, or 0 when the policy skipped it.
///
/// # Safety
/// `surfaces` readable, `value` and `defined` writable.
#[no_mangle]
pub unsafe extern "C" fn dice_surface_metric(
    surfaces: *const DiceSurfaceDistances,
    grid: DiceGrid,
    metric: i32,
    policy: DiceSurfaceEmptyPolicy,
    value: *mut f64,
    defined: *mut u8,
) -> DiceStatus {
    boundary(|| {
        let g = grid.core()?;
        let m = DiceSurfaceMetric::from_i32(metric, "metric")?;
        let pol = surface::SurfaceEmptyPolicy {
            one_empty: policy.one_empty.core("policy.one_empty")?,
            both_empty: policy.both_empty.core("policy.both_empty")?,
        };
        let nsd_both =
            DiceEmptyValue::from_i32(policy.nsd_both_empty, "policy.nsd_both_empty")?.core();
        check_ptr(value, 1, "value")?;
        check_ptr(defined, 1, "defined")?;
        // SAFETY: the caller's promise, checked before use.
        let s = unsafe { reference(surfaces, "surfaces")? }.core()?;
        let v = match m {
            DiceSurfaceMetric::Hausdorff => s.distance(surface::DistanceMetric::Hausdorff, g, pol),
            DiceSurfaceMetric::PercentileMaxDirected => s.distance(
                surface::DistanceMetric::PercentileHausdorff(
                    surface::PercentileDefinition::MaxDirected,
                ),
                g,
                pol,
            ),
            DiceSurfaceMetric::PercentilePooled => s.distance(
                surface::DistanceMetric::PercentileHausdorff(surface::PercentileDefinition::Pooled),
                g,
                pol,
            ),
            DiceSurfaceMetric::Assd => s.distance(surface::DistanceMetric::Assd, g, pol),
            DiceSurfaceMetric::Masd => s.distance(surface::DistanceMetric::Masd, g, pol),
            DiceSurfaceMetric::Nsd => s.nsd(nsd_both),
        };
        // SAFETY: checked above.
        unsafe {
            write(value, v.unwrap_or(f64::NAN), "value")?;
            write(defined, u8::from(v.is_some()), "defined")
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Streaming accumulator
// ---------------------------------------------------------------------------------------------

/// An accumulator of per-class soft statistics and hard counts over a volume seen chunk by
/// chunk (slice by slice on a small device). Opaque: create with dice_accumulator_new(), free
/// with dice_accumulator_free().
pub struct DiceAccumulator {
    /// [`ACCUMULATOR_MAGIC`] while live; cleared when freed, so that a freed or foreign pointer
    /// is reported (as long as its memory was not reused) instead of read as counts.
    magic: u64,
    threshold: f64,
    ignore: Option<i64>,
    stats: Vec<SoftStats>,
    counts: Vec<hard::Confusion>,
    // Scratch of the same sizes, allocated once: a chunk is summed here in full, then
    // committed, so that an error leaves the accumulator unchanged.
    chunk_stats: Vec<SoftStats>,
    chunk_counts: Vec<hard::Confusion>,
}

/// "diceacc1" in ASCII: marks a live accumulator.
const ACCUMULATOR_MAGIC: u64 = u64::from_le_bytes(*b"diceacc1");

/// `n` copies of `value` in a vector allocated fallibly (a C caller's count can be anything).
fn try_vec<T: Clone>(n: usize, value: T, what: &str) -> FfiResult<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        err(
            DiceStatus::OutOfMemory,
            format!(
                "cannot allocate {what} for {n} classes ({} bytes)",
                n.saturating_mul(std::mem::size_of::<T>())
            ),
        )
    })?;
    v.resize(n, value);
    Ok(v)
}

/// Creates an accumulator for `classes` classes. `threshold` binarises probability chunks for
/// the hard counts; voxels whose reference label equals `ignore_index` (when
/// `has_ignore_index`) are left out of label chunks. The only function that allocates; memory
/// it cannot get is DICE_STATUS_OUT_OF_MEMORY, never an abort of the host.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_new(
    classes: usize,
    threshold: f64,
    has_ignore_index: u8,
    ignore_index: i64,
    out: *mut *mut DiceAccumulator,
) -> DiceStatus {
    boundary(|| {
        check_ptr(out, 1, "out")?;
        if classes == 0 {
            return Err(err(
                DiceStatus::Empty,
                "an accumulator needs at least one class",
            ));
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(DiceError::InvalidParameter {
                name: "threshold",
                value: threshold,
                reason: "must be in [0, 1]",
            }
            .into());
        }
        if classes
            .checked_mul(2 * std::mem::size_of::<SoftStats>())
            .is_none_or(|b| b > isize::MAX as usize)
        {
            return Err(err(
                DiceStatus::ShapeOverflow,
                format!("{classes} classes overflow the address space"),
            ));
        }
        let zero = SoftStats::zero(Moment::Linear);
        let acc = Box::new(DiceAccumulator {
            magic: ACCUMULATOR_MAGIC,
            threshold,
            ignore: flag(has_ignore_index).then_some(ignore_index),
            stats: try_vec(classes, zero, "statistics")?,
            counts: try_vec(classes, hard::Confusion::default(), "counts")?,
            chunk_stats: try_vec(classes, zero, "statistics")?,
            chunk_counts: try_vec(classes, hard::Confusion::default(), "counts")?,
        });
        // SAFETY: checked non-null and aligned above; writability is the caller's promise.
        unsafe { out.write(Box::into_raw(acc)) };
        Ok(())
    })
}

/// # Safety
/// `acc` NULL or a live accumulator from dice_accumulator_new(), not used by another thread.
unsafe fn accumulator<'a>(acc: *mut DiceAccumulator) -> FfiResult<&'a mut DiceAccumulator> {
    // SAFETY: forwarded promise; the shared reference ends before the exclusive one.
    unsafe { live_accumulator(acc, "accumulator")? };
    // SAFETY: the caller's promise that it is live and exclusive.
    Ok(unsafe { &mut *acc })
}

/// A shared reference to an accumulator after checking the pointer and its magic value.
///
/// # Safety
/// `acc` NULL or pointing to readable memory of an accumulator's size.
unsafe fn live_accumulator<'a>(
    acc: *const DiceAccumulator,
    what: &str,
) -> FfiResult<&'a DiceAccumulator> {
    check_ptr(acc, 1, what)?;
    // Read the magic value alone first: a foreign pointer's bytes are not an accumulator.
    // SAFETY: non-null and aligned (checked); readable is the caller's promise.
    let magic = unsafe { std::ptr::addr_of!((*acc).magic).read() };
    if magic != ACCUMULATOR_MAGIC {
        return Err(err(
            DiceStatus::InvalidParameter,
            format!(
                "{what} is not a live accumulator (freed, or not made by dice_accumulator_new)"
            ),
        ));
    }
    // SAFETY: the caller's promise that it is live.
    Ok(unsafe { &*acc })
}

/// Adds a chunk of probabilities: `pred` and `target` are `[C, voxels]` (channel-major, `C`
/// the accumulator's classes), floats in [0, 1]. Updates the soft statistics and, thresholded,
/// the hard counts. On an error the accumulator is unchanged.
///
/// # Safety
/// `acc` live and exclusive; `pred` and `target` valid for `C·voxels` floats.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_update_probabilities_f32(
    acc: *mut DiceAccumulator,
    pred: *const f32,
    target: *const f32,
    voxels: usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { accumulator(acc)? };
        let classes = a.stats.len();
        let len = classes
            .checked_mul(voxels)
            .ok_or(err(DiceStatus::ShapeOverflow, "classes·voxels overflows"))?;
        let (p, t) = unsafe { (slice(pred, len, "pred")?, slice(target, len, "target")?) };
        if voxels == 0 {
            return Ok(());
        }
        for (c, (s, k)) in a
            .chunk_stats
            .iter_mut()
            .zip(a.chunk_counts.iter_mut())
            .enumerate()
        {
            let r = c * voxels..(c + 1) * voxels;
            *s = SoftStats::of(&p[r.clone()], &t[r.clone()], Moment::Linear)?;
            *k = hard::confusion_from_probabilities(&p[r.clone()], &t[r], a.threshold)?;
        }
        a.commit()
    })
}

/// Adds a chunk of two label maps of `voxels` elements of `label_type` (labels in
/// `0..classes`, or the ignore label in the reference): updates the hard counts only. On an
/// error the accumulator is unchanged.
///
/// # Safety
/// `acc` live and exclusive; `pred` and `target` valid for `voxels` elements.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_update_labels(
    acc: *mut DiceAccumulator,
    label_type: i32,
    pred: *const c_void,
    target: *const c_void,
    voxels: usize,
) -> DiceStatus {
    boundary(|| {
        let ty = DiceLabelType::from_i32(label_type, "label_type")?;
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { accumulator(acc)? };
        if voxels == 0 {
            return Ok(());
        }
        let ignore = a.ignore;
        // The chunk's counts go to the scratch buffer, viewed as the C type the typed helper takes.
        let scratch = confusions_in_out(&mut a.chunk_counts);
        unsafe { label_confusion_typed(ty, pred, target, voxels, ignore, scratch)? };
        a.chunk_stats.fill(SoftStats::zero(Moment::Linear));
        a.commit()
    })
}

fn confusions_in_out(s: &mut [hard::Confusion]) -> &mut [DiceConfusion] {
    // SAFETY: identical layout (checked at compile time above); every bit pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<DiceConfusion>(), s.len()) }
}

impl DiceAccumulator {
    /// Adds the scratch chunk to the totals.
    fn commit(&mut self) -> FfiResult {
        for (s, c) in self.stats.iter_mut().zip(&self.chunk_stats) {
            *s = s.merge(c)?;
        }
        for (k, c) in self.counts.iter_mut().zip(&self.chunk_counts) {
            *k = k.merge(c);
        }
        Ok(())
    }
}

/// Adds everything `src` has seen to `dst` (the union of disjoint chunks, e.g. from two
/// threads or devices). Both must have the same number of classes.
///
/// # Safety
/// `dst` and `src` live accumulators, distinct, neither used by another thread.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_merge(
    dst: *mut DiceAccumulator,
    src: *const DiceAccumulator,
) -> DiceStatus {
    boundary(|| {
        check_ptr(dst, 1, "dst")?;
        check_ptr(src, 1, "src")?;
        if std::ptr::eq(dst, src) {
            return Err(err(
                DiceStatus::InvalidParameter,
                "an accumulator cannot be merged into itself",
            ));
        }
        // SAFETY: the caller's promises, checked before use; distinct (checked just above).
        let (d, s) = unsafe { (accumulator(dst)?, live_accumulator(src, "src")?) };
        if d.stats.len() != s.stats.len() {
            return Err(DiceError::LengthMismatch {
                operand: dice_core::Operand::Statistics,
                expected: d.stats.len(),
                found: s.stats.len(),
            }
            .into());
        }
        d.chunk_stats.copy_from_slice(&s.stats);
        d.chunk_counts.copy_from_slice(&s.counts);
        d.commit()
    })
}

/// Copies the totals out: `counts` and `stats` (either may be NULL) have `classes` entries.
/// Score them with dice_metrics() and dice_soft_loss_from_stats() (shape `[1, classes, 1]`).
///
/// # Safety
/// `acc` live; `counts` and `stats` NULL or writable for `classes` entries.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_finish(
    acc: *const DiceAccumulator,
    counts: *mut DiceConfusion,
    stats: *mut DiceStats,
    classes: usize,
) -> DiceStatus {
    boundary(|| {
        // SAFETY: the caller's promises, checked before use.
        let a = unsafe { live_accumulator(acc, "accumulator")? };
        if classes != a.stats.len() {
            return Err(DiceError::LengthMismatch {
                operand: dice_core::Operand::Output,
                expected: a.stats.len(),
                found: classes,
            }
            .into());
        }
        if !counts.is_null() {
            let out = unsafe { slice_mut(counts, classes, "counts")? };
            for (o, c) in out.iter_mut().zip(&a.counts) {
                *o = DiceConfusion::from_core(c);
            }
        }
        if !stats.is_null() {
            let out = unsafe { slice_mut(stats, classes, "stats")? };
            for (o, s) in out.iter_mut().zip(&a.stats) {
                *o = DiceStats::from_core(s);
            }
        }
        Ok(())
    })
}

/// Frees an accumulator (NULL is a no-op). A pointer that is not a live accumulator (freed
/// already, or foreign) is not freed: the error is kept for dice_last_error_message().
///
/// # Safety
/// `acc` NULL or a live accumulator from dice_accumulator_new(), not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dice_accumulator_free(acc: *mut DiceAccumulator) {
    if !acc.is_null() {
        // A panic cannot occur in dropping plain vectors; the boundary still guards it.
        let _ = boundary(|| {
            // SAFETY: the caller's promise; the magic value is checked before anything else.
            let a = unsafe { accumulator(acc)? };
            a.magic = 0;
            // SAFETY: it came from dice_accumulator_new() (magic checked) and the caller does
            // not use it afterwards.
            drop(unsafe { Box::from_raw(acc) });
            Ok(())
        });
    }
}
