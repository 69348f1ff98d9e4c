"""MONAI-compatible metrics over batches of tensors: Hausdorff, surface distance, surface Dice,
with MONAI's ``CumulativeIterationMetric`` behaviour (``__call__`` per iteration, ``aggregate``,
``reset``, ``get_buffer``, ``append``, ``extend``), its inputs (``[B, C, …]`` one-hot batches,
or lists of decollated cases ``[C, …]``) and its results (float32 on the inputs' device).

Every distance comes from dice-core (``exactdice.surface_distances``: exact Euclidean distance
transforms in mm, boundary voxels as MONAI takes them, surfels for ``use_subvoxels``); this
module turns MONAI's arguments into the core's and its answers into MONAI's tensors. Import
the classes from ``exactdice.torch``.

Differences on purpose (each documented where it applies, MONAI's behaviour by a keyword):

* distances with one mask empty: MONAI gives ``inf`` (Hausdorff, average) or NaN (percentile:
  left out of means, so a case where the network found nothing silently leaves the average). Ours is the image
  diagonal in mm (the largest distance the image allows, the worst case MetricsReloaded
  recommends); both empty is NaN (left out, as MONAI). ``empty="monai"`` gives MONAI's values.

``distance_metric``: ``"euclidean"`` (exact, in mm), ``"chessboard"`` or ``"taxicab"`` (exact L∞
and L1 transforms in dice-core; as MONAI, these count voxel steps and ignore ``spacing``).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

import exactdice as _ed

__all__ = [
    "HausdorffDistanceMetric",
    "compute_hausdorff_distance",
    "SurfaceDistanceMetric",
    "compute_average_surface_distance",
    "SurfaceDiceMetric",
    "compute_surface_dice",
    "LesionWiseMetric",
    "compute_lesion_wise",
    "metric_reduction",
]

_REDUCTIONS = ("mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none")


def _reduction_name(reduction) -> str:
    r = getattr(reduction, "value", reduction)
    if r is None:
        return "none"
    if r not in _REDUCTIONS:
        raise ValueError(f"Unsupported reduction: {r}, available options are {list(_REDUCTIONS)}.")
    return r


def metric_reduction(f: torch.Tensor, reduction="mean"):
    """MONAI's ``do_metric_reduction`` of per-case, per-class values ``f`` ``[B, C]``: ``(value,
    not_nans)``, NaN values left out of every mean and sum. ``mean`` is the mean over cases of
    each case's mean over its defined classes, and ``not_nans`` counts the cases with one."""
    red = _reduction_name(reduction)
    nans = torch.isnan(f)
    not_nans = (~nans).to(f.dtype)
    if red == "none":
        return f, not_nans
    f = torch.where(nans, torch.zeros_like(f), f)
    zero = torch.zeros(1, device=f.device, dtype=f.dtype)
    if red == "mean":
        n = not_nans.sum(dim=1)
        f = torch.where(n > 0, f.sum(dim=1) / n, zero)
        n = (n > 0).to(f.dtype).sum(dim=0)
        f = torch.where(n > 0, f.sum(dim=0) / n, zero)
        return f, n
    if red == "sum":
        return f.sum(dim=[0, 1]), not_nans.sum(dim=[0, 1])
    dim = 0 if red.endswith("batch") else 1
    n = not_nans.sum(dim=dim)
    if red.startswith("mean"):
        return torch.where(n > 0, f.sum(dim=dim) / n, zero), n
    return f.sum(dim=dim), n


def _prepare_spacing(spacing, batch_size: int, img_dim: int) -> list:
    """MONAI's ``prepare_spacing``: one spacing per case, in the arrays' axis order."""
    if spacing is None:
        return [[1.0] * img_dim] * batch_size
    if isinstance(spacing, (int, float)):
        return [[float(spacing)] * img_dim] * batch_size
    items = list(spacing)
    if items and all(isinstance(s, (int, float)) for s in items):
        if len(items) != img_dim:
            raise ValueError(f"spacing has {len(items)} values for {img_dim}-D images")
        return [[float(s) for s in items]] * batch_size
    if len(items) != batch_size:
        raise ValueError(f"spacing holds {len(items)} sequences for a batch of {batch_size}")
    out = []
    for s in items:
        s = [float(v) for v in (s if isinstance(s, (list, tuple, np.ndarray, torch.Tensor)) else [s])]
        if len(s) == 1:
            s = s * img_dim
        if len(s) != img_dim:
            raise ValueError(f"a case's spacing has {len(s)} values for {img_dim}-D images")
        out.append(s)
    return out


