"""exactdice: exact Sørensen–Dice for NumPy and PyTorch.

Every count, score and gradient comes from ``dice-core`` (Rust): counts are exact integers,
sums of probabilities are exact to the last bit of float64 whatever the volume, empty masks
follow an explicit policy, and label maps are counted for every label in one pass without
one-hot.

NumPy (evaluation)::

    import exactdice as ed
    c = ed.confusion(pred_labels, ref_labels, num_classes=4)   # every label, one pass
    c.dice            # per label, the default empty policy
    c.with_policy("monai").dice
    total = sum(per_case_confusions)                           # exact merge of chunks/cases

PyTorch (training): ``from exactdice.torch import DiceLoss`` has MONAI's signature.

Empty policies (the values of a score when the reference is empty, and when both are):

=====================  ================  ============  ====================================
policy                 reference empty   both empty    tools
=====================  ================  ============  ====================================
``"default"``          0                 skipped       this package
``"monai"``            0                 1             MONAI ``DiceMetric(ignore_empty=False)``
``"monai_ignore_empty"``  NaN            NaN           MONAI ``DiceMetric()`` (its default)
``"nnunet"``           0                 NaN           nnU-Net, torchmetrics, surface-distance
``"metrics_reloaded"`` 0                 1             MetricsReloaded
=====================  ================  ============  ====================================

A skipped or NaN value is left out of means, which report how many values were defined.
Integer label maps of dtypes without a kernel (``bool``, ``int8``, ``int16``) are converted
once to ``uint8``/``int32``; non-contiguous arrays are copied once.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native

__version__ = _native.__version__

__all__ = [
    "Confusion",
    "Mean",
    "POLICIES",
    "confusion",
    "dice",
    "mean",
    "SurfaceDistances",
    "surface_distances",
]

#: The empty policies by the peers' names: (reference empty, both empty).
POLICIES = {
    "default": (0, "skip"),
    "monai": (0, 1),
    "monai_ignore_empty": ("nan", "nan"),
    "nnunet": (0, "nan"),
    "metrics_reloaded": (0, 1),
}

Policy = Union[str, Tuple[object, object]]

_METRICS = ("dice", "iou", "precision", "recall", "specificity", "volume_similarity")


def _policy(policy: Policy) -> Tuple[object, object]:
    if isinstance(policy, str):
        try:
            return POLICIES[policy]
        except KeyError:
            raise ValueError(
                f"empty policy {policy!r} is not one of {sorted(POLICIES)} "
                "(or give a pair (reference_empty, both_empty) of 0, 1, 'nan', 'skip')"
            ) from None
    if isinstance(policy, tuple) and len(policy) == 2:
        return policy
    raise TypeError(f"an empty policy is a name or a pair, not {policy!r}")


class Mean(NamedTuple):
    """A mean over values some of which may be undefined (NaN or skipped)."""

    mean: float
    """The mean of the defined values (NaN when there is none)."""
    defined: int
    """How many values were defined."""
    total: int
    """How many values were offered."""


def mean(values) -> Mean:
    """The mean of the defined (non-NaN) values, with how many were defined."""
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = ~np.isnan(v)
    n = int(ok.sum())
    return Mean(float(v[ok].mean()) if n else float("nan"), n, int(v.size))


class Confusion:
    """Exact confusion counts ``(tp, fp, fn, tn)`` of one or many binary decisions.

    ``counts`` is a ``uint64`` array ``[..., 4]`` (for example ``[labels, 4]`` or
    ``[cases, labels, 4]``). ``a + b`` merges (exactly: disjoint voxels, chunks of one volume,
    the same label over cases), ``sum(list)`` works, objects pickle, so chunked and
    distributed evaluation is exact. Scores come from dice-core with the object's empty
    policy (``"default"`` unless given): ``.dice``, ``.iou``, ``.precision``, ``.recall``,
    ``.specificity``, ``.volume_similarity`` are ``float64`` arrays of the leading shape, NaN
    where the policy leaves the score undefined.
    """

    __slots__ = ("counts", "policy")

    def __init__(self, counts, policy: Policy = "default"):
        c = np.asarray(counts)
        if c.dtype != np.uint64:
            if not np.issubdtype(c.dtype, np.integer) or (c.size and c.min() < 0):
                raise ValueError("confusion counts are non-negative integers")
            c = c.astype(np.uint64)
        if c.ndim == 0 or c.shape[-1] != 4:
            raise ValueError(f"counts must have shape [..., 4] (tp, fp, fn, tn), got {c.shape}")
        _policy(policy)
        self.counts = c
        self.policy = policy

    def __getstate__(self):
        return (self.counts, self.policy)

    def __setstate__(self, state):
        self.counts, self.policy = state

    def with_policy(self, policy: Policy) -> "Confusion":
        """The same counts scored with another empty policy."""
        return Confusion(self.counts, policy)

    def __add__(self, other):
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        if not isinstance(other, Confusion):
            return NotImplemented
        if other.counts.shape != self.counts.shape:
            raise ValueError(
                f"cannot merge counts of shapes {self.counts.shape} and {other.counts.shape}"
            )
        return Confusion(self.counts + other.counts, self.policy)

    __radd__ = __add__

    def __eq__(self, other):
        return isinstance(other, Confusion) and np.array_equal(self.counts, other.counts)

    def __repr__(self):
        return f"Confusion(shape={self.counts.shape[:-1]}, policy={self.policy!r})"

    def __getitem__(self, index) -> "Confusion":
        """Counts of one label or case: ``c[2]``, ``c[:, 1]``."""
        return Confusion(self.counts[index], self.policy)

    def total(self, axis: int = 0) -> "Confusion":
        """Counts summed over ``axis`` (cases, say): the pooled counts."""
        if self.counts.ndim < 2:
            raise ValueError("a single set of counts has no axis to sum over")
        return Confusion(self.counts.sum(axis=axis, dtype=np.uint64), self.policy)

    @property
    def tp(self):
        return self.counts[..., 0]

    @property
    def fp(self):
        return self.counts[..., 1]

    @property
    def fn(self):
        return self.counts[..., 2]

    @property
    def tn(self):
        return self.counts[..., 3]

    def metric(self, name: str) -> np.ndarray:
        """One of ``dice``, ``iou``, ``precision``, ``recall``, ``specificity``,
        ``volume_similarity`` (dice-core's definitions), with this object's empty policy."""
        ref, both = _policy(self.policy)
        c = np.ascontiguousarray(self.counts)
        out = _native.scores(c, name, ref, both)
        return out.reshape(self.counts.shape[:-1])

    dice = property(lambda self: self.metric("dice"), doc="Dice 2TP/(2TP+FP+FN).")
    iou = property(lambda self: self.metric("iou"), doc="IoU TP/(TP+FP+FN).")
    precision = property(lambda self: self.metric("precision"), doc="TP/(TP+FP).")
    recall = property(lambda self: self.metric("recall"), doc="TP/(TP+FN).")
    specificity = property(lambda self: self.metric("specificity"), doc="TN/(TN+FP).")
    volume_similarity = property(
        lambda self: self.metric("volume_similarity"), doc="1 - |FP-FN|/(2TP+FP+FN)."
    )

    def as_dict(self) -> dict:
        """Counts and every metric as plain Python values (lists for arrays)."""
        d = {k: getattr(self, k).tolist() for k in ("tp", "fp", "fn", "tn")}
        for m in _METRICS:
            d[m] = self.metric(m).tolist()
        return d


_LABEL_DTYPES = (np.uint8, np.uint16, np.uint32, np.int32, np.int64)


def _label_array(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.view(np.uint8) if a.flags.c_contiguous else a.astype(np.uint8)
    if a.dtype in (np.int8, np.int16):
        return a.astype(np.int32)
    if a.dtype == np.uint64:
        if a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError("a uint64 label above 2^63 - 1 has no int64 equivalent")
        return a.astype(np.int64)
    return a


def _label_pair(p: np.ndarray, t: np.ndarray):
    """Two label maps as C-contiguous arrays of one dtype the core counts (one conversion,
    only where needed)."""
    p, t = _label_array(p), _label_array(t)
    if p.dtype != t.dtype:
        common = np.promote_types(p.dtype, t.dtype)
        if common not in _LABEL_DTYPES:
            common = np.int64
        p, t = p.astype(common), t.astype(common)
    return np.ascontiguousarray(p), np.ascontiguousarray(t)


def _default_classes(p: np.ndarray, t: np.ndarray, ignore_label: Optional[int]) -> int:
    """The largest label of either map (the ignore label left out) + 1."""
    valid = [a[a != ignore_label] if ignore_label is not None else a for a in (p, t)]
    return max((int(v.max()) for v in valid if v.size), default=0) + 1


def confusion(
    pred,
    target,
    *,
    num_classes: Optional[int] = None,
    labels: Optional[Sequence[int]] = None,
    threshold: Optional[float] = None,
    ignore_label: Optional[int] = None,
    batch: bool = False,
    include_background: bool = True,
    policy: Policy = "default",
) -> Confusion:
    """Exact confusion counts of a prediction against a reference.

    * Integer (or boolean) arrays are label maps of any shape: every label ``0..num_classes``
      is counted in one pass (``num_classes`` defaults to the largest label + 1); ``labels``
      keeps only those; voxels where either map holds ``ignore_label`` are in no count. Result
      ``[labels, 4]``, or ``[cases, labels, 4]`` with ``batch=True`` (first axis = cases).
    * Floating arrays are probability maps ``[C, ...]`` (``[N, C, ...]`` with ``batch``) and a
      dense reference of the same shape, both thresholded at ``threshold`` (default 0.5;
      ``p >= threshold`` is positive). Result ``[C, 4]`` or ``[N, C, 4]``.

    ``include_background=False`` drops label/channel 0.
    """
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"pred has shape {p.shape} and target {t.shape}: they must match")
    if p.size == 0:
        raise ValueError("pred and target are empty")
    floating = np.issubdtype(p.dtype, np.floating) or np.issubdtype(t.dtype, np.floating)
    if floating:
        if not (np.issubdtype(p.dtype, np.floating) and np.issubdtype(t.dtype, np.floating)):
            raise TypeError(
                f"pred is {p.dtype} and target {t.dtype}: give two label maps (integers) or "
                "two probability maps (floats)"
            )
        dt = np.float64 if np.float64 in (p.dtype, t.dtype) else np.float32
        p = np.ascontiguousarray(p, dtype=dt)
        t = np.ascontiguousarray(t, dtype=dt)
        lead = 2 if batch else 1
        if p.ndim < lead:
            raise ValueError(f"probability maps need shape {'[N, C, ...]' if batch else '[C, ...]'}")
        n = p.shape[0] if batch else 1
        ch = p.shape[1] if batch else p.shape[0]
        c = _native.threshold_confusion(p, t, n, ch, 0.5 if threshold is None else float(threshold))
        if not batch:
            c = c[0]
        if not include_background:
            c = c[..., 1:, :]
        return Confusion(c, policy)
    if threshold is not None:
        raise ValueError("threshold applies to probability maps; pred and target hold labels")
    p, t = _label_pair(p, t)
    if num_classes is None:
        num_classes = _default_classes(p, t, ignore_label)
        if labels is not None and len(labels):
            num_classes = max(num_classes, max(labels) + 1)
    n = p.shape[0] if batch else 1
    c = _native.label_confusion(p, t, int(num_classes), n, ignore_label)
    if not batch:
        c = c[0]
    if labels is not None:
        idx = np.asarray(labels, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
            raise ValueError(f"labels {list(labels)} are not all in 0..{num_classes}")
        c = c[..., idx, :]
    elif not include_background:
        c = c[..., 1:, :]
    return Confusion(np.ascontiguousarray(c), policy)


def dice(pred, target, *, policy: Policy = "default", **kwargs) -> np.ndarray:
    """Per-label (per case and label with ``batch=True``) hard Dice; see :func:`confusion`."""
    return confusion(pred, target, policy=policy, **kwargs).dice


class SurfaceDistances(NamedTuple):
    """Surface distances (mm) per label; NaN where a mask is empty (see ``status``)."""

    hausdorff: np.ndarray
    """The largest distance between the surfaces."""
    hd: np.ndarray
    """The percentile Hausdorff distance: the larger of the two directed percentiles (MONAI,
    DeepMind surface-distance, MetricsReloaded)."""
    hd_pooled: np.ndarray
    """The percentile of both directions' distances pooled (medpy's ``hd95``)."""
    assd: np.ndarray
    """Average symmetric surface distance (medpy)."""
    masd: np.ndarray
    """Mean of the two directed mean distances (MetricsReloaded)."""
    nsd: np.ndarray
    """Normalized surface Dice at the tolerance."""
    status: np.ndarray
    """0 both masks present, 1 reference empty, 2 prediction empty, 3 both empty."""


def surface_distances(
    pred,
    target,
    *,
    spacing: Sequence[float],
    num_classes: Optional[int] = None,
    percentile: float = 95.0,
    tolerance: float = 1.0,
    elements: str = "voxels",
    ignore_label: Optional[int] = None,
) -> SurfaceDistances:
    """Surface distances of every label ``0..num_classes`` of two 2-D or 3-D label maps, with
    ``spacing`` in mm in the arrays' axis order. ``elements="voxels"``: boundary voxels (medpy,
    MONAI); ``"surfels"``: DeepMind's surface elements weighted by area. Voxels holding
    ``ignore_label`` belong to no label."""
    p, t = _label_pair(np.asarray(pred), np.asarray(target))
    if num_classes is None:
        num_classes = _default_classes(p, t, ignore_label)
    r = _native.surface_distances(
        p, t, int(num_classes), [float(s) for s in spacing], float(percentile), float(tolerance), elements, ignore_label
    )
    return SurfaceDistances(r[:, 1], r[:, 2], r[:, 3], r[:, 4], r[:, 5], r[:, 6], r[:, 0].astype(np.int64))
