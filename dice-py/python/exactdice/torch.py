"""MONAI-compatible soft losses with analytic gradients from dice-core.

``from exactdice.torch import DiceLoss`` takes MONAI's constructor (same positional order, same
keyword names and defaults) and returns the same values and gradients, computed by dice-core
over the tensors' memory: statistics in float64 (exact whatever the volume), the closed-form
gradient instead of an autograd graph of element-wise operations. Label-map targets go in as
they are: ``to_onehot_y=True`` expands nothing.

Differences on purpose, each a clear error rather than a silent change:

* ``other_act`` is refused (the gradient is closed-form through sigmoid or softmax only);
* ``sigmoid`` and ``softmax`` together are refused (as MONAI does);
* CPU tensors only in this release (CUDA tensors raise ``NotImplementedError``).

The autograd path is one operator, ``torch.ops.exactdice.soft_loss``, registered with
``torch.library.custom_op`` and ``register_autograd`` (with a fake implementation), so it runs
eagerly, under ``torch.compile`` and in ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import threading
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from . import _native

__all__ = ["DiceLoss", "GeneralizedDiceLoss", "TverskyLoss"]

# LossParams by id: custom operators take plain values, so a loss passes its parameters' id.
_PARAMS: dict = {}
_LOCK = threading.Lock()


def _register(params) -> int:
    with _LOCK:
        key = len(_PARAMS) + 1
        _PARAMS[key] = params
    return key


def _np(t: torch.Tensor, what: str) -> np.ndarray:
    """A NumPy view of a CPU tensor's memory (one copy only if not contiguous)."""
    if t.device.type != "cpu":
        raise NotImplementedError(
            f"{what} is on {t.device}: this release of exactdice runs on CPU tensors only"
        )
    return t.detach().contiguous().numpy()


def _act_name(act: str) -> Optional[str]:
    return None if act == "none" else act


def _groups_shape(params_key: int, n: int, c: int) -> int:
    return _PARAMS[params_key].group_count(n, c)


@torch.library.custom_op("exactdice::soft_loss", mutates_args=())
def _soft_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor],
    params_key: int,
    activation: str,
    per_group: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    params = _PARAMS[params_key]
    x, t = _np(input, "input"), _np(target, "target")
    m = None if mask is None else _np(mask, "mask")
    stats = _native.soft_statistics(params, x, t, _act_name(activation), m)
    n, c = input.shape[0], input.shape[1]
    value, _groups, _defined, groups = _native.soft_loss(params, stats, n, c)
    out = torch.from_numpy(groups) if per_group else torch.tensor(value, dtype=torch.float64)
    return out.to(input.dtype), torch.from_numpy(stats)


@_soft_loss.register_fake
def _(input, target, mask, params_key, activation, per_group):
    n, c = input.shape[0], input.shape[1]
    shape = (_groups_shape(params_key, n, c),) if per_group else ()
    return (
        input.new_empty(shape),
        input.new_empty((n * c, 5), dtype=torch.float64),
    )


def _setup(ctx, inputs, output):
    input, target, mask, params_key, activation, per_group = inputs
    ctx.save_for_backward(input, target, mask, output[1])
    ctx.params_key, ctx.activation, ctx.per_group = params_key, activation, per_group


def _backward(ctx, grad_loss, _grad_stats):
    input, target, mask, stats = ctx.saved_tensors
    params = _PARAMS[ctx.params_key]
    if ctx.per_group:
        up = _np(grad_loss.to(torch.float64), "grad_output")
    else:
        up = float(grad_loss)
    g = _native.soft_gradient(
        params,
        _np(input, "input"),
        _np(target, "target"),
        _np(stats, "stats"),
        up,
        _act_name(ctx.activation),
        None if mask is None else _np(mask, "mask"),
    )
    return torch.from_numpy(g), None, None, None, None, None


_soft_loss.register_autograd(_backward, setup_context=_setup)


def _weights(weight, include_background: bool) -> Optional[list]:
    if weight is None:
        return None
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().tolist()
    if isinstance(weight, (int, float)):
        return [float(weight)]  # expanded to every channel at the first call
    return [float(w) for w in weight]