_DISTANCE_METRICS = ("euclidean", "chessboard", "taxicab")


def _check_distance_metric(distance_metric: str) -> None:
    if distance_metric not in _DISTANCE_METRICS:
        raise ValueError(f"distance_metric must be one of {list(_DISTANCE_METRICS)}, not {distance_metric!r}")


def _binary(x: torch.Tensor) -> np.ndarray:
    """A class channel as MONAI's edge finder takes it (``bool``, or ``== 1``), as uint8."""
    x = x.detach()
    if x.is_floating_point() and bool(torch.isnan(x).any()):
        raise ValueError("y_pred or y holds NaN: masks must be binarized (0/1) before a surface or lesion metric")
    m = x if x.dtype == torch.bool else (x == 1)
    return np.ascontiguousarray(m.cpu().numpy().astype(np.uint8))


def _distance_rows(y_pred, y, include_background, spacing, percentile, tolerances, use_subvoxels, distance_metric):
    """The core's rows per case and class ``[B, C, 15]`` (see ``_native.surface_distances``)."""
    _check_distance_metric(distance_metric)
    y_pred, y = torch.as_tensor(y_pred), torch.as_tensor(y)
    if y_pred.dim() not in (4, 5) or y.dim() not in (4, 5):
        raise ValueError("y_pred and y should be one-hot encoded: [B,C,H,W] or [B,C,H,W,D].")
    if y_pred.shape != y.shape:
        raise ValueError(
            f"y_pred and y should have same shape, but instead, shapes are {y_pred.shape} (y_pred) and {y.shape} (y)."
        )
    if not include_background:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    b, c = y_pred.shape[:2]
    img_dim = y_pred.dim() - 2
    spacings = _prepare_spacing(spacing, b, img_dim)
    # As MONAI (scipy's distance_transform_cdt), chessboard and taxicab distances count voxel
    # steps: the spacing applies to Euclidean distances only.
    measured = spacings if distance_metric == "euclidean" else [[1.0] * img_dim] * b
    rows = np.empty((b, c, 15))
    q = 95.0 if percentile is None else float(percentile)
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile should be a value between 0 and 100, get {percentile}.")
    for i in range(b):
        for k in range(c):
            r = _ed._native.surface_distances(
                _binary(y_pred[i, k]),
                _binary(y[i, k]),
                2,
                measured[i],
                q,
                float(tolerances[k]) if tolerances is not None else 1.0,
                "surfels" if use_subvoxels else "voxels",
                None,
                distance_metric,
            )
            rows[i, k] = r[1]
    return rows, spacings, tuple(y_pred.shape[2:])


def _diagonal(shape, spacing) -> float:
    return math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing)))


def _empty_value(status: float, empty: str, shape, spacing, percentile) -> float:
    """The value of a distance where a mask is empty (status 1: reference, 2: prediction,
    3: both): NaN for both; otherwise the image diagonal (ours), or MONAI 1.6's value
    (``empty="monai"``, in either direction, directed or not): ``inf`` for the Hausdorff and
    average distances, NaN for a percentile (``torch.quantile`` of infinite distances)."""
    if status == 3:
        return float("nan")
    if empty != "monai":
        return _diagonal(shape, spacing)
    return float("nan") if percentile is not None else float("inf")


def _as_result(values: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).to(like.device)


def compute_hausdorff_distance(
    y_pred,
    y,
    include_background: bool = False,
    distance_metric: str = "euclidean",
    percentile: Optional[float] = None,
    directed: bool = False,
    spacing=None,
    ignore_index: Optional[int] = None,
    empty: str = "diagonal",
) -> torch.Tensor:
    """MONAI's ``compute_hausdorff_distance``: the Hausdorff distance ``[B, C]`` (mm) between
    the boundary voxels of each class of one-hot batches, or its ``percentile`` (the larger of
    the two directed percentiles; ``directed=True``: from the prediction to the reference
    only). ``spacing``: one value, one per axis, or one sequence per case. Empty masks: see the
    module doc (``empty="monai"`` for MONAI's ``inf``/NaN)."""
    rows, spacings, shape = _distance_rows(y_pred, y, include_background, spacing, percentile, None, False, distance_metric)
    b, c = rows.shape[:2]
    out = np.empty((b, c))
    offset = 0 if include_background else 1
    for i in range(b):
        for k in range(c):
            r = rows[i, k]
            if ignore_index is not None and k + offset == ignore_index:
                out[i, k] = float("nan")
            elif r[0] != 0:
                out[i, k] = _empty_value(r[0], empty, shape, spacings[i], percentile)
            elif percentile is None:
                out[i, k] = r[9] if directed else r[1]
            else:
                out[i, k] = r[13] if directed else r[2]
    return _as_result(out, torch.as_tensor(y_pred))


