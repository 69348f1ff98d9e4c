"""exactdice.torch against MONAI 1.6.1 (values and gradients, float32 and float64), gradcheck,
torch.compile, and bad inputs."""

import itertools
import numpy as np
import pytest
import torch

from exactdice.torch import DiceLoss, GeneralizedDiceLoss, TverskyLoss

monai_losses = pytest.importorskip("monai.losses")


def _case(seed, n=2, c=3, spatial=(5, 6, 4), dtype=torch.float64, labels=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c) + spatial, generator=g, dtype=dtype)
    if labels:
        y = torch.randint(0, c, (n, 1) + spatial, generator=g)
    else:
        y = torch.rand((n, c) + spatial, generator=g, dtype=dtype)
    return x, y


def _compare(ours, theirs, x, y, tol):
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    la, lb = ours(a, y), theirs(b, y)
    assert la.shape == lb.shape, (la.shape, lb.shape)
    torch.testing.assert_close(la, lb, rtol=tol, atol=tol)
    la.sum().backward()
    lb.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=tol, atol=tol)


DICE_OPTIONS = [
    dict(softmax=True, to_onehot_y=True),
    dict(softmax=True, to_onehot_y=True, include_background=False),
    dict(sigmoid=True, to_onehot_y=True, batch=True),
    dict(softmax=True, to_onehot_y=True, squared_pred=True, reduction="sum"),
    dict(softmax=True, to_onehot_y=True, jaccard=True, reduction="none"),
    dict(softmax=True, to_onehot_y=True, batch=True, reduction="none"),
    dict(softmax=True, to_onehot_y=True, weight=[0.2, 1.0, 3.0]),
    dict(softmax=True, to_onehot_y=True, include_background=False, weight=[1.0, 2.0]),
    dict(softmax=True, to_onehot_y=True, smooth_nr=0.0, smooth_dr=1e-6),
]


@pytest.mark.parametrize("opts,dtype", itertools.product(DICE_OPTIONS, [torch.float64, torch.float32]))
def test_dice_loss_matches_monai(opts, dtype):
    # MONAI's one-hot target is float32, which moves its float64 values by up to ~1e-8
    # (test_exact_reference below holds ours to 1e-12 against the float64 formula).
    tol = 1e-7 if dtype == torch.float64 else 2e-5
    for seed in range(3):
        x, y = _case(seed, dtype=dtype)
        _compare(DiceLoss(**opts), monai_losses.DiceLoss(**opts), x, y, tol)


OTHER_ACTS = {
    # Values outside [0, 1]: the float64 closed form in torch operations.
    "tanh": torch.tanh,
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
    # Probabilities: the core, its gradient chained through the activation's autograd graph.
    "softmax_half": lambda x: 0.25 + 0.5 * torch.softmax(x, dim=1),
    "sigmoid_squared": lambda x: torch.sigmoid(x) ** 2,
}


@pytest.mark.parametrize("act", sorted(OTHER_ACTS))
def test_other_act_matches_monai(act):
    f = OTHER_ACTS[act]
    for seed in range(2):
        x, y = _case(seed)
        for ours, theirs in [
            (DiceLoss, monai_losses.DiceLoss),
            (GeneralizedDiceLoss, monai_losses.GeneralizedDiceLoss),
            (TverskyLoss, monai_losses.TverskyLoss),
        ]:
            for opts in [dict(to_onehot_y=True), dict(to_onehot_y=True, include_background=False, reduction="none")]:
                # MONAI's GeneralizedDiceLoss computes its class weights in float32
                # (`w_func(ground_o.float())`): equal to that precision; the others to 1e-10.
                tol = 1e-7 if ours is GeneralizedDiceLoss else 1e-10
                _compare(ours(other_act=f, **opts), theirs(other_act=f, **opts), x, y, tol)


def test_dense_and_soft_targets_match_monai():
    for seed in range(3):
        x, y = _case(seed, labels=False)
        for opts in [dict(sigmoid=True), dict(sigmoid=True, soft_label=True), dict(soft_label=True, batch=True)]:
            xx = torch.sigmoid(x) if "sigmoid" not in opts else x
            _compare(DiceLoss(**opts), monai_losses.DiceLoss(**opts), xx, y, 1e-10)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
