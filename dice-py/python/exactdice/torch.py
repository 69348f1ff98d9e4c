"""MONAI-compatible losses and metrics from dice-core: ``DiceLoss``, ``GeneralizedDiceLoss``,
``TverskyLoss``, ``DiceCELoss``, ``DiceFocalLoss`` (``torch.nn.modules.loss._Loss`` subclasses
with analytic gradients), ``DiceMetric``/``compute_dice``, and, from ``exactdice.metrics``,
``HausdorffDistanceMetric``, ``SurfaceDistanceMetric``, ``SurfaceDiceMetric``,
``LesionWiseMetric`` and their ``compute_*`` functions.

``from exactdice.torch import DiceLoss`` takes MONAI's constructor (same positional order, same
keyword names and defaults) and returns the same values and gradients, computed by dice-core
over the tensors' memory: statistics in float64 (exact whatever the volume), the closed-form
gradient instead of an autograd graph of element-wise operations. Label-map targets go in as
they are: ``to_onehot_y=True`` expands nothing.

Differences on purpose, each a clear error rather than a silent change:

* ``other_act`` (any callable, as MONAI) is applied with autograd, and the loss runs on its
  output: on the core where the output holds probabilities (the closed-form gradient w.r.t.
  them, chained through the activation's autograd graph), else (``torch.tanh``,
  ``log_softmax``: values outside [0, 1], which the core refuses as probabilities) as the same
  float64 closed form in torch operations, differentiated by autograd;
* more than one of ``sigmoid``, ``softmax``, ``other_act`` is refused (as MONAI does);
* on CUDA (any device but the CPU) the same closed form runs as torch operations on the
  device, differentiated by autograd (no host round trip).

``process_group=`` (last argument, off by default; ``True`` for the default group) makes the
loss exact across data-parallel ranks: see ``_SoftLoss._distributed``. DDP averages parameter
gradients over ranks while each rank's gradient here is already that of the global loss, so
multiply the loss by the world size to train on the global loss's gradient.

The autograd path is one operator, ``torch.ops.exactdice.soft_loss``, registered with
``torch.library.custom_op`` and ``register_autograd`` (with a fake implementation), so it runs
eagerly, under ``torch.compile`` and in ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import sys
import threading
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from torch.nn.modules.loss import _Loss

from . import _native

__all__ = [
    "DiceMetric",
    "compute_dice",
    "HausdorffDistanceMetric",
    "compute_hausdorff_distance",
    "SurfaceDistanceMetric",
    "compute_average_surface_distance",
    "SurfaceDiceMetric",
    "compute_surface_dice",
    "LesionWiseMetric",
    "compute_lesion_wise",
    "DiceLoss",
    "GeneralizedDiceLoss",
    "TverskyLoss",
    "DiceCELoss",
    "DiceFocalLoss",
    "ShapeMismatchError",
]


class ShapeMismatchError(ValueError, AssertionError):
    """The target's shape does not match the input's. A ``ValueError``, and an
    ``AssertionError`` too: MONAI raises ``AssertionError`` there, and code written for it (MONAI's
    own tests among it) catches that."""

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


# Probabilities kept from a forward pass for its backward, by token (0 = none kept). Held by
# this table only, not by the graph, so that backward can hand the buffer over as the gradient
# and autograd keeps it as `.grad` without a copy; an entry leaves when backward takes it or
# when the graph holding its token is freed (a forward without backward).
_KEPT: dict = {}
_NEXT = [0]


def _keep(p: torch.Tensor) -> torch.Tensor:
    import weakref

    with _LOCK:
        _NEXT[0] += 1
        key = _NEXT[0]
    _KEPT[key] = p
    token = torch.tensor(key, dtype=torch.int64)
    weakref.finalize(token, _KEPT.pop, key, None)
    return token


_MADV_HUGEPAGE = 14
_HUGE_PAGE = 1 << 21
_libc = None


def _huge_pages(t: torch.Tensor) -> torch.Tensor:
    """Asks Linux to back a fresh buffer of 32 MiB or more with 2 MiB pages (transparent huge
    pages on request, the common `madvise` setting; PyTorch's THP_MEM_ALLOC_ENABLE=1 does it
    for every large allocation). A 64 MiB buffer otherwise costs 16 384 page faults when first
    written, about as long as the pass that writes it. Advice only: elsewhere, or if refused,
    nothing changes. Returns `t`."""
    global _libc
    nbytes = t.numel() * t.element_size()
    if nbytes < (32 << 20) or not sys.platform.startswith("linux"):
        return t
    try:
        if _libc is None:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            libc.madvise.restype = ctypes.c_int
            _libc = libc
        begin = t.data_ptr()
        first = (begin + _HUGE_PAGE - 1) & ~(_HUGE_PAGE - 1)
        last = (begin + nbytes) & ~(_HUGE_PAGE - 1)
        if last > first:
            _libc.madvise(first, last - first, _MADV_HUGEPAGE)
    except (OSError, AttributeError):
        pass
    return t


@torch.library.custom_op("exactdice::soft_loss", mutates_args=())
def _soft_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor],
    stats: Optional[torch.Tensor],
    params_key: int,
    activation: str,
    per_group: bool,
    keep: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss of `input` against `target`, scored from `stats` when given (statistics summed
    across processes) or from the input's own; returns it with the statistics used and, for
    logits, the activation's output (kept for the backward pass, which turns it into the
    gradient in place; empty otherwise)."""
    params = _PARAMS[params_key]
    _native.set_threads(torch.get_num_threads())
    token = torch.zeros((), dtype=torch.int64)
    if stats is None:
        x, t = _np(input, "input"), _np(target, "target")
        m = None if mask is None else _np(mask, "mask")
        act = _act_name(activation)
        if act is None or not keep:
            stats = _native.soft_statistics(params, x, t, act, m)
        else:
            # The softmax goes into a buffer from torch's allocator, on huge pages, kept for
            # the backward, which makes it the gradient.
            probs = _huge_pages(torch.empty(input.shape, dtype=input.dtype))
            stats = _native.soft_statistics(params, x, t, act, m, probs.numpy())
            token = _keep(probs)
    else:
        stats = _np(stats, "stats").copy()
    n, c = input.shape[0], input.shape[1]
    value, _groups, _defined, groups = _native.soft_loss(params, stats, n, c)
    out = torch.from_numpy(groups) if per_group else torch.tensor(value, dtype=torch.float64)
    return out.to(input.dtype), torch.from_numpy(stats), token