def compute_average_surface_distance(
    y_pred,
    y,
    include_background: bool = False,
    symmetric: bool = False,
    distance_metric: str = "euclidean",
    spacing=None,
    ignore_index: Optional[int] = None,
    empty: str = "diagonal",
) -> torch.Tensor:
    """MONAI's ``compute_average_surface_distance``: the mean distance ``[B, C]`` (mm) from the
    prediction's boundary voxels to the reference's, or (``symmetric=True``) of both
    directions' distances pooled (medpy's ASSD). Empty masks: see the module doc."""
    rows, spacings, shape = _distance_rows(y_pred, y, include_background, spacing, None, None, False, distance_metric)
    b, c = rows.shape[:2]
    out = np.empty((b, c))
    offset = 0 if include_background else 1
    for i in range(b):
        for k in range(c):
            r = rows[i, k]
            if ignore_index is not None and k + offset == ignore_index:
                out[i, k] = float("nan")
            elif r[0] != 0:
                out[i, k] = _empty_value(r[0], empty, shape, spacings[i], None)
            else:
                out[i, k] = r[4] if symmetric else r[11]
    return _as_result(out, torch.as_tensor(y_pred))


def compute_surface_dice(
    y_pred,
    y,
    class_thresholds: Sequence[float],
    include_background: bool = False,
    distance_metric: str = "euclidean",
    spacing=None,
    use_subvoxels: bool = False,
    ignore_index: Optional[int] = None,
) -> torch.Tensor:
    """MONAI's ``compute_surface_dice``: the normalized surface Dice ``[B, C]`` with one
    tolerance (mm) per class in ``class_thresholds``: boundary voxels (or, with
    ``use_subvoxels``, DeepMind's surface elements weighted by area) within the tolerance of the
    other surface, over all. NaN where both masks are empty, 0 where one is (as MONAI)."""
    yp = torch.as_tensor(y_pred)
    if yp.dim() not in (4, 5) or torch.as_tensor(y).dim() not in (4, 5):
        raise ValueError("y_pred and y should be one-hot encoded: [B,C,H,W] or [B,C,H,W,D].")
    n_class = yp.shape[1] - (0 if include_background else 1)
    thresholds = [float(t) for t in class_thresholds]
    if n_class != len(thresholds):
        raise ValueError(
            f"number of classes ({n_class}) does not match number of class thresholds ({len(thresholds)})."
        )
    if not all(np.isfinite(thresholds)):
        raise ValueError("All class thresholds need to be finite.")
    if any(t < 0 for t in thresholds):
        raise ValueError("All class thresholds need to be >= 0.")
    rows, _, _ = _distance_rows(y_pred, y, include_background, spacing, None, thresholds, use_subvoxels, distance_metric)
    out = np.where(rows[..., 0] == 0, rows[..., 6], np.where(rows[..., 0] == 3, np.nan, 0.0))
    if ignore_index is not None:
        k = ignore_index - (0 if include_background else 1)
        if 0 <= k < out.shape[1]:
            out[:, k] = np.nan
    return _as_result(out, yp)


