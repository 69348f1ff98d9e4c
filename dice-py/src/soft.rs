//! Soft losses: statistics, the loss from (possibly all-reduced) statistics, and the analytic
//! gradient, split so that statistics can be summed across processes between the steps.

use dice_core::{
    Activation, LabelSlice, LossForm, Reduction, Score, Shape, SoftInput, SoftLoss, SoftStats,
    Target, Upstream, Weighting,
};
use numpy::{Element, PyArray1, PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use std::sync::atomic::{AtomicUsize, Ordering};

use dice_core::parallel::Threads;

use crate::error::{mask_view, slice, type_error, value_error, view};

/// The parameters of a soft loss (MONAI's names), checked once when built.
#[pyclass(module = "exactdice._native", frozen)]
#[derive(Clone, Debug)]
pub struct LossParams {
    score: Score,
    squared_pred: bool,
    soft_label: bool,
    smooth_nr: f64,
    smooth_dr: f64,
    form: LossForm,
    gamma: f64,
    include_background: bool,
    batch: bool,
    reduction: Reduction,
    weight: Option<Vec<f64>>,
    pub(crate) ignore_index: Option<i64>,
}

fn choice<T: Copy>(what: &str, value: &str, options: &[(&str, T)]) -> PyResult<T> {
    options
        .iter()
        .find(|(n, _)| *n == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            PyValueError::new_err(format!("{what} must be one of {names:?}, not {value:?}"))
        })
}

#[pymethods]
impl LossParams {
    /// `LossParams(score="dice", alpha=0.5, beta=0.5, w_type="square", squared_pred=False,
    /// soft_label=False, smooth_nr=1e-5, smooth_dr=1e-5, form="one_minus", gamma=1.0,
    /// include_background=True, batch=False, reduction="mean", weight=None, ignore_index=None)`.
    #[new]
    #[pyo3(signature = (score="dice", alpha=0.5, beta=0.5, w_type="square", squared_pred=false,
        soft_label=false, smooth_nr=1e-5, smooth_dr=1e-5, form="one_minus", gamma=1.0,
        include_background=true, batch=false, reduction="mean", weight=None, ignore_index=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        score: &str,
        alpha: f64,
        beta: f64,
        w_type: &str,
        squared_pred: bool,
        soft_label: bool,
        smooth_nr: f64,
        smooth_dr: f64,
        form: &str,
        gamma: f64,
        include_background: bool,
        batch: bool,
        reduction: &str,
        weight: Option<Vec<f64>>,
        ignore_index: Option<i64>,
    ) -> PyResult<Self> {
        let weighting = choice(
            "w_type",
            w_type,
            &[
                ("square", Weighting::Square),
                ("simple", Weighting::Simple),
                ("uniform", Weighting::Uniform),
            ],
        )?;
        let score = match score {
            "dice" => Score::Dice,
            "jaccard" => Score::Jaccard,
            "tversky" => Score::Tversky { alpha, beta },
            "generalized" => Score::Generalized(weighting),
            other => {
                return Err(PyValueError::new_err(format!(
                    "score must be one of dice, jaccard, tversky, generalized, not {other:?}"
                )))
            }
        };
        let p = LossParams {
            score,
            squared_pred,
            soft_label,
            smooth_nr,
            smooth_dr,
            form: choice(
                "form",
                form,
                &[
                    ("one_minus", LossForm::OneMinus),
                    ("neg_log", LossForm::NegLog),
                    ("negative", LossForm::Negative),
                ],
            )?,
            gamma,
            include_background,
            batch,
            reduction: choice(
                "reduction",
                reduction,
                &[
                    ("mean", Reduction::Mean),
                    ("sum", Reduction::Sum),
                    ("none", Reduction::None),
                ],
            )?,
            weight,
            ignore_index,
        };
        // Everything that does not depend on the input's shape is checked now.
        let channels = p.weight.as_ref().map_or(2, |w| w.len());
        let mut check = p.loss();
        check.include_background |= channels < 2;
        check
            .validate(Shape::new(1, channels.max(1), 1))
            .map_err(value_error)?;
        Ok(p)
    }

    fn __repr__(&self) -> String {
        format!("{self:?}")
    }

    /// The number of groups (losses before reduction) for `batch` samples of `channels`.
    fn group_count(&self, batch: usize, channels: usize) -> usize {
        self.loss().group_count(Shape::new(batch, channels, 1))
    }

    /// Columns of the statistics arrays: `I, P, G, voxels, D`.
    #[classattr]
    const STATS_COLUMNS: usize = 5;
}