@_soft_loss.register_fake
def _(input, target, mask, stats, params_key, activation, per_group, keep=False):
    n, c = input.shape[0], input.shape[1]
    shape = (_groups_shape(params_key, n, c),) if per_group else ()
    return (
        input.new_empty(shape),
        input.new_empty((n * c, 5), dtype=torch.float64),
        input.new_empty((), dtype=torch.int64),
    )


def _setup(ctx, inputs, output):
    input, target, mask, _stats, params_key, activation, per_group, _keep_flag = inputs
    ctx.save_for_backward(input, target, mask, output[1], output[2])
    ctx.params_key, ctx.activation, ctx.per_group = params_key, activation, per_group


@torch.library.custom_op("exactdice::soft_loss_backward", mutates_args=())
def _soft_loss_backward(
    grad_loss: torch.Tensor,
    input: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor],
    stats: torch.Tensor,
    token: torch.Tensor,
    params_key: int,
    activation: str,
    per_group: bool,
) -> torch.Tensor:
    """`∂loss/∂input` times `grad_loss`, from the statistics the forward scored with (an
    operator of its own, so that torch.compile traces the backward without looking inside)."""
    params = _PARAMS[params_key]
    _native.set_threads(torch.get_num_threads())
    if per_group:
        up = _np(grad_loss.to(torch.float64), "grad_output")
    else:
        up = float(grad_loss)
    args = (
        params,
        _np(input, "input"),
        _np(target, "target"),
        _np(stats, "stats"),
        up,
        _act_name(activation),
        None if mask is None else _np(mask, "mask"),
    )
    probs = _KEPT.pop(int(token), None)
    if probs is not None:
        # The kept probabilities become the gradient in place (a second backward, with
        # retain_graph, finds them gone and recomputes them).
        _native.soft_gradient(*args, probs.numpy())
        return probs
    return torch.from_numpy(_native.soft_gradient(*args))


@_soft_loss_backward.register_fake
def _(grad_loss, input, target, mask, stats, token, params_key, activation, per_group):
    return input.new_empty(input.shape)


def _backward(ctx, grad_loss, _grad_stats, _grad_token):
    input, target, mask, stats, token = ctx.saved_tensors
    g = torch.ops.exactdice.soft_loss_backward(
        grad_loss, input, target, mask, stats, token, ctx.params_key, ctx.activation, ctx.per_group
    )
    return g, None, None, None, None, None, None, None


_soft_loss.register_autograd(_backward, setup_context=_setup)


def _weights(weight) -> Optional[list]:
    if weight is None:
        return None
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().cpu().tolist()
    if isinstance(weight, (int, float)):
        return [float(weight)]  # expanded to every channel at the first call
    return [float(w) for w in weight]