class _SoftLoss(torch.nn.Module):
    """The shared forward of the losses below (MONAI's input conventions)."""

    def __init__(
        self,
        score: str,
        include_background: bool,
        to_onehot_y: bool,
        sigmoid: bool,
        softmax: bool,
        other_act,
        reduction: str,
        smooth_nr: float,
        smooth_dr: float,
        batch: bool,
        soft_label: bool,
        ignore_index: Optional[int] = None,
        weight=None,
        **score_args,
    ):
        super().__init__()
        if other_act is not None:
            raise ValueError(
                "other_act is not supported: exactdice differentiates sigmoid and softmax in "
                "closed form; apply your activation yourself and pass probabilities"
            )
        if sigmoid and softmax:
            raise ValueError("Incompatible values: sigmoid=True and softmax=True.")
        reduction = getattr(reduction, "value", reduction)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f'Unsupported reduction: {reduction}, available options are ["mean", "sum", "none"].')
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.activation = "sigmoid" if sigmoid else "softmax" if softmax else "none"
        self.reduction = reduction
        self.batch = batch
        self.ignore_index = ignore_index
        self._weight = _weights(weight, include_background)
        self._args = dict(
            score=score,
            smooth_nr=float(smooth_nr),
            smooth_dr=float(smooth_dr),
            batch=batch,
            soft_label=soft_label,
            reduction=reduction,
            **score_args,
        )
        self._keys: dict = {}

    def _key(self, channels: int, include_background: bool) -> int:
        k = (channels, include_background)
        if k not in self._keys:
            w = self._weight
            if w is not None:
                if len(w) == 1:
                    w = w * channels
                elif not include_background and len(w) == channels - 1:
                    w = [0.0] + w  # MONAI weighs the classes left after dropping background
            self._keys[k] = _register(
                _native.LossParams(
                    include_background=include_background,
                    weight=w,
                    ignore_index=self.ignore_index,
                    **self._args,
                )
            )
        return self._keys[k]

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if input.dim() < 3:
            raise ValueError(f"input must be [N, C, spatial...], got shape {tuple(input.shape)}")
        if input.dtype not in (torch.float32, torch.float64):
            input = input.float()
        if input.device != target.device:
            raise ValueError(f"input is on {input.device} and target on {target.device}")
        n, c = input.shape[0], input.shape[1]
        include_background = self.include_background
        if c == 1:
            if self.activation == "softmax":
                warnings.warn("single channel prediction, `softmax=True` ignored.", stacklevel=2)
            if not include_background:
                warnings.warn("single channel prediction, `include_background=False` ignored.", stacklevel=2)
                include_background = True
        act = "none" if (c == 1 and self.activation == "softmax") else self.activation
        spatial = tuple(input.shape[2:])
        labels = self.to_onehot_y and c > 1
        if self.to_onehot_y and c == 1:
            warnings.warn("single channel prediction, `to_onehot_y=True` ignored.", stacklevel=2)
        if labels:
            if target.dim() == input.dim():
                if target.shape[1] != 1:
                    raise ValueError(
                        f"to_onehot_y=True needs a label map [N, 1, ...], got {tuple(target.shape)}"
                    )
                target = target[:, 0]
            if tuple(target.shape) != (n,) + spatial:
                raise ValueError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
                )
            if target.is_floating_point():
                if bool(torch.any(target != torch.round(target))):
                    raise ValueError("to_onehot_y=True: the label map holds non-integer values")
                target = target.to(torch.int64)
            elif target.dtype not in (torch.uint8, torch.int32, torch.int64):
                target = target.to(torch.int64)
            if self.ignore_index is not None and not (0 <= self.ignore_index < c):
                pass  # the core leaves voxels holding ignore_index out
        else:
            if tuple(target.shape) != tuple(input.shape):
                raise ValueError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
                )
            target = target.to(input.dtype)
        key = self._key(c, include_background)
        per_group = self.reduction == "none"
        m = None
        if mask is not None:
            m = (mask.reshape(n, -1) != 0).to(torch.uint8)
        loss, _ = torch.ops.exactdice.soft_loss(input, target, m, key, act, per_group)
        if per_group:
            groups = loss
            lead = [c if include_background else c - 1] if self.batch else [n, c if include_background else c - 1]
            return groups.reshape(lead + [1] * len(spatial))
        return loss


class DiceLoss(_SoftLoss):
    """MONAI's ``DiceLoss``: ``1 - (2·Σp·g + smooth_nr) / (Σp + Σg + smooth_dr)`` per sample and
    class (per class with ``batch=True``), reduced by ``reduction``. ``squared_pred`` uses
    ``Σp²``, ``Σg²``; ``jaccard`` scores ``I / (P + G - I)``; ``weight`` multiplies each class's
    loss (one value, or one per class left after ``include_background``); ``soft_label`` uses
    the intersection ``(P + G - Σ|p - g|)/2``, the right one for soft targets."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act=None,
        squared_pred: bool = False,
        jaccard: bool = False,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        weight: Union[Sequence[float], float, int, torch.Tensor, None] = None,
        soft_label: bool = False,
        ignore_index: Optional[int] = None,
    ) -> None:
        super().__init__(
            "jaccard" if jaccard else "dice",
            include_background,
            to_onehot_y,
            sigmoid,
            softmax,
            other_act,
            reduction,
            smooth_nr,
            smooth_dr,
            batch,
            soft_label,
            ignore_index,
            weight,
            squared_pred=squared_pred,
        )


class GeneralizedDiceLoss(_SoftLoss):
    """MONAI's ``GeneralizedDiceLoss`` (Sudre et al. 2017): class weights ``1/G²``
    (``w_type="square"``), ``1/G`` (``"simple"``) or ``1`` (``"uniform"``); an absent class
    takes the largest weight of the present ones, as MONAI does."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act=None,
        w_type: str = "square",
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        soft_label: bool = False,
    ) -> None:
        super().__init__(
            "generalized",
            include_background,
            to_onehot_y,
            sigmoid,
            softmax,
            other_act,
            reduction,
            smooth_nr,
            smooth_dr,
            batch,
            soft_label,
            w_type=getattr(w_type, "value", w_type),
        )


class TverskyLoss(_SoftLoss):
    """MONAI's ``TverskyLoss``: ``1 - (I + smooth_nr) / (I + α·FP + β·FN + smooth_dr)`` with
    ``FP = Σp·(1-g)`` and ``FN = Σ(1-p)·g``."""

    def __init__(
        self,
        include_background: bool = True,
        to_onehot_y: bool = False,
        sigmoid: bool = False,
        softmax: bool = False,
        other_act=None,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: str = "mean",
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
        batch: bool = False,
        soft_label: bool = False,
        ignore_index: Optional[int] = None,
    ) -> None:
        super().__init__(
            "tversky",
            include_background,
            to_onehot_y,
            sigmoid,
            softmax,
            other_act,
            reduction,
            smooth_nr,
            smooth_dr,
            batch,
            soft_label,
            ignore_index,
            alpha=float(alpha),
            beta=float(beta),
        )