impl LossParams {
    pub(crate) fn loss(&self) -> SoftLoss<'_> {
        let mut l = SoftLoss {
            score: self.score,
            ..SoftLoss::dice()
        }
        .squared_pred(self.squared_pred)
        .soft_label(self.soft_label)
        .smooth(self.smooth_nr, self.smooth_dr)
        .form(self.form)
        .gamma(self.gamma)
        .include_background(self.include_background)
        .batch(self.batch)
        .reduction(self.reduction);
        if let Some(w) = &self.weight {
            l = l.class_weights(w);
        }
        match THREADS.load(Ordering::Relaxed) {
            0 | 1 => l,
            n => l.executor(&POOLS[n.min(MAX_THREADS)]),
        }
    }
}

/// Most threads the soft passes use.
const MAX_THREADS: usize = 256;

/// The thread count of the soft passes ([`set_threads`]; 1 until set).
static THREADS: AtomicUsize = AtomicUsize::new(1);

/// One executor per thread count, so that a loss can borrow one for any count.
static POOLS: [Threads; MAX_THREADS + 1] = {
    let mut pools = [Threads::new(1); MAX_THREADS + 1];
    let mut n = 0;
    while n <= MAX_THREADS {
        pools[n] = Threads::new(n);
        n += 1;
    }
    pools
};

/// `set_threads(n)`: the soft passes (statistics, gradients) of inputs of 2²¹ elements or more
/// run on `n` threads (at most 256; 0 or 1: the calling thread). The results have the same bits
/// for any `n`. `exactdice.torch` sets it to `torch.get_num_threads()` before each call.
#[pyfunction]
pub fn set_threads(n: usize) {
    THREADS.store(n.min(MAX_THREADS), Ordering::Relaxed);
}

/// The thread count set by [`set_threads`].
#[pyfunction]
pub fn get_threads() -> usize {
    THREADS.load(Ordering::Relaxed).max(1)
}

pub(crate) fn parse_activation(name: Option<&str>) -> PyResult<Option<Activation>> {
    match name {
        None | Some("none") => Ok(None),
        Some("sigmoid") => Ok(Some(Activation::Sigmoid)),
        Some("softmax") => Ok(Some(Activation::Softmax)),
        Some(other) => Err(PyValueError::new_err(format!(
            "activation must be None, 'sigmoid' or 'softmax', not {other:?}"
        ))),
    }
}

/// `[N, C, S]` of a prediction of shape `[N, C, …]`.
pub(crate) fn shape3(shape: &[usize]) -> PyResult<Shape> {
    if shape.len() < 2 {
        return Err(PyValueError::new_err(format!(
            "input must have shape [N, C, …] (batch, channels, spatial), got {shape:?}"
        )));
    }
    Ok(Shape::new(
        shape[0],
        shape[1],
        shape[2..].iter().product::<usize>(),
    ))
}

/// Runs `f` on the input built from a prediction slice, a target array (a label map of any
/// supported integer dtype, `[N, …]`, or dense values of the prediction's dtype, `[N, C, …]`)
/// and an optional `uint8` mask `[N, …]`, without the GIL.
pub(crate) fn with_input<T, R>(
    py: Python<'_>,
    shape: Shape,
    pred: &[T],
    target: &Bound<'_, PyAny>,
    mask: Option<&Bound<'_, PyAny>>,
    ignore_index: Option<i64>,
    f: impl FnOnce(&SoftInput<'_, T>) -> dice_core::Result<R> + Send,
) -> PyResult<R>
where
    T: dice_core::Float + Element + Sync,
    R: Send,
{
    let m = mask.map(mask_view).transpose()?;
    let ms = m.as_ref().map(|m| slice(m, "mask")).transpose()?;
    let (d, l8, l16, l32, i32_, i64_) = (
        view::<T>(target),
        view::<u8>(target),
        view::<u16>(target),
        view::<u32>(target),
        view::<i32>(target),
        view::<i64>(target),
    );
    let t: Target<'_, T> = if let Some(d) = &d {
        Target::Dense(slice(d, "target")?)
    } else {
        let labels: LabelSlice<'_> = if let Some(a) = &l8 {
            slice(a, "target")?.into()
        } else if let Some(a) = &l16 {
            slice(a, "target")?.into()
        } else if let Some(a) = &l32 {
            slice(a, "target")?.into()
        } else if let Some(a) = &i32_ {
            slice(a, "target")?.into()
        } else if let Some(a) = &i64_ {
            slice(a, "target")?.into()
        } else {
            return Err(type_error(
                "target",
                target,
                "a label map (uint8, uint16, uint32, int32, int64) or dense values of the input's dtype",
            ));
        };
        match ignore_index {
            Some(i) => Target::labels_ignoring(labels, i),
            None => Target::labels(labels),
        }
    };
    py.detach(|| {
        let mut input = SoftInput::new(shape, pred, t)?;
        if let Some(m) = ms {
            input = input.with_mask(m)?;
        }
        f(&input)
    })
    .map_err(value_error)
}