class _SoftLoss(_Loss):
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
        process_group=None,
        **score_args,
    ):
        super().__init__(reduction=getattr(reduction, "value", reduction))
        self.process_group = process_group
        # Tests run the device path on CPU to check it against the core.
        self._force_torch = False
        # Values outside [0, 1] without an activation: warned about (False) or not (True: the
        # compound losses, whose Dice term MONAI runs on raw logits, and after one warning).
        self._raw_values = False
        if other_act is not None and not callable(other_act):
            raise TypeError(f"other_act must be None or callable but is {type(other_act).__name__}.")
        if int(sigmoid) + int(softmax) + int(other_act is not None) > 1:
            raise ValueError(
                "Incompatible values: more than 1 of [sigmoid=True, softmax=True, other_act is not None]."
            )
        self.other_act = other_act
        reduction = getattr(reduction, "value", reduction)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f'Unsupported reduction: {reduction}, available options are ["mean", "sum", "none"].')
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.activation = "sigmoid" if sigmoid else "softmax" if softmax else "none"
        self.reduction = reduction
        self.batch = batch
        self.ignore_index = ignore_index
        self._weight = _weights(weight)
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

    def __prepare_scriptable__(self):
        raise RuntimeError(
            f"exactdice's {type(self).__name__} cannot be compiled by torch.jit.script (TorchScript "
            "does not run Python callables or custom Python operators' autograd); use it eagerly, "
            "under torch.compile, or in torch.export"
        )

    def _channel_weights(self, channels: int, include_background: bool) -> Optional[list]:
        """One weight per channel (the core's form) from MONAI's ``weight``: one value for
        every class, or one per class left after dropping the background (which gets 0)."""
        w = self._weight
        if channels - (0 if include_background else 1) == 1:
            return None  # MONAI applies no class weight to a single scored class
        if w is not None:
            if len(w) == 1:
                w = w * channels
            elif not include_background and len(w) == channels - 1:
                w = [0.0] + w
        return w

    # Run at trace time under torch.compile (the result is a constant of the module), so that
    # building the native parameters never breaks the graph.
    @torch._dynamo.assume_constant_result
    def _key(self, channels: int, include_background: bool) -> int:
        k = (channels, include_background)
        if k not in self._keys:
            self._keys[k] = _register(
                _native.LossParams(
                    include_background=include_background,
                    weight=self._channel_weights(channels, include_background),
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
        outside = False
        if self.other_act is not None:
            # MONAI's order: the caller's activation, with autograd, then the loss on its output.
            input = self.other_act(input)
            if input.dtype not in (torch.float32, torch.float64):
                input = input.float()
            # Outside [0, 1] (or NaN) the core refuses the values as probabilities.
            outside = not bool(torch.all((input >= 0) & (input <= 1)))
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
                raise ShapeMismatchError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
                )
            if target.is_floating_point():
                if bool(torch.any(target != torch.round(target))):
                    raise ValueError("to_onehot_y=True: the label map holds non-integer values")
                target = target.to(torch.int64)
            elif target.dtype not in (torch.uint8, torch.int32, torch.int64):
                target = target.to(torch.int64)
        else:
            if self.ignore_index is not None and target.dim() == input.dim():
                target, ignored = _ignored_voxels(target, self.ignore_index)
                keep = ~ignored
                mask = keep if mask is None else (mask.reshape(keep.shape) != 0) & keep
            if tuple(target.shape) != tuple(input.shape):
                raise ShapeMismatchError(
                    f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
                )
            target = target.to(input.dtype)
        key = self._key(c, include_background)
        per_group = self.reduction == "none"
        m = None
        if mask is not None:
            m = (mask.reshape(n, -1) != 0).to(torch.uint8)
        if input.device.type != "cpu" or self._force_torch or outside:
            if self.process_group is not None:
                raise NotImplementedError(
                    "process_group runs on CPU tensors of probabilities in this release"
                )
            loss = self._closed_form(input, target, m, include_background, act, labels)
        elif self.process_group is None:
            # Keep the activation's output for backward only when one will run.
            keep = input.requires_grad and torch.is_grad_enabled()
            try:
                loss = torch.ops.exactdice.soft_loss(input, target, m, None, key, act, per_group, keep)[0]
            except ValueError as e:
                # Without an activation MONAI scores any values (raw logits inside DiceCELoss,
                # say); the core refuses non-probabilities, so such inputs take the closed form
                # in torch operations, as other_act's outputs outside [0, 1] do. A loss of its
                # own warns once (logits passed as probabilities are a common mistake).
                if act != "none" or "outside [0, 1]" not in str(e):
                    raise
                if not self._raw_values:
                    warnings.warn(
                        f"{type(self).__name__}: the input holds values outside [0, 1] and no "
                        "activation is set; they are scored as given, as MONAI does (pass "
                        "sigmoid=True or softmax=True if they are logits)",
                        stacklevel=2,
                    )
                    self._raw_values = True  # warned once
                loss = self._closed_form(input, target, m, include_background, act, labels)
        else:
            loss = self._distributed(input, target, m, key, act, per_group)
        if per_group:
            groups = loss
            return groups.reshape(self._none_shape(n, c if include_background else c - 1, len(spatial)))
        return loss


    def _none_shape(self, n: int, classes: int, spatial_dims: int) -> list:
        """MONAI's shape of ``reduction="none"``: ``[N, C, 1, …]`` (``[C, 1, …]`` with batch)."""
        return ([classes] if self.batch else [n, classes]) + [1] * spatial_dims

    def _closed_form(self, x, target, mask, include_background, act, labels):
        """The loss as torch operations on the tensors' device (CUDA): the core's closed form
        (statistics in float64, the same scores, policies and reductions), differentiated by
        autograd. Checked against the core on CPU to 1e-12 in float64 (`test_device_path`)."""
        a, f64 = self._args, torch.float64
        n, c = x.shape[0], x.shape[1]
        z = x.reshape(n, c, -1).to(f64)
        p = torch.softmax(z, 1) if act == "softmax" else torch.sigmoid(z) if act == "sigmoid" else z
        valid = torch.ones((n, 1, z.shape[-1]), dtype=torch.bool, device=x.device)
        if labels:
            t = target.reshape(n, -1).to(torch.int64)
            if self.ignore_index is not None:
                keep = t != self.ignore_index
                valid = valid & keep[:, None]
                t = torch.where(keep, t, torch.zeros_like(t))
            if bool(torch.any((t < 0) | (t >= c))):
                raise ValueError(f"target holds a label outside 0..{c - 1}")
            g = torch.nn.functional.one_hot(t, c).movedim(-1, 1).to(f64)
        else:
            g = target.reshape(n, c, -1).to(f64)
        if mask is not None:
            valid = valid & (mask.reshape(n, 1, -1) != 0)
        v = valid.to(f64)
        score = a["score"]
        squared = a.get("squared_pred", False) and score in ("dice", "jaccard")
        soft = a["soft_label"] and not squared
        pv, gv = p * v, g * v
        sums = [(pv * pv if squared else pv).sum(-1), (gv * gv if squared else gv).sum(-1)]
        sums.append(((p - g).abs() * v).sum(-1) if soft else (pv * gv).sum(-1))
        if self.batch:
            sums = [s.sum(0, keepdim=True) for s in sums]
        P, G, third = sums
        I = torch.clamp(0.5 * (P + G - third), min=0.0) if soft else third
        if not include_background:
            P, G, I = P[:, 1:], G[:, 1:], I[:, 1:]
        snr, sdr = a["smooth_nr"], a["smooth_dr"]
        if score == "generalized":
            w_type = a["w_type"]
            present = G > 0
            safe_g = torch.where(present, G, torch.ones_like(G))
            w = {"square": 1 / (safe_g * safe_g), "simple": 1 / safe_g, "uniform": torch.ones_like(G)}[w_type]
            if w_type != "uniform":
                fill = torch.where(present, w, torch.zeros_like(w)).amax(1, keepdim=True)
                none = torch.zeros_like(fill) if getattr(self, "all_absent", "") == "zero" else torch.ones_like(fill)
                fill = torch.where(present.any(1, keepdim=True), fill, none)
                w = torch.where(present, w, fill)
            num = 2 * (w * I).sum(1) + snr
            den = (w * (P + G)).sum(1) + sdr
            class_w = None
        else:
            if score == "dice":
                num, den = 2 * I + snr, P + G + sdr
            elif score == "jaccard":
                num, den = 2 * I + snr, 2 * (P + G - I) + sdr
            else:
                al, be = a["alpha"], a["beta"]
                num, den = I + snr, I + al * (P - I) + be * (G - I) + sdr
            class_w = None
            w_list = self._channel_weights(c, include_background)
            if w_list is not None:
                class_w = torch.tensor(w_list, dtype=f64, device=x.device)
                class_w = class_w if include_background else class_w[1:]
        zero = den == 0
        sc = torch.where(zero, torch.ones_like(num), num / torch.where(zero, torch.ones_like(den), den))
        form = a.get("form", "one_minus")
        loss = {"one_minus": lambda s: 1 - s, "negative": lambda s: -s, "neg_log": lambda s: -torch.log(s)}[form](sc)
        gamma = a.get("gamma", 1.0)
        if gamma != 1.0:
            loss = torch.clamp(loss, min=0.0) ** gamma
        if class_w is not None:
            loss = loss * class_w
        loss = loss.reshape(-1)
        if self.reduction == "mean":
            loss = loss.mean()
        elif self.reduction == "sum":
            loss = loss.sum()
        return loss.to(x.dtype)

    def _distributed(self, input, target, mask, key, act, per_group):
        """The loss over every rank's batch; each rank's gradient is that of the global loss
        with respect to its own input.

        ``batch=True``: the statistics are all-reduced (summed) before scoring, so value and
        gradient are those of the union. ``batch=False``: every rank's per-sample statistics
        are gathered to score the global reduction; the local gradient is scaled by the share
        of defined groups (``mean``) or kept (``sum``; ``none`` returns the local groups).
        Every rank must hold the same number of samples (as ``DistributedSampler`` gives).
        """
        import torch.distributed as dist

        group = None if self.process_group is True else self.process_group
        params = _PARAMS[key]
        n, c = input.shape[0], input.shape[1]
        sizes = torch.tensor([n, -n], dtype=torch.int64)
        dist.all_reduce(sizes, op=dist.ReduceOp.MAX, group=group)
        if int(sizes[0]) != n or int(-sizes[1]) != n:
            raise ValueError(
                f"process_group: ranks hold different batch sizes ({int(-sizes[1])} to "
                f"{int(sizes[0])} samples); use DistributedSampler (equal shares)"
            )
        local = torch.from_numpy(
            _native.soft_statistics(
                params,
                _np(input, "input"),
                _np(target, "target"),
                _act_name(act),
                None if mask is None else _np(mask, "mask"),
            )
        )
        if self.batch:
            summed = local.clone()
            dist.all_reduce(summed, group=group)
            return torch.ops.exactdice.soft_loss(input, target, mask, summed, key, act, per_group)[0]
        loss = torch.ops.exactdice.soft_loss(input, target, mask, local, key, act, per_group)[0]
        if per_group:
            return loss
        world = dist.get_world_size(group)
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local, group=group)
        value, _, defined, _ = _native.soft_loss(params, torch.cat(parts).numpy(), n * world, c)
        _, _, defined_here, _ = _native.soft_loss(params, local.numpy(), n, c)
        scale = 1.0
        if self.reduction == "mean":
            scale = defined_here / defined if defined else 0.0
        scaled = loss * scale
        return scaled + (torch.tensor(value, dtype=loss.dtype) - scaled.detach())