def test_generalized_dice_matches_monai(w_type):
    for seed in range(3):
        x, y = _case(seed)
        opts = dict(softmax=True, to_onehot_y=True, w_type=w_type)
        _compare(GeneralizedDiceLoss(**opts, reduction="none"), monai_losses.GeneralizedDiceLoss(**opts, reduction="none"), x, y, 1e-7)
        _compare(GeneralizedDiceLoss(**opts), monai_losses.GeneralizedDiceLoss(**opts), x, y, 1e-7)


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.8, 0.2)])
def test_tversky_matches_monai(alpha, beta):
    for seed in range(3):
        x, y = _case(seed)
        opts = dict(softmax=True, to_onehot_y=True, alpha=alpha, beta=beta, include_background=False)
        _compare(TverskyLoss(**opts, reduction="none", batch=True), monai_losses.TverskyLoss(**opts, reduction="none", batch=True), x, y, 1e-7)
        _compare(TverskyLoss(**opts), monai_losses.TverskyLoss(**opts), x, y, 1e-7)


def test_label_map_dtypes_and_layouts_agree():
    x, y = _case(4)
    ref = DiceLoss(softmax=True, to_onehot_y=True)(x, y)
    for yy in [y.to(torch.uint8), y.to(torch.int32), y.to(torch.float32), y[:, 0]]:
        torch.testing.assert_close(DiceLoss(softmax=True, to_onehot_y=True)(x, yy), ref, rtol=0, atol=0)
    # Non-contiguous and channels-last inputs give the same values and gradients.
    x4, y4 = _case(5, spatial=(6, 7))
    for variant in [x4.contiguous(memory_format=torch.channels_last), x4.transpose(2, 3).contiguous().transpose(2, 3)]:
        a = variant.clone().requires_grad_(True)
        b = x4.clone().requires_grad_(True)
        la = DiceLoss(softmax=True, to_onehot_y=True)(a, y4)
        lb = DiceLoss(softmax=True, to_onehot_y=True)(b, y4)
        la.backward()
        lb.backward()
        torch.testing.assert_close(la, lb, rtol=0, atol=0)
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_gradcheck():
    x, y = _case(6, n=1, c=3, spatial=(3, 4))
    for opts in [dict(softmax=True, to_onehot_y=True), dict(sigmoid=True, to_onehot_y=True, reduction="none"),
                 dict(softmax=True, to_onehot_y=True, jaccard=True, batch=True)]:
        loss = DiceLoss(**opts)
        assert torch.autograd.gradcheck(lambda z: loss(z, y), (x.clone().requires_grad_(True),))


def test_torch_compile_training_step():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 3, 3, padding=1).double()
    loss_fn = DiceLoss(softmax=True, to_onehot_y=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(img, lab):
        opt.zero_grad()
        loss = loss_fn(net(img), lab)
        loss.backward()
        return loss

    compiled = torch.compile(step, backend="eager", fullgraph=False)
    # The loss alone compiles as one graph (the custom operators are opaque, with fake
    # implementations for tracing), through AOT autograd, with the eager gradient.
    lossc = torch.compile(lambda a, b: loss_fn(a, b), backend="aot_eager", fullgraph=True)
    z = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    lab3 = torch.randint(0, 3, (2, 1, 8, 8))
    (gc_,) = torch.autograd.grad(lossc(z, lab3), z)
    (ge,) = torch.autograd.grad(loss_fn(z, lab3), z)
    torch.testing.assert_close(gc_, ge, rtol=0, atol=0)
    img = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    lab = (img > 0).long() + (img > 1).long()
    eager_net_state = {k: v.clone() for k, v in net.state_dict().items()}
    l1 = compiled(img, lab)
    net.load_state_dict(eager_net_state)
    l2 = step(img, lab)
    torch.testing.assert_close(l1, l2)


def test_training_improves_held_out_dice():
    import exactdice as ed

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 3, padding=1))
    loss_fn = DiceLoss(softmax=True, to_onehot_y=True, include_background=False)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)

    def batch(n):
        img = torch.rand(n, 1, 16, 16)
        lab = (torch.nn.functional.avg_pool2d(img, 3, 1, 1) > 0.55).long()
        return img, lab

    test_img, test_lab = batch(8)

    def held_out():
        with torch.no_grad():
            pred = net(test_img).argmax(1).numpy().astype(np.uint8)
        return float(ed.confusion(pred, test_lab[:, 0].numpy().astype(np.uint8), num_classes=2).dice[1])

    before = held_out()
    for _ in range(60):
        img, lab = batch(8)
        opt.zero_grad()
        loss_fn(net(img), lab).backward()
        opt.step()
    after = held_out()
    assert after > before + 0.2 and after > 0.7, (before, after)