class _CumulativeMetric:
    """MONAI's ``CumulativeIterationMetric``: ``__call__(y_pred, y)`` computes a batch's values
    ``[B, C]`` (tensors ``[B, C, …]``, or lists/tuples of decollated cases ``[C, …]`` which may
    differ in size), keeps them and returns them; ``aggregate()`` reduces everything kept;
    ``reset()`` empties it; ``get_buffer()`` is every value kept ``[cases, C]``; ``append`` and
    ``extend`` add values computed elsewhere."""

    def __init__(self, reduction="mean", get_not_nans: bool = False) -> None:
        self.reduction = _reduction_name(reduction)
        self.get_not_nans = get_not_nans
        self.reset()

    def reset(self) -> None:
        self._buffer: list = []

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, y_pred, y=None, **kwargs) -> torch.Tensor:
        if y is None:
            raise ValueError("y (the reference) is required")
        if not isinstance(y_pred, (list, tuple, torch.Tensor)):
            raise ValueError("y_pred or y must be a list/tuple of `channel-first` Tensors or a `batch-first` Tensor.")
        if isinstance(y_pred, torch.Tensor) and not isinstance(y, torch.Tensor):
            raise ValueError("y_pred and y must be PyTorch Tensor.")
        if isinstance(y_pred, (list, tuple)) or isinstance(y, (list, tuple)):
            if not isinstance(y_pred, (list, tuple)) or not isinstance(y, (list, tuple)):
                raise ValueError("y_pred and y must both be lists (decollated cases) or both tensors")
            if len(y_pred) != len(y):
                raise ValueError(f"y_pred holds {len(y_pred)} cases and y {len(y)}")
            if not y_pred:
                raise ValueError("y_pred and y are empty lists")
            parts = []
            for i, (p, t) in enumerate(zip(y_pred, y)):
                p, t = torch.as_tensor(p), torch.as_tensor(t)
                if p.shape != t.shape:
                    raise ValueError(f"case {i}: y_pred has shape {tuple(p.shape)} and y {tuple(t.shape)}")
                case_kwargs = dict(kwargs)
                if isinstance(kwargs.get("spacing"), (list, tuple)) and len(kwargs["spacing"]) == len(y_pred) and not all(
                    isinstance(s, (int, float)) for s in kwargs["spacing"]
                ):
                    case_kwargs["spacing"] = [kwargs["spacing"][i]]
                parts.append(self._compute_tensor(p[None], t[None], **case_kwargs))
            values = torch.cat(parts)
        else:
            values = self._compute_tensor(torch.as_tensor(y_pred), torch.as_tensor(y), **kwargs)
        self.extend(values)
        return values

    def extend(self, *data) -> None:
        """Adds batches of values ``[B, C]`` (MONAI's ``Cumulative.extend``)."""
        for d in data:
            d = torch.as_tensor(d)
            if d.dim() < 1:
                raise ValueError("extend takes batches of values [B, C]")
            self._buffer.append(d.detach())

    def append(self, *data) -> None:
        """Adds single cases' values ``[C]`` (MONAI's ``Cumulative.append``)."""
        for d in data:
            self._buffer.append(torch.as_tensor(d).detach()[None])

    def get_buffer(self) -> Optional[torch.Tensor]:
        """Every value kept ``[cases, C]``, or None before the first."""
        if not self._buffer:
            return None
        device = self._buffer[0].device
        return torch.cat([b.to(device) for b in self._buffer])

    def aggregate(self, reduction=None):
        """The reduced values (``reduction`` overrides the constructor's); ``(value, not_nans)``
        with ``get_not_nans=True``."""
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be PyTorch Tensor, got {type(data)}.")
        f, not_nans = metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f


class HausdorffDistanceMetric(_CumulativeMetric):
    """MONAI's ``HausdorffDistanceMetric`` (see :func:`compute_hausdorff_distance`);
    ``spacing`` goes to ``__call__`` as in MONAI. ``empty`` (last): ``"diagonal"`` (ours) or
    ``"monai"``."""

    def __init__(
        self,
        include_background: bool = False,
        distance_metric: str = "euclidean",
        percentile: Optional[float] = None,
        directed: bool = False,
        reduction="mean",
        get_not_nans: bool = False,
        ignore_index: Optional[int] = None,
        empty: str = "diagonal",
    ) -> None:
        super().__init__(reduction, get_not_nans)
        _check_distance_metric(distance_metric)
        self.include_background = include_background
        self.distance_metric = distance_metric
        self.percentile = percentile
        self.directed = directed
        self.ignore_index = ignore_index
        self.empty = _empty_mode(empty)

    def _compute_tensor(self, y_pred, y, **kwargs):
        return compute_hausdorff_distance(
            y_pred, y, self.include_background, self.distance_metric, self.percentile, self.directed,
            kwargs.get("spacing"), self.ignore_index, self.empty,
        )