def _ignored_voxels(target: torch.Tensor, ignore_index: int):
    """MONAI 1.6's ``ignore_index`` on a target of the input's rank: the target with ignored
    voxels set to 0, and which voxels ``[N, …]`` are ignored. One channel (a label or binary
    map): voxels holding ``ignore_index``. One-hot (``C > 1``): with ``0 ≤ ignore_index < C``
    the voxels of that class, otherwise (a sentinel) the voxels where no channel is set. MONAI
    multiplies by ``1 − y[:, ignore_index]``, which for soft targets weighs voxels by it; here a
    voxel is ignored where that channel is nonzero (the same for binary targets)."""
    if target.shape[1] == 1:
        ignored = target[:, 0] == ignore_index
        target = torch.where(ignored[:, None], torch.zeros_like(target), target)
    elif 0 <= ignore_index < target.shape[1]:
        ignored = target[:, ignore_index] != 0
    else:
        ignored = ~(target.sum(1) > 0)
    return target, ignored


class DiceLoss(_SoftLoss):
    """MONAI's ``DiceLoss``: ``1 - (2·Σp·g + smooth_nr) / (Σp + Σg + smooth_dr)`` per sample and
    class (per class with ``batch=True``), reduced by ``reduction``. ``squared_pred`` uses
    ``Σp²``, ``Σg²``; ``jaccard`` scores ``I / (P + G - I)``; ``weight`` multiplies each class's
    loss (one value, or one per class left after ``include_background``); ``soft_label`` uses
    the intersection ``(P + G - Σ|p - g|)/2``, the right one for soft targets.

    ``ignore_index`` (MONAI 1.6's meaning): with ``to_onehot_y``, voxels holding that label; with
    a target of the input's shape, a one-channel map's voxels holding it, or in one-hot targets
    the voxels of class ``ignore_index`` (or, for a value outside ``0..C-1``, the voxels with no
    class set). Ignored voxels leave every sum, as MONAI's masking makes them.

    At ``p == g`` exactly, ``soft_label``'s intersection has a kink. MONAI's gradient there is
    PyTorch's ``sign(0) = 0`` subgradient of ``|p - g|``, i.e. ``∂I/∂p = ½``; ours takes ``g``
    (also a subgradient), so that binary targets give the classic ``Σp·g`` gradient everywhere
    and ``soft_label=True`` changes nothing for them, as it changes nothing in the value. Both
    are valid subgradients; they differ only on that measure-zero set."""

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
        process_group=None,
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
            process_group,
            squared_pred=squared_pred,
        )


class GeneralizedDiceLoss(_SoftLoss):
    """MONAI's ``GeneralizedDiceLoss`` (Sudre et al. 2017): class weights ``1/G²``
    (``w_type="square"``), ``1/G`` (``"simple"``) or ``1`` (``"uniform"``); an absent class
    takes the largest weight of the present ones, as MONAI does. ``w_func(G)`` gives the
    weights before that fill, as MONAI's method does.

    Difference on purpose: when *no* class is present in a group (an empty target), MONAI's
    weights are all 0, so its loss is ``1 - smooth_nr/smooth_dr`` (0 by default) and its
    gradient 0 whatever the prediction: an empty patch teaches nothing, not even to predict
    nothing. Ours gives every class weight 1 there, so predicting background-free output is
    penalised. ``all_absent="zero"`` (last) gives MONAI's weights (computed in torch
    operations, differentiated by autograd); the default is ``"uniform"``."""

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
        process_group=None,
        all_absent: str = "uniform",
    ) -> None:
        if all_absent not in ("uniform", "zero"):
            raise ValueError(f'all_absent must be "uniform" or "zero", not {all_absent!r}')
        self.all_absent = all_absent
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
            process_group=process_group,
            w_type=getattr(w_type, "value", w_type),
        )
        self.w_type = getattr(w_type, "value", w_type)
        self._force_torch = all_absent == "zero"

    def w_func(self, grnd: torch.Tensor) -> torch.Tensor:
        """MONAI's class weights of the target sums ``grnd`` (``inf`` where a class is absent,
        before the fill the class doc describes)."""
        if self.w_type == "simple":
            return torch.reciprocal(grnd)
        if self.w_type == "square":
            return torch.reciprocal(grnd * grnd)
        return torch.ones_like(grnd)

    def _none_shape(self, n, classes, spatial_dims):
        return ([1] if self.batch else [n, 1]) + [1] * spatial_dims  # one loss per sample


class TverskyLoss(_SoftLoss):
    """MONAI's ``TverskyLoss``: ``1 - (I + smooth_nr) / (I + α·FP + β·FN + smooth_dr)`` with
    ``FP = Σp·(1-g)`` and ``FN = Σ(1-p)·g``. ``gamma`` (not in MONAI; last, default 1) makes it
    the focal Tversky loss ``max(1 - T, 0)^gamma`` per group (Abraham & Khan 2019)."""

    def _none_shape(self, n, classes, spatial_dims):
        return [classes] if self.batch else [n, classes]  # MONAI's TverskyLoss does not broadcast

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
        process_group=None,
        gamma: float = 1.0,
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
            process_group=process_group,
            alpha=float(alpha),
            beta=float(beta),
            gamma=float(gamma),
        )