def test_bad_inputs_raise_clear_errors():
    x, y = _case(7)
    with pytest.raises(TypeError, match="other_act must be None or callable"):
        DiceLoss(other_act="tanh")
    with pytest.raises(ValueError, match="Incompatible values"):
        DiceLoss(sigmoid=True, softmax=True)
    with pytest.raises(ValueError, match="Incompatible values"):
        DiceLoss(softmax=True, other_act=torch.tanh)
    with pytest.raises(ValueError, match="ground truth has different shape"):
        DiceLoss(softmax=True, to_onehot_y=True)(x, y[:, :, :3])
    # MONAI's test_ill_shape, as it is: an AssertionError (ours is a ValueError as well).
    for loss in (DiceLoss(), GeneralizedDiceLoss(), TverskyLoss()):
        with pytest.raises(AssertionError):
            loss.forward(torch.ones((1, 2, 3)), torch.ones((4, 5, 6)))
    with pytest.raises(ValueError, match="label"):
        DiceLoss(softmax=True, to_onehot_y=True)(x, y + 5)
    with pytest.raises(ValueError, match="NaN|finite|not a number"):
        bad = x.clone()
        bad[0, 1, 2, 2, 2] = float("nan")
        DiceLoss(softmax=True, to_onehot_y=True)(bad, y)
    with pytest.warns(UserWarning, match="outside"):
        # Logits given as probabilities: values outside [0, 1], scored as MONAI does, with a
        # warning (once per loss).
        raw = DiceLoss(to_onehot_y=True)
        torch.testing.assert_close(raw(x * 10, y), monai_losses.DiceLoss(to_onehot_y=True)(x * 10, y))
    with pytest.raises(ValueError, match="non-integer"):
        DiceLoss(softmax=True, to_onehot_y=True)(x, y.double() + 0.5)
    with pytest.raises(ValueError, match="reduction"):
        DiceLoss(reduction="avg")
    with pytest.raises(ValueError, match="is on"):
        DiceLoss(softmax=True, to_onehot_y=True)(x.to("meta"), y)
    with pytest.raises(ValueError, match="weight"):
        DiceLoss(softmax=True, to_onehot_y=True, weight=[1.0, -1.0, 1.0])(x, y)


def test_statistics_merge_exactly_across_chunks():
    """The native statistics of two halves of a batch, summed, score like the whole batch."""
    from exactdice import _native

    x, y = _case(8, n=4)
    p = torch.softmax(x, 1).numpy()
    lab = y[:, 0].numpy()
    params = _native.LossParams(batch=True)
    whole = _native.soft_statistics(params, p, lab)
    halves = [_native.soft_statistics(params, p[i:i + 2], lab[i:i + 2]) for i in (0, 2)]
    # Per (sample, class) rows: the halves are the whole's rows.
    assert np.array_equal(np.concatenate(halves), whole)
    n, c = p.shape[:2]
    assert _native.soft_loss(params, np.concatenate(halves), n, c)[0] == _native.soft_loss(params, whole, n, c)[0]


def _exact(x, y, c, include_background=True, jaccard=False, squared=False, batch=False, weight=None,
           reduction="mean"):
    """The float64 formula with torch autograd (no library): the reference for 1e-12."""
    p = torch.softmax(x, 1)
    g = torch.nn.functional.one_hot(y[:, 0], c).movedim(-1, 1).to(x.dtype)
    if not include_background:
        p, g = p[:, 1:], g[:, 1:]
    axes = tuple(range(2, x.dim()))
    if batch:
        axes = (0,) + axes
    i = (p * g).sum(axes)
    pp = (p * p if squared else p).sum(axes)
    gg = (g * g if squared else g).sum(axes)
    # MONAI's Jaccard: (2I + s_nr) / (2(P + G - I) + s_dr).
    den = 2 * (pp + gg - i) if jaccard else pp + gg
    f = 1 - (2 * i + 1e-5) / (den + 1e-5)
    if weight is not None:
        f = f * torch.tensor(weight, dtype=x.dtype)
    return {"mean": f.mean(), "sum": f.sum()}.get(reduction, f)