class SurfaceDistanceMetric(_CumulativeMetric):
    """MONAI's ``SurfaceDistanceMetric`` (see :func:`compute_average_surface_distance`).
    ``empty`` (last): ``"diagonal"`` (ours) or ``"monai"``."""

    def __init__(
        self,
        include_background: bool = False,
        symmetric: bool = False,
        distance_metric: str = "euclidean",
        reduction="mean",
        get_not_nans: bool = False,
        ignore_index: Optional[int] = None,
        empty: str = "diagonal",
    ) -> None:
        super().__init__(reduction, get_not_nans)
        _check_distance_metric(distance_metric)
        self.include_background = include_background
        self.symmetric = symmetric
        self.distance_metric = distance_metric
        self.ignore_index = ignore_index
        self.empty = _empty_mode(empty)

    def _compute_tensor(self, y_pred, y, **kwargs):
        return compute_average_surface_distance(
            y_pred, y, self.include_background, self.symmetric, self.distance_metric,
            kwargs.get("spacing"), self.ignore_index, self.empty,
        )


class SurfaceDiceMetric(_CumulativeMetric):
    """MONAI's ``SurfaceDiceMetric`` (see :func:`compute_surface_dice`)."""

    def __init__(
        self,
        class_thresholds: Sequence[float],
        include_background: bool = False,
        distance_metric: str = "euclidean",
        reduction="mean",
        get_not_nans: bool = False,
        use_subvoxels: bool = False,
        ignore_index: Optional[int] = None,
    ) -> None:
        super().__init__(reduction, get_not_nans)
        _check_distance_metric(distance_metric)
        self.class_thresholds = class_thresholds
        self.include_background = include_background
        self.distance_metric = distance_metric
        self.use_subvoxels = use_subvoxels
        self.ignore_index = ignore_index

    def _compute_tensor(self, y_pred, y, **kwargs):
        return compute_surface_dice(
            y_pred, y, self.class_thresholds, self.include_background, self.distance_metric,
            kwargs.get("spacing"), self.use_subvoxels, self.ignore_index,
        )


def _empty_mode(empty: str) -> str:
    if empty not in ("diagonal", "monai"):
        raise ValueError(f'empty must be "diagonal" or "monai", not {empty!r}')
    return empty


#: BraTS 2023's constants per challenge: (dilation, minimum lesion volume in mm³).
BRATS_CHALLENGES = {"GLI": (3, 50.0), "SSA": (3, 50.0), "PED": (3, 50.0), "MEN": (1, 50.0), "MET": (1, 2.0)}

#: The values each matching gives, in the core's order.
LESION_METRICS = {
    "dilation": ("lesion_dice", "lesion_hd95", "lesion_tp", "lesion_fp", "lesion_fn", "fp_volume_ml", "fn_volume_ml"),
    "iou": (
        "lesion_tp", "lesion_fp", "lesion_fn", "lesion_precision", "lesion_recall", "lesion_f1",
        "pq", "sq", "fp_volume_ml", "fn_volume_ml",
    ),
}