# --- Compound losses: Dice plus cross-entropy or focal, fused over the logits by dice-core ---


@torch.library.custom_op("exactdice::compound_loss", mutates_args=())
def _compound_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    params_key: int,
    term_key: int,
    keep: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``λ_dice·L_dice + λ_term·L_term`` of the logits ``input`` and, when ``keep``, its
    gradient with respect to them (computed in the same call: dice-core's two fused passes);
    an empty tensor otherwise. The two terms are combined in the input's dtype, as MONAI's
    ``self.lambda_dice * dice_loss + self.lambda_ce * ce_loss`` combines them."""
    params, term = _PARAMS[params_key], _PARAMS[term_key]
    _native.set_threads(torch.get_num_threads())
    x, t = _np(input, "input"), _np(target, "target")
    grad = _huge_pages(torch.empty(input.shape, dtype=input.dtype)) if keep else input.new_empty((0,))
    dice, voxel = _native.compound_loss(
        params, term["activation"], term["kind"], term["lambda_dice"], term["lambda_term"], x, t,
        term_weight=term["weight"], label_smoothing=term["label_smoothing"], gamma=term["gamma"],
        alpha=term["alpha"], gradient=grad.numpy() if keep else None,
    )
    d = torch.tensor(dice, dtype=input.dtype)
    v = torch.tensor(voxel, dtype=input.dtype)
    return term["lambda_dice"] * d + term["lambda_term"] * v, grad


@_compound_loss.register_fake
def _(input, target, params_key, term_key, keep):
    return input.new_empty(()), input.new_empty(tuple(input.shape) if keep else (0,))


def _compound_setup(ctx, inputs, output):
    ctx.save_for_backward(output[1])


def _compound_backward(ctx, grad_value, _grad_grad):
    (grad,) = ctx.saved_tensors
    if grad.numel() == 0:
        raise RuntimeError("exactdice: the compound loss was computed without its gradient (no_grad)")
    return grad * grad_value.to(grad.dtype), None, None, None, None


_compound_loss.register_autograd(_compound_backward, setup_context=_compound_setup)


def _sigmoid_focal(input, target, gamma, alpha):
    """MONAI's ``sigmoid_focal_loss`` per element, in the same torch operations (the path for
    inputs the fused kernel does not take: reduction ``none``, other devices, raw Dice)."""
    loss = input - input * target - torch.nn.functional.logsigmoid(input)
    invprobs = torch.nn.functional.logsigmoid(-input * (target * 2 - 1))
    loss = (invprobs * gamma).exp() * loss
    if alpha is not None:
        loss = (target * alpha + (1 - target) * (1 - alpha)) * loss
    return loss


def _check_compound_shapes(input, target):
    """MONAI's checks of ``DiceCELoss.forward`` and ``DiceFocalLoss.forward`` (their messages)."""
    if input.dim() != target.dim():
        raise ValueError(
            "the number of dimensions for input and target should be the same, "
            f"got shape {tuple(input.shape)} (nb dims: {input.dim()}) and {tuple(target.shape)} "
            f"(nb dims: {target.dim()}). if target is not one-hot encoded, please provide a tensor "
            "with shape B1H[WD]."
        )
    if target.shape[1] != 1 and target.shape[1] != input.shape[1]:
        raise ValueError(
            "number of channels for target is neither 1 (without one-hot encoding) nor the same as input, "
            f"got shape {tuple(input.shape)} and {tuple(target.shape)}."
        )


def _dice_term(*args) -> "DiceLoss":
    """The Dice term of a compound loss: ``DiceLoss(*args)`` (its positional order), scoring
    raw values without a warning when no activation is set, as MONAI's compound losses do."""
    dice = DiceLoss(*args)
    dice._raw_values = True
    return dice


def _check_lambdas(**lambdas) -> None:
    for name, value in lambdas.items():
        if value < 0.0:
            raise ValueError(f"{name} should be no less than 0.0.")


class _CompoundLoss(_Loss):
    """The shared forward of ``DiceCELoss`` and ``DiceFocalLoss``: ``self.dice`` is this
    package's ``DiceLoss`` (dice-core: exact statistics, closed-form gradient) and the voxel term
    torch's, composed as MONAI composes them. With ``fused=True``, where the Dice term applies
    ``sigmoid`` or ``softmax`` to CPU logits (reduction ``mean`` or ``sum``), both terms and the
    gradient come from one call into dice-core's fused kernel instead: no probability tensor and
    no autograd graph are kept (the memory of one gradient), but today it is slower than the
    composed path (``benches/python_compound.py``: DiceCELoss [2, 4, 128³] fwd+bwd on one
    thread 315 ms fused against 164 ms composed, DiceFocalLoss 3.2 s against 1.5 s, AMD EPYC
    Zen 5), so it is off by default."""

    __prepare_scriptable__ = _SoftLoss.__prepare_scriptable__

    def _term_key(self, channels: int) -> int:
        k = ("term", channels)
        if k not in self._keys:
            self._keys[k] = _register(self._term(channels))
        return self._keys[k]

    def _fused_target(self, input, target):
        """The target as the fused call takes it (a label map ``[N, …]`` or dense values of
        the input's dtype), or None where the composed path must run (it also raises MONAI's
        errors)."""
        d = self.dice
        n, c = input.shape[0], input.shape[1]
        if (
            not self.fused
            or input.device.type != "cpu"
            or d.other_act is not None
            or d.activation == "none"
            or (d.activation == "softmax" and c < 2)
            or self.reduction not in ("mean", "sum")
            or d._force_torch
            or input.dtype not in (torch.float32, torch.float64)
        ):
            return None
        if self.to_onehot_y and c > 1:
            if target.shape[1] != 1 or target.shape[2:] != input.shape[2:]:
                return None
            t = target[:, 0]
            if t.is_floating_point():
                if bool(torch.any(t != torch.round(t))):
                    return None
                t = t.to(torch.int64)
            elif t.dtype not in (torch.uint8, torch.int32, torch.int64):
                t = t.to(torch.int64)
            return t
        if tuple(target.shape) != tuple(input.shape):
            return None
        return target.to(input.dtype)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_compound_shapes(input, target)
        t = self._fused_target(input, target)
        if t is None:
            return self._composed(input, target)
        c = input.shape[1]
        key = self.dice._key(c, self.dice.include_background if c > 1 else True)
        keep = input.requires_grad and torch.is_grad_enabled()
        return torch.ops.exactdice.compound_loss(input, t, key, self._term_key(c), keep)[0]