/// Runs `f` over the caller's probabilities buffer: an array of `T` of the input's shape,
/// C-contiguous and not borrowed elsewhere (each a clear error otherwise).
fn with_probabilities<T: Element, R>(
    buf: &Bound<'_, PyAny>,
    input: &Bound<'_, PyAny>,
    f: impl FnOnce(&mut [T]) -> PyResult<R>,
) -> PyResult<R> {
    let arr = buf
        .cast::<numpy::PyArrayDyn<T>>()
        .map_err(|_| type_error("probabilities", buf, "an array of the input's dtype"))?;
    if arr.shape() != crate::error::shape_of(input).as_slice() {
        return Err(PyValueError::new_err(format!(
            "probabilities have shape {:?}, the input {:?}",
            arr.shape(),
            crate::error::shape_of(input)
        )));
    }
    let mut rw = arr
        .try_readwrite()
        .map_err(|_| PyValueError::new_err("probabilities are borrowed elsewhere"))?;
    let out = rw
        .as_slice_mut()
        .map_err(|_| PyValueError::new_err("probabilities must be C-contiguous"))?;
    f(out)
}

fn stats_array<'py>(py: Python<'py>, s: &[SoftStats]) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let flat: Vec<f64> = s
        .iter()
        .flat_map(|s| {
            [
                s.intersection,
                s.pred,
                s.target,
                s.voxels as f64,
                s.abs_diff,
            ]
        })
        .collect();
    PyArray1::from_vec(py, flat).reshape([s.len(), LossParams::STATS_COLUMNS])
}

fn stats_from(params: &LossParams, a: &Bound<'_, PyAny>, pairs: usize) -> PyResult<Vec<SoftStats>> {
    let v = view::<f64>(a).ok_or_else(|| type_error("stats", a, "a float64 array"))?;
    let s = slice(&v, "stats")?;
    let cols = LossParams::STATS_COLUMNS;
    if s.len() != pairs * cols {
        return Err(PyValueError::new_err(format!(
            "stats must be [{pairs}, {cols}] (one row per sample and channel), got {:?}",
            v.shape()
        )));
    }
    let moment = params.loss().moment();
    s.chunks_exact(cols)
        .enumerate()
        .map(|(row, r)| {
            let voxels = r[3];
            if !(voxels >= 0.0 && voxels.fract() == 0.0 && voxels < 2f64.powi(63)) {
                return Err(PyValueError::new_err(format!(
                    "stats row {row}: the voxel count {voxels} is not a non-negative integer"
                )));
            }
            Ok(SoftStats {
                intersection: r[0],
                pred: r[1],
                target: r[2],
                voxels: voxels as u64,
                moment,
                abs_diff: r[4],
            })
        })
        .collect()
}

fn run_on_pred<'py, T, R>(
    py: Python<'py>,
    pred: &Bound<'py, PyAny>,
    f: impl FnOnce(Python<'py>, Shape, &[T]) -> PyResult<R>,
) -> Option<PyResult<R>>
where
    T: dice_core::Float + Element,
{
    let p = view::<T>(pred)?;
    Some((|| {
        let shape = shape3(p.shape())?;
        f(py, shape, slice(&p, "input")?)
    })())
}