def compute_lesion_wise(
    y_pred,
    y,
    metric_name: Union[str, Sequence[str]] = "lesion_dice",
    include_background: bool = False,
    spacing=None,
    matching: str = "dilation",
    challenge: str = "GLI",
    hd_penalty: float = 374.0,
    iou_threshold: float = 0.5,
    min_voxels: Optional[int] = None,
    connectivity: int = 26,
):
    """Lesion-wise values ``[B, C]`` of one-hot batches (one tensor per name when
    ``metric_name`` is a sequence), each class (or region: give BraTS's WT/TC/ET as channels)
    evaluated as ``dice eval --lesion-wise`` does.

    ``matching="dilation"`` is the BraTS 2023 definition (``rachitsaluja/BraTS-2023-Metrics``):
    the reference dilated ``dilation`` times groups its components into lesions, predicted
    components touching a lesion's dilated region match it, lesions under the challenge's
    minimum volume leave the score; ``lesion_dice = Σ Dice/(lesions + FP)``, ``lesion_hd95``
    likewise with ``hd_penalty`` (mm) for misses and false positives. ``matching="iou"``:
    components match when their IoU exceeds ``iou_threshold`` (panoptica, MetricsReloaded),
    giving detection ``lesion_precision``/``lesion_recall``/``lesion_f1`` and ``pq``/``sq``.
    ``challenge`` sets BraTS's dilation and minimum volume (``GLI``, ``SSA``, ``PED``: 3 and
    50 mm³; ``MEN``: 1 and 50; ``MET``: 1 and 2); ``min_voxels`` replaces the volume rule."""
    names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
    if matching not in LESION_METRICS:
        raise ValueError(f'matching must be "dilation" or "iou", not {matching!r}')
    unknown = [n for n in names if n not in LESION_METRICS[matching]]
    if unknown:
        raise ValueError(f"{unknown} are not values of matching={matching!r}: choose from {list(LESION_METRICS[matching])}")
    if challenge not in BRATS_CHALLENGES:
        raise ValueError(f"challenge must be one of {sorted(BRATS_CHALLENGES)}, not {challenge!r}")
    dilation, min_volume = BRATS_CHALLENGES[challenge]
    y_pred, y = torch.as_tensor(y_pred), torch.as_tensor(y)
    if y_pred.dim() not in (4, 5) or y.dim() not in (4, 5):
        raise ValueError("y_pred and y should be one-hot encoded: [B,C,H,W] or [B,C,H,W,D].")
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y should have same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if not include_background:
        y_pred, y = y_pred[:, 1:], y[:, 1:]
    b, c = y_pred.shape[:2]
    spacings = _prepare_spacing(spacing, b, y_pred.dim() - 2)
    out = np.empty((len(names), b, c))
    for i in range(b):
        for k in range(c):
            cols, values = _ed._native.lesion_wise(
                _binary(y_pred[i, k]), _binary(y[i, k]), spacings[i], matching, dilation, min_volume,
                float(hd_penalty), float(iou_threshold), min_voxels, int(connectivity),
            )
            row = dict(zip(cols, values))
            for m, n in enumerate(names):
                out[m, i, k] = row[n]
    results = [_as_result(o, y_pred) for o in out]
    return results[0] if isinstance(metric_name, str) else results


class LesionWiseMetric(_CumulativeMetric):
    """Lesion-wise scores in MONAI's cumulative style (MONAI has none): BraTS 2023's
    lesion-wise Dice and HD95, detection counts and F1, panoptic quality; see
    :func:`compute_lesion_wise` for every argument. ``metric_name`` a string: ``__call__`` and
    ``aggregate`` return tensors; a sequence: lists of them, one per name, as MONAI's
    ``ConfusionMatrixMetric``. ``spacing`` goes to ``__call__``. Counts (``lesion_tp``, …)
    reduce like any value (``reduction="sum"`` totals them)."""

    def __init__(
        self,
        metric_name: Union[str, Sequence[str]] = "lesion_dice",
        include_background: bool = False,
        reduction="mean",
        get_not_nans: bool = False,
        matching: str = "dilation",
        challenge: str = "GLI",
        hd_penalty: float = 374.0,
        iou_threshold: float = 0.5,
        min_voxels: Optional[int] = None,
        connectivity: int = 26,
    ) -> None:
        super().__init__(reduction, get_not_nans)
        self.metric_name = metric_name
        self._names = [metric_name] if isinstance(metric_name, str) else list(metric_name)
        self._args = dict(
            include_background=include_background, matching=matching, challenge=challenge,
            hd_penalty=hd_penalty, iou_threshold=iou_threshold, min_voxels=min_voxels, connectivity=connectivity,
        )
        compute_lesion_wise(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), self._names, **self._args)  # checks

    def _compute_tensor(self, y_pred, y, **kwargs):
        # One buffer [B, C, M]: the names' values side by side.
        return torch.stack(compute_lesion_wise(y_pred, y, self._names, spacing=kwargs.get("spacing"), **self._args), -1)

    def __call__(self, y_pred, y=None, **kwargs):
        values = super().__call__(y_pred, y, **kwargs)
        return values[..., 0] if isinstance(self.metric_name, str) else list(values.unbind(-1))

    def get_buffer(self):
        data = super().get_buffer()
        if data is None or not isinstance(self.metric_name, str):
            return None if data is None else list(data.unbind(-1))
        return data[..., 0]

    def aggregate(self, reduction=None):
        data = super().get_buffer()
        if data is None:
            raise ValueError("the data to aggregate must be PyTorch Tensor, got <class 'NoneType'>.")
        results = [metric_reduction(d, reduction or self.reduction) for d in data.unbind(-1)]
        out = [(f, n) if self.get_not_nans else f for f, n in results]
        return out[0] if isinstance(self.metric_name, str) else out