class DiceCELoss(_CompoundLoss):
    """MONAI's ``DiceCELoss``: ``lambda_dice·DiceLoss + lambda_ce·CE``, same arguments.

    The cross-entropy is ``torch.nn.CrossEntropyLoss(weight, label_smoothing)`` over the logits
    for ``C ≥ 2`` (with the label map for ``to_onehot_y=True``, else the dense target as class
    probabilities) and ``BCEWithLogitsLoss(pos_weight=weight)`` for one channel, as MONAI; the
    Dice term is this package's ``DiceLoss`` (``weight`` without the background's entry when
    ``include_background=False``, as MONAI passes it). ``fused=True`` (last, ours): dice-core's
    fused kernel for both terms (statistics and CE sums in float64; the two reduced terms
    combined in the input's dtype as MONAI does); see ``_CompoundLoss`` for when it pays."""

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
        weight: Optional[torch.Tensor] = None,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        label_smoothing: float = 0.0,
        fused: bool = False,
    ) -> None:
        reduction = getattr(reduction, "value", reduction)
        if reduction not in ("mean", "sum"):
            raise ValueError(f"Unsupported option: {reduction}, available options are ['mean', 'sum'].")
        super().__init__(reduction=reduction)
        if weight is not None and not isinstance(weight, torch.Tensor):
            weight = torch.as_tensor(weight, dtype=torch.float32)
        dice_weight = weight[1:] if (weight is not None and not include_background) else weight
        self.dice = _dice_term(
            include_background, to_onehot_y, sigmoid, softmax, other_act, squared_pred, jaccard,
            reduction, smooth_nr, smooth_dr, batch, dice_weight,
        )
        self.cross_entropy = torch.nn.CrossEntropyLoss(weight=weight, reduction=reduction, label_smoothing=label_smoothing)
        self.binary_cross_entropy = torch.nn.BCEWithLogitsLoss(pos_weight=weight, reduction=reduction)
        _check_lambdas(lambda_dice=lambda_dice, lambda_ce=lambda_ce)
        self.lambda_dice = float(lambda_dice)
        self.lambda_ce = float(lambda_ce)
        self.label_smoothing = float(label_smoothing)
        self.to_onehot_y = to_onehot_y
        self.fused = fused
        self._weight = _weights(weight)
        self._keys: dict = {}

    def _term(self, channels: int) -> dict:
        w = self._weight
        if w is not None and len(w) == 1 and channels > 1:
            w = w * channels
        return dict(
            activation=self.dice.activation,
            kind="ce",
            lambda_dice=self.lambda_dice,
            lambda_term=self.lambda_ce,
            weight=w,
            label_smoothing=self.label_smoothing,
            gamma=0.0,
            alpha=None,
        )

    def ce(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MONAI's ``DiceCELoss.ce``: ``CrossEntropyLoss`` with a label map ``[N, 1, …]`` or
        class probabilities of the input's shape."""
        if input.shape[1] != target.shape[1] and target.shape[1] == 1:
            target = torch.squeeze(target, dim=1).long()
        elif not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return self.cross_entropy(input, target)

    def bce(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MONAI's ``DiceCELoss.bce`` (one channel)."""
        if not torch.is_floating_point(target):
            target = target.to(dtype=input.dtype)
        return self.binary_cross_entropy(input, target)

    def _composed(self, input, target):
        dice_loss = self.dice(input, target)
        ce_loss = self.ce(input, target) if input.shape[1] != 1 else self.bce(input, target)
        return self.lambda_dice * dice_loss + self.lambda_ce * ce_loss


class DiceFocalLoss(_CompoundLoss):
    """MONAI's ``DiceFocalLoss``: ``lambda_dice·DiceLoss + lambda_focal·FocalLoss``, same
    arguments. The focal term is MONAI's sigmoid focal loss over the logits
    (``gamma``, ``alpha``, ``weight`` per class left after ``include_background``); the Dice term
    is this package's ``DiceLoss`` with ``weight``. ``fused=True`` (last, ours): dice-core's fused
    kernel for both terms (a label map is never expanded to one-hot there; see
    ``_CompoundLoss``); ``reduction="none"`` returns, as MONAI, the Dice term ``[N, C, 1, …]``
    broadcast onto the focal term ``[N, C, …]``."""

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
        gamma: float = 2.0,
        weight: Union[Sequence[float], float, int, torch.Tensor, None] = None,
        lambda_dice: float = 1.0,
        lambda_focal: float = 1.0,
        alpha: Optional[float] = None,
        fused: bool = False,
    ) -> None:
        super().__init__(reduction=getattr(reduction, "value", reduction))
        # MONAI's DiceFocalLoss expands a label map for both terms; our Dice term takes the map
        # itself (the same Dice, without the one-hot), only the focal term gets it expanded.
        self.dice = _dice_term(
            include_background, to_onehot_y, sigmoid, softmax, other_act, squared_pred, jaccard,
            reduction, smooth_nr, smooth_dr, batch, weight,
        )
        _check_lambdas(lambda_dice=lambda_dice, lambda_focal=lambda_focal)
        if alpha is not None and not (0.0 <= float(alpha) <= 1.0):
            raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
        self.include_background = include_background
        self.to_onehot_y = to_onehot_y
        self.fused = fused
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)
        self.lambda_dice = float(lambda_dice)
        self.lambda_focal = float(lambda_focal)
        self._weight = _weights(weight)
        self._keys: dict = {}

    def _focal_weights(self, channels: int) -> Optional[list]:
        """One weight per channel from MONAI's ``weight`` (one value for all, or one per class
        left after ``include_background``; the background's unused entry is 0)."""
        w = self._weight
        if w is None:
            return None
        if len(w) == 1:
            return w * channels
        if not self.include_background and len(w) == channels - 1:
            return [0.0] + w
        if len(w) != channels:
            raise ValueError(
                f"The number of class_weight ({len(w)}) must match the number of output channels "
                f"({channels if self.include_background else channels - 1})."
            )
        return w

    def _term(self, channels: int) -> dict:
        return dict(
            activation=self.dice.activation,
            kind="focal",
            lambda_dice=self.lambda_dice,
            lambda_term=self.lambda_focal,
            weight=self._focal_weights(channels),
            label_smoothing=0.0,
            gamma=self.gamma,
            alpha=self.alpha,
        )

    def _composed(self, input, target):
        c = input.shape[1]
        dice_loss = self.dice(input, target)
        if self.to_onehot_y and c > 1:
            labels = target[:, 0].long()
            target = torch.nn.functional.one_hot(labels, c).movedim(-1, 1).to(input.dtype)
        x, t = input.float(), target.float()
        first = 1 if (not self.include_background and c > 1) else 0
        x, t = x[:, first:], t[:, first:]
        if t.shape != x.shape:
            raise ShapeMismatchError(
                f"ground truth has different shape ({tuple(target.shape)}) from input ({tuple(input.shape)})"
            )
        loss = _sigmoid_focal(x, t, self.gamma, self.alpha)
        w = self._focal_weights(c)
        if w is not None:
            cw = torch.tensor(w[first:], dtype=loss.dtype, device=loss.device)
            loss = loss * cw.view([1, -1] + [1] * (loss.dim() - 2))
        if self.reduction == "sum":
            focal_loss = loss.mean(dim=list(range(2, loss.dim()))).sum()
        elif self.reduction == "mean":
            focal_loss = loss.mean()
        else:
            focal_loss = loss
        return self.lambda_dice * dice_loss + self.lambda_focal * focal_loss