/// `soft_statistics(params, input, target, activation=None, mask=None)`: the statistics
/// `[N·C, 5]` (`I, P, G, voxels, D` per sample and channel, in `float64`) of the probabilities
/// `input` `[N, C, …]`, or of `activation(input)` for logits. Sum them across processes (or
/// chunks) before [`soft_loss`] for the loss of the union.
///
/// `probabilities` (logits only): a writable C-contiguous array of the input's shape and
/// dtype that receives the activation's output (the caller's buffer: from its allocator, kept
/// for [`soft_gradient`] to turn into the gradient in place).
#[pyfunction]
#[pyo3(signature = (params, input, target, activation=None, mask=None, probabilities=None))]
pub fn soft_statistics<'py>(
    py: Python<'py>,
    params: &LossParams,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    activation: Option<&str>,
    mask: Option<&Bound<'py, PyAny>>,
    probabilities: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let act = parse_activation(activation)?;
    if probabilities.is_some() && act.is_none() {
        return Err(PyValueError::new_err(
            "probabilities are written for logits only: give the activation",
        ));
    }
    macro_rules! stats_for {
        ($t:ty) => {
            run_on_pred::<$t, _>(py, input, |py, shape, p| {
                let stats = match probabilities {
                    None => statistics_of(py, params, act, shape, p, target, mask, None)?,
                    Some(buf) => with_probabilities::<$t, _>(buf, input, |out| {
                        statistics_of(py, params, act, shape, p, target, mask, Some(out))
                    })?,
                };
                stats_array(py, &stats)
            })
        };
    }
    stats_for!(f32)
        .or_else(|| stats_for!(f64))
        .unwrap_or_else(|| Err(type_error("input", input, "a float32 or float64 array")))
}

/// The statistics of the input (of its probabilities, for logits, written into `buffer` when
/// given).
#[allow(clippy::too_many_arguments)]
fn statistics_of<T>(
    py: Python<'_>,
    params: &LossParams,
    act: Option<Activation>,
    shape: Shape,
    p: &[T],
    target: &Bound<'_, PyAny>,
    mask: Option<&Bound<'_, PyAny>>,
    buffer: Option<&mut [T]>,
) -> PyResult<Vec<SoftStats>>
where
    T: dice_core::Float + Element + Sync + Send,
{
    let pairs = shape.pairs().map_err(value_error)?;
    let mut out = vec![SoftStats::zero(params.loss().moment()); pairs];
    let loss = params.loss();
    loss.validate(shape).map_err(value_error)?;
    let mut own: Vec<T>;
    let source: &[T] = match (act, buffer) {
        (None, _) => p,
        (Some(a), buf) => {
            let dst: &mut [T] = match buf {
                Some(b) => b,
                None => {
                    own = vec![T::ZERO; p.len()];
                    &mut own
                }
            };
            py.detach(|| loss.probabilities(shape, p, a, dst))
                .map_err(value_error)?;
            dst
        }
    };
    let stats = with_input(
        py,
        shape,
        source,
        target,
        mask,
        params.ignore_index,
        |input| {
            loss.statistics(input, &mut out)?;
            Ok(out)
        },
    )?;
    Ok(stats)
}

/// `soft_loss(params, stats, batch, channels)`: `(value, groups, defined, per_group)` of the
/// loss from statistics `[N·C, 5]` (local or all-reduced): the reduced value, the number of
/// groups and of defined groups, and each group's loss (`NaN` for a skipped group).
#[pyfunction]
pub fn soft_loss<'py>(
    py: Python<'py>,
    params: &LossParams,
    stats: &Bound<'py, PyAny>,
    batch: usize,
    channels: usize,
) -> PyResult<(f64, usize, usize, Bound<'py, PyArray1<f64>>)> {
    let shape = Shape::new(batch, channels, 1);
    let pairs = shape.pairs().map_err(value_error)?;
    let s = stats_from(params, stats, pairs)?;
    let loss = params.loss();
    loss.validate(shape).map_err(value_error)?;
    let mut groups = vec![None; loss.group_count(shape)];
    let v = loss
        .group_losses(shape, &s, &mut groups)
        .map_err(value_error)?;
    let per: Vec<f64> = groups.iter().map(|g| g.unwrap_or(f64::NAN)).collect();
    Ok((v.value, v.groups, v.defined, PyArray1::from_vec(py, per)))
}