@pytest.mark.parametrize("opts", [
    dict(), dict(include_background=False), dict(jaccard=True), dict(squared=True, batch=True),
    dict(weight=[0.5, 2.0, 1.0], reduction="sum"), dict(batch=True, jaccard=True, include_background=False),
])
def test_exact_reference(opts):
    for seed in range(4):
        x, y = _case(seed, n=3, c=3, spatial=(9, 7, 5))
        kw = dict(opts)
        squared = kw.pop("squared", False)
        ours = DiceLoss(softmax=True, to_onehot_y=True, squared_pred=squared, **kw)
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        la, lb = ours(a, y), _exact(b, y, 3, squared=squared, **kw)
        torch.testing.assert_close(la, lb, rtol=1e-12, atol=1e-12)
        la.sum().backward()
        lb.sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)


def _random_options(rng):
    kind = rng.choice(["dice", "jaccard", "tversky", "gdl"])
    opts = dict(
        include_background=bool(rng.integers(2)),
        batch=bool(rng.integers(2)),
        reduction=str(rng.choice(["mean", "sum", "none"])),
        smooth_nr=float(rng.choice([0.0, 1e-5, 0.5])),
        smooth_dr=float(rng.choice([1e-5, 1.0])),
        soft_label=bool(rng.integers(2)),
    )
    act = rng.choice(["softmax", "sigmoid", "none"])
    if act == "softmax":
        opts["softmax"] = True
    elif act == "sigmoid":
        opts["sigmoid"] = True
    if kind in ("dice", "jaccard"):
        opts["squared_pred"] = bool(rng.integers(2))
        if rng.integers(2):
            opts["weight"] = [float(w) for w in rng.uniform(0.1, 3.0, 3)]
        return DiceLoss(jaccard=kind == "jaccard", **opts), act
    if kind == "tversky":
        gamma = float(rng.choice([1.0, 0.75, 2.0]))
        return TverskyLoss(alpha=float(rng.uniform(0, 1)), beta=float(rng.uniform(0.1, 1)), gamma=gamma, **opts), act
    return GeneralizedDiceLoss(w_type=str(rng.choice(["square", "simple", "uniform"])), **opts), act