class DiceMetric:
    """MONAI's ``DiceMetric``: hard Dice per case and class from exact counts (dice-core).

    Call it on batches (``metric(y_pred, y)``), then ``aggregate()``, ``reset()``. Inputs are
    binarized one-hot ``[B, C, ...]`` tensors, or label maps ``[B, 1, ...]`` (or ``[B, ...]``)
    with ``num_classes`` (counted in one pass, never expanded). ``ignore_empty=True`` (MONAI's
    default) gives NaN where the reference of a class is empty; ``False`` gives 1 when both are
    empty and 0 when only the reference is. ``reduction``: ``mean``, ``sum``, ``mean_batch``,
    ``sum_batch``, ``mean_channel``, ``sum_channel``, ``none``, as MONAI defines them (``mean`` is
    the mean over cases of each case's mean over its defined classes); NaN values are left out
    of means and sums, and ``get_not_nans=True`` also returns how many values were defined.

    Across data-parallel ranks, pass ``case_index`` (one integer per case of the batch) to
    ``__call__`` and ``process_group=True`` (or a group) here: ``aggregate()`` gathers every
    rank's counts and keeps each case once, so the cases ``DistributedSampler`` repeats to even
    out the ranks are not counted twice.

    Counting runs on the CPU: tensors on another device are copied to the host once; results
    come back as MONAI's do, float32 on the inputs' device. ``get_buffer()`` gives every case's
    Dice so far; ``extend``/``append`` add Dice values computed elsewhere; ``return_with_label``
    as MONAI. Difference on purpose: ``per_component`` is refused (use ``LesionWiseMetric``
    or ``dice eval --lesion-wise``).
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: str = "mean",
        get_not_nans: bool = False,
        ignore_empty: bool = True,
        num_classes: Optional[int] = None,
        return_with_label=False,
        per_component: bool = False,
        ignore_index: Optional[int] = None,
        process_group=None,
    ) -> None:
        if per_component:
            raise ValueError("per_component is not supported: use dice eval --lesion-wise")
        self.return_with_label = return_with_label
        reduction = getattr(reduction, "value", reduction)
        allowed = ("mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none")
        if reduction not in allowed:
            raise ValueError(f"Unsupported reduction: {reduction}, available options are {list(allowed)}.")
        self.include_background = include_background
        self.reduction = reduction
        self.get_not_nans = get_not_nans
        self.ignore_empty = ignore_empty
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.process_group = process_group
        self.reset()

    def reset(self) -> None:
        self._counts: list = []
        self._cases: list = []
        self._values: list = []
        self._device = torch.device("cpu")

    def extend(self, *data) -> None:
        """Adds batches of Dice values ``[B, C]`` computed elsewhere (MONAI's ``extend``); they
        join ``get_buffer()`` and ``aggregate()`` after the cases counted here."""
        for d in data:
            d = torch.as_tensor(d)
            if d.dim() != 2:
                raise ValueError(f"extend takes Dice values [B, C], got shape {tuple(d.shape)}")
            self._values.append(d.detach().to(torch.float64).cpu())

    def append(self, *data) -> None:
        """Adds single cases' Dice values ``[C]`` (MONAI's ``append``)."""
        for d in data:
            self.extend(torch.as_tensor(d)[None])

    def _confusion(self, y_pred: torch.Tensor, y: torch.Tensor):
        import exactdice as ed

        if y_pred.shape[0] != y.shape[0]:
            raise ValueError(f"y_pred has {y_pred.shape[0]} cases and y {y.shape[0]}")
        labels = self.num_classes is not None and (y_pred.dim() < 2 or y_pred.shape[1] == 1)
        if labels:
            p = y_pred.reshape(y_pred.shape[0], -1)
            g = y.reshape(y.shape[0], -1)
            if p.is_floating_point() or g.is_floating_point():
                if bool(torch.any(p != torch.round(p))) or bool(torch.any(g != torch.round(g))):
                    raise ValueError("label maps must hold integers")
                p, g = p.to(torch.int64), g.to(torch.int64)
            c = ed.confusion(
                _np(p.cpu(), "y_pred"),
                _np(g.cpu(), "y"),
                num_classes=self.num_classes,
                ignore_label=self.ignore_index,
                batch=True,
            ).counts
        else:
            if y_pred.shape != y.shape:
                raise ValueError(
                    f"y_pred and y should have same shapes, got {tuple(y_pred.shape)} and {tuple(y.shape)}"
                )
            dt = torch.float64 if y_pred.dtype == torch.float64 else torch.float32
            y_pred, y = y_pred.to(dt), y.to(dt)
            if self.ignore_index is not None:
                # MONAI 1.6's mask (see _ignored_voxels): ignored voxels are set to 0 in both,
                # so they leave TP, FP and FN (only TN, which Dice does not use, counts them).
                y, ignored = _ignored_voxels(y, self.ignore_index)
                keep = (~ignored)[:, None].to(dt)
                y_pred, y = y_pred * keep, y * keep
            c = ed.confusion(
                _np(y_pred.cpu(), "y_pred"), _np(y.cpu(), "y"), threshold=0.5, batch=True
            ).counts
        if not self.include_background:
            c = c[:, 1:]
        return c

    def __call__(self, y_pred, y, case_index=None) -> torch.Tensor:
        """The Dice of each case and class of this batch ``[B, C]``, kept for ``aggregate``;
        float32 on ``y_pred``'s device, as MONAI returns it (the counts behind it are exact).

        ``y_pred`` and ``y`` are batches ``[B, C, ...]`` (or label maps, see the class doc), or,
        as in MONAI's validation loop (``metric(y_pred=[post_pred(i) for i in
        decollate_batch(out)], y=[...])``), lists of single cases without the batch dimension,
        which may differ in size.
        """
        if isinstance(y_pred, (list, tuple)) or isinstance(y, (list, tuple)):
            if not isinstance(y_pred, (list, tuple)) or not isinstance(y, (list, tuple)):
                raise ValueError("y_pred and y must both be lists (decollated cases) or both tensors")
            if len(y_pred) != len(y):
                raise ValueError(f"y_pred holds {len(y_pred)} cases and y {len(y)}")
            if not y_pred:
                raise ValueError("y_pred and y are empty lists")
            items = [(torch.as_tensor(p), torch.as_tensor(t)) for p, t in zip(y_pred, y)]
            c = np.concatenate([self._confusion(p[None], t[None]) for p, t in items])
            device = items[0][0].device
        else:
            c = self._confusion(y_pred, y)
            device = y_pred.device
        self._device = device
        if case_index is not None:
            ids = [int(i) for i in torch.as_tensor(case_index).reshape(-1).tolist()]
            if len(ids) != c.shape[0]:
                raise ValueError(f"case_index holds {len(ids)} values for {c.shape[0]} cases")
        else:
            ids = [None] * c.shape[0]
        self._counts.append(c)
        self._cases.extend(ids)
        return self._as_result(torch.from_numpy(self._scores(c)))

    def _as_result(self, t: torch.Tensor) -> torch.Tensor:
        """A result as MONAI gives it: float32, on the device of the inputs."""
        return t.to(device=self._device, dtype=torch.float32)

    def get_buffer(self) -> Optional[torch.Tensor]:
        """The Dice of every case seen so far ``[cases, C]`` (MONAI's ``get_buffer``), or None
        before the first call."""
        if not self._counts and not self._values:
            return None
        return self._as_result(self._all_scores())

    def _all_scores(self) -> torch.Tensor:
        """The Dice of every case counted here, then of every value added by ``extend``."""
        parts = [torch.from_numpy(self._scores(self._all_counts()))] if self._counts else []
        if self._values and self.process_group is not None:
            raise ValueError("values added by extend/append cannot be aggregated across ranks: pass cases")
        parts += self._values
        widths = {p.shape[1] for p in parts}
        if len(widths) > 1:
            raise ValueError(f"the values kept have different class counts {sorted(widths)}")
        return torch.cat(parts)

    def _scores(self, counts):
        import exactdice as ed

        policy = "monai_ignore_empty" if self.ignore_empty else "monai"
        return ed.Confusion(counts, policy).dice

    def _all_counts(self):
        import numpy as np

        counts = np.concatenate(self._counts) if self._counts else np.zeros((0, 0, 4), np.uint64)
        cases = list(self._cases)
        if self.process_group is None:
            return counts
        import torch.distributed as dist

        group = None if self.process_group is True else self.process_group
        gathered = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, (counts, cases), group=group)
        if any(i is None for _, ids in gathered for i in ids):
            raise ValueError("across ranks, pass case_index to every call (to count each case once)")
        # Each case once, in case order: the result does not depend on the ranks' shares.
        by_case = {}
        for c, ids in gathered:
            for row, i in zip(c, ids):
                by_case.setdefault(i, row)
        rows = [by_case[i] for i in sorted(by_case)]
        return np.stack(rows) if rows else counts[:0]

    def aggregate(self, reduction: Optional[str] = None):
        """The reduced Dice of every case seen (``reduction`` overrides the constructor's), as
        MONAI's ``do_metric_reduction`` reduces it; with ``return_with_label`` and
        ``reduction="mean_batch"``, a dict of each class's value rounded to 4 digits, keyed by
        the given names (or ``label_0``, … for ``True``), as MONAI returns it."""
        from .metrics import metric_reduction

        if not self._counts and not self._values:
            raise ValueError("the data to aggregate must be PyTorch Tensor, got <class 'NoneType'>.")
        value, not_nans = metric_reduction(self._all_scores(), reduction or self.reduction)
        value, not_nans = self._as_result(value), self._as_result(not_nans)
        if self.reduction == "mean_batch" and self.return_with_label:
            if isinstance(self.return_with_label, bool):
                first = 0 if self.include_background else 1
                names = [f"label_{i + first}" for i in range(len(value))]
            else:
                names = list(self.return_with_label)
            value = {k: round(v.item(), 4) for k, v in zip(names, value)}
        return (value, not_nans) if self.get_not_nans else value



def compute_dice(
    y_pred,
    y,
    include_background: bool = True,
    ignore_empty: bool = True,
    num_classes: Optional[int] = None,
    softmax: Optional[bool] = None,
    ignore_index: Optional[int] = None,
) -> torch.Tensor:
    """MONAI's ``compute_dice``: the Dice ``[B, C]`` of each case and class (float32 on the
    input's device) from exact counts; ``softmax=True`` takes the argmax of a ``[B, C, …]``
    prediction first (a label map of ``C`` classes). See :class:`DiceMetric`."""
    y_pred = torch.as_tensor(y_pred)
    if softmax and y_pred.dim() >= 2 and y_pred.shape[1] > 1:
        num_classes = num_classes or y_pred.shape[1]
        y_pred = y_pred.argmax(1, keepdim=True)
    m = DiceMetric(
        include_background=include_background,
        reduction="none",
        ignore_empty=ignore_empty,
        num_classes=num_classes,
        ignore_index=ignore_index,
    )
    return m(y_pred, y)

from .metrics import (  # noqa: E402  (the metrics need nothing above; re-exported here)
    HausdorffDistanceMetric,
    LesionWiseMetric,
    compute_lesion_wise,
    SurfaceDiceMetric,
    SurfaceDistanceMetric,
    compute_average_surface_distance,
    compute_hausdorff_distance,
    compute_surface_dice,
)