/// `soft_gradient(params, input, target, stats, upstream, activation=None, mask=None)`:
/// `∂loss/∂input` (same shape and dtype as `input`; with respect to the logits when
/// `activation` is given) of the loss scored from `stats` (local or all-reduced), times
/// `upstream` (a float, or a `float64` array of one value per group with `reduction="none"`).
///
/// `probabilities` (logits only): the activation's output kept from [`soft_statistics`]
/// (`keep_probabilities=True`), a writable C-contiguous array of the input's shape and dtype;
/// the gradient is then written into it in place (no activation recomputed, no new buffer)
/// and it is returned.
#[pyfunction]
#[pyo3(signature = (params, input, target, stats, upstream, activation=None, mask=None,
    probabilities=None))]
#[allow(clippy::too_many_arguments)]
pub fn soft_gradient<'py>(
    py: Python<'py>,
    params: &LossParams,
    input: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    stats: &Bound<'py, PyAny>,
    upstream: &Bound<'py, PyAny>,
    activation: Option<&str>,
    mask: Option<&Bound<'py, PyAny>>,
    probabilities: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let act = parse_activation(activation)?;
    if let Some(kept) = probabilities {
        let Some(a) = act else {
            return Err(PyValueError::new_err(
                "probabilities are kept for logits only: give the activation",
            ));
        };
        return gradient_in_place(py, params, (input, target, stats, upstream, mask), a, kept);
    }
    let up_arr = view::<f64>(upstream);
    let up_slice = up_arr.as_ref().map(|a| slice(a, "upstream")).transpose()?;
    let shape_vec = crate::error::shape_of(input);
    macro_rules! grad_for {
        ($t:ty) => {
            run_on_pred::<$t, _>(py, input, |py, shape, p| {
                let pairs = shape.pairs().map_err(value_error)?;
                let s = stats_from(params, stats, pairs)?;
                let loss = params.loss();
                let up = upstream_of(upstream, up_slice)?;
                let g = with_input(py, shape, p, target, mask, params.ignore_index, |input| {
                    let mut grad = vec![<$t>::default(); p.len()];
                    match act {
                        None => loss.gradient(input, &s, up, &mut grad)?,
                        Some(a) => loss.gradient_logits(input, a, &s, up, &mut grad)?,
                    }
                    Ok(grad)
                })?;
                Ok(PyArray1::from_vec(py, g)
                    .reshape(shape_vec.clone())?
                    .into_any())
            })
        };
    }
    grad_for!(f32)
        .or_else(|| grad_for!(f64))
        .unwrap_or_else(|| Err(type_error("input", input, "a float32 or float64 array")))
}

/// `(input, target, stats, upstream, mask)` of [`soft_gradient`].
type GradientArgs<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    Option<&'a Bound<'py, PyAny>>,
);

/// The in-place backward of [`soft_gradient`] over kept probabilities.
fn gradient_in_place<'py>(
    py: Python<'py>,
    params: &LossParams,
    args: GradientArgs<'_, 'py>,
    act: Activation,
    kept: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (input, target, stats, upstream, mask) = args;
    let up_arr = view::<f64>(upstream);
    let up_slice = up_arr.as_ref().map(|a| slice(a, "upstream")).transpose()?;
    macro_rules! in_place {
        ($t:ty) => {
            run_on_pred::<$t, _>(py, input, |py, shape, z| {
                let s = stats_from(params, stats, shape.pairs().map_err(value_error)?)?;
                let loss = params.loss();
                let up = upstream_of(upstream, up_slice)?;
                with_probabilities::<$t, _>(kept, input, |grad| {
                    // `z` only gives the input its shape and target: the kept `p` stand in.
                    with_input(py, shape, z, target, mask, params.ignore_index, |input| {
                        loss.gradient_logits_from_probabilities(input, act, &s, up, grad)
                    })
                })?;
                Ok(kept.clone())
            })
        };
    }
    in_place!(f32)
        .or_else(|| in_place!(f64))
        .unwrap_or_else(|| Err(type_error("input", input, "a float32 or float64 array")))
}

/// The upstream gradient: one value per group (the array's memory) or one float.
fn upstream_of<'a>(
    upstream: &Bound<'_, PyAny>,
    per_group: Option<&'a [f64]>,
) -> PyResult<Upstream<'a>> {
    match per_group {
        Some(u) => Ok(Upstream::PerGroup(u)),
        None => upstream
            .extract::<f64>()
            .map(Upstream::Scalar)
            .map_err(|_| type_error("upstream", upstream, "a float or a float64 array")),
    }
}