def test_device_path_matches_the_core():
    """The closed form in torch operations (what runs on CUDA), forced on CPU, against the
    core: values and gradients to 1e-12 in float64 over random options and targets."""
    rng = np.random.default_rng(11)
    for case in range(150):
        loss, act = _random_options(rng)
        labels = bool(rng.integers(2))
        loss.to_onehot_y = labels
        g = torch.Generator().manual_seed(case)
        x = torch.randn(2, 3, 5, 4, 3, generator=g, dtype=torch.float64)
        if act == "none":
            x = torch.rand(2, 3, 5, 4, 3, generator=g, dtype=torch.float64)
        if labels:
            y = torch.randint(0, 3, (2, 1, 5, 4, 3), generator=g)
            if case % 4 == 0:
                y[y == 2] = 0  # an absent class
            if case % 5 == 0:
                loss.ignore_index = 1
                loss._keys.clear()
        else:
            y = torch.rand(2, 3, 5, 4, 3, generator=g, dtype=torch.float64)
        mask = (torch.rand(2, 1, 5, 4, 3, generator=g) > 0.2) if case % 3 == 0 else None
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        core = loss(a, y, mask)
        loss._force_torch = True
        dev = loss(b, y, mask)
        loss._force_torch = False
        torch.testing.assert_close(dev, core, rtol=1e-12, atol=1e-12, msg=lambda m: f"case {case}: {m}")
        core.sum().backward()
        dev.sum().backward()
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-12, msg=lambda m: f"case {case}: {m}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here: the device path is checked on CPU by test_device_path_matches_the_core")
def test_cuda_matches_cpu():
    x, y = _case(12)
    for opts in DICE_OPTIONS:
        a = x.clone().requires_grad_(True)
        b = x.cuda().requires_grad_(True)
        la, lb = DiceLoss(**opts)(a, y), DiceLoss(**opts)(b, y.cuda())
        la.sum().backward()
        lb.sum().backward()
        torch.testing.assert_close(lb.cpu(), la, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(b.grad.cpu(), a.grad, rtol=1e-10, atol=1e-12)


def test_hostile_arguments_raise_python_errors_never_panics():
    """Random dtypes, shapes, contiguity and values into every native function: only
    ValueError or TypeError come back (a Rust panic would be a PanicException, a
    BaseException that this test does not catch)."""
    from exactdice import _native

    rng = np.random.default_rng(99)
    dtypes = [np.uint8, np.int8, np.uint16, np.int32, np.int64, np.uint64, np.float32, np.float64, np.bool_, np.complex64]

    def arr():
        shape = tuple(int(v) for v in rng.integers(0, 4, rng.integers(0, 5)))
        a = (rng.standard_normal(shape) * rng.choice([1, 5, 1e30])).astype(rng.choice(dtypes))
        if a.ndim > 1 and rng.integers(2):
            a = np.swapaxes(a, 0, -1)
        return a

    params = _native.LossParams()
    calls = [
        lambda: _native.label_confusion(arr(), arr(), int(rng.integers(0, 5)), int(rng.integers(0, 3)), None),
        lambda: _native.threshold_confusion(arr(), arr(), int(rng.integers(0, 3)), int(rng.integers(0, 3)), float(rng.choice([0.5, -1, np.nan])), None),
        lambda: _native.scores(arr(), str(rng.choice(["dice", "x"])), 0, float(rng.choice([1.0, 2.0, np.nan]))),
        lambda: _native.soft_statistics(params, arr(), arr(), rng.choice([None, "softmax", "sigmoid", "tanh"]), None),
        lambda: _native.soft_loss(params, arr(), int(rng.integers(0, 3)), int(rng.integers(0, 3))),
        lambda: _native.soft_gradient(params, arr(), arr(), arr(), float(rng.standard_normal()), None, None),
        lambda: _native.LossParams(score=str(rng.choice(["dice", "tversky", "nope"])), alpha=float(rng.standard_normal()),
                                   gamma=float(rng.choice([1.0, -1.0, np.nan])), weight=[float(rng.standard_normal())]),
    ]
    for _ in range(3000):
        try:
            calls[int(rng.integers(len(calls)))]()
        except (ValueError, TypeError, OverflowError):
            pass


def test_kept_probabilities_neither_leak_nor_change_gradients():
    """Forward keeps the softmax for backward (which turns it into the gradient in place):
    nothing stays behind when backward runs or the graph is dropped, and a second backward
    (retain_graph) recomputes the same gradient."""
    import gc

    from exactdice.torch import _KEPT

    x, y = _case(13)
    loss_fn = DiceLoss(softmax=True, to_onehot_y=True)
    a = x.clone().requires_grad_(True)
    loss = loss_fn(a, y)
    assert len(_KEPT) == 1
    (g1,) = torch.autograd.grad(loss, a, retain_graph=True)
    assert len(_KEPT) == 0
    (g2,) = torch.autograd.grad(loss, a)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)
    for _ in range(3):
        loss_fn(a, y)  # forward only: the graph is dropped at once
    gc.collect()
    assert len(_KEPT) == 0
    with torch.no_grad():
        loss_fn(a, y)
    assert len(_KEPT) == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_bits_on_any_number_of_threads(dtype):
    """Inputs of 2**21 elements and more run on torch.get_num_threads() threads: the loss and
    the gradient have the same bits on 1, 2 and 3 threads (logits with labels, probabilities
    with a dense target)."""
    from exactdice import _native

    before = torch.get_num_threads()
    g = torch.Generator().manual_seed(5)
    z = torch.randn(2, 4, 1 << 18, generator=g, dtype=dtype) * 3
    labels = torch.randint(0, 4, (2, 1, 1 << 18), generator=g)
    p = torch.rand(1, 4, 1 << 19, generator=g, dtype=dtype)
    dense = (torch.rand(1, 4, 1 << 19, generator=g) < 0.5).to(dtype)
    runs = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            out = []
            for loss_fn, x, t in (
                (DiceLoss(softmax=True, to_onehot_y=True), z, labels),
                (DiceLoss(squared_pred=True, batch=True), p, dense),
            ):
                a = x.detach().requires_grad_(True)
                value = loss_fn(a, t)
                value.backward()
                out += [value.detach(), a.grad]
            assert _native.get_threads() == threads
            runs.append(out)
    finally:
        torch.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert torch.equal(a, b)
