"""exactdice.torch as a MONAI drop-in (issue 20): the compound losses, ``ignore_index`` on
dense targets, the surface metrics and the cumulative-metric API against MONAI 1.6.1 itself
(installed beside, without its dependencies), and MONAI's own unit tests run on our classes
where a checkout of them is given (``DICE_MONAI_TESTS``)."""

import itertools
import os
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch

import exactdice.torch as ed

monai = pytest.importorskip("monai")
import monai.losses as ml  # noqa: E402
import monai.metrics as mm  # noqa: E402

warnings.filterwarnings("ignore", message=".*is all 0.*")
warnings.filterwarnings("ignore", message="single channel prediction.*")


def _grads(loss, x, y):
    a = x.clone().requires_grad_(True)
    v = loss(a, y)
    v.sum().backward()
    return v.detach(), a.grad


def _same(ours, theirs, x, y, tol=1e-10):
    va, ga = _grads(ours, x, y)
    vb, gb = _grads(theirs, x, y)
    assert va.shape == vb.shape, (va.shape, vb.shape)
    torch.testing.assert_close(va, vb.to(va.dtype), rtol=tol, atol=tol)
    torch.testing.assert_close(ga, gb, rtol=tol, atol=tol)


def _case(seed, n=2, c=3, spatial=(6, 5, 4), labels=True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, c) + spatial, generator=g, dtype=dtype) * 2
    if labels:
        y = torch.randint(0, c, (n, 1) + spatial, generator=g)
    else:
        y = (torch.rand((n, c) + spatial, generator=g) > 0.6).to(dtype)
    return x, y


def test_losses_are_monai_loss_modules():
    for cls in (ed.DiceLoss, ed.GeneralizedDiceLoss, ed.TverskyLoss, ed.DiceCELoss, ed.DiceFocalLoss):
        assert issubclass(cls, torch.nn.modules.loss._Loss), cls
        assert cls().reduction == "mean"


CE_OPTIONS = [
    dict(softmax=True, to_onehot_y=True),
    dict(softmax=True, to_onehot_y=True, include_background=False, weight=torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)),
    dict(softmax=True, to_onehot_y=True, lambda_dice=0.3, lambda_ce=1.7, label_smoothing=0.1, reduction="sum"),
    dict(sigmoid=True, to_onehot_y=True, batch=True),
    dict(softmax=True, to_onehot_y=True, squared_pred=True, jaccard=True),
    dict(to_onehot_y=True),  # Dice on the raw logits, as MONAI: the composed path
    dict(softmax=True, other_act=None, to_onehot_y=True, weight=torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)),
]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("opts", CE_OPTIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_dice_ce_equals_monai(opts, seed, fused):
    x, y = _case(seed)
    _same(ed.DiceCELoss(**opts, fused=fused), ml.DiceCELoss(**opts), x, y, tol=1e-8)


def test_dice_ce_dense_and_single_channel_equal_monai():
    x, y = _case(3, labels=False)
    for fused in (False, True):
        for opts in (dict(softmax=True), dict(sigmoid=True, include_background=False)):
            _same(ed.DiceCELoss(**opts, fused=fused), ml.DiceCELoss(**opts), x, y)
        x1, y1 = x[:, :1], y[:, :1]
        for opts in (dict(sigmoid=True), dict(sigmoid=True, weight=torch.tensor([0.5], dtype=torch.float64))):
            _same(ed.DiceCELoss(**opts, fused=fused), ml.DiceCELoss(**opts), x1, y1)


FOCAL_OPTIONS = [
    dict(sigmoid=True),
    dict(softmax=True, to_onehot_y=True, gamma=1.0, alpha=0.25),
    dict(sigmoid=True, include_background=False, weight=[2.0, 0.5], lambda_focal=0.7, reduction="sum"),
    dict(softmax=True, to_onehot_y=True, weight=0.5, batch=True),
    dict(reduction="none"),  # raw Dice and broadcast, as MONAI: the composed path
]


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("opts", FOCAL_OPTIONS)
def test_dice_focal_equals_monai(opts, fused):
    x, y = _case(5, labels=bool(opts.get("to_onehot_y")))
    # MONAI's FocalLoss computes in float32 whatever the input (``input.float()``).
    _same(ed.DiceFocalLoss(**opts, fused=fused), ml.DiceFocalLoss(**opts), x, y, tol=1e-6)


def test_compound_losses_fused_path_matches_composed_float32():
    x, y = _case(7, dtype=torch.float32)
    for cls in (ed.DiceCELoss, ed.DiceFocalLoss):
        loss = cls(softmax=True, to_onehot_y=True, fused=True)
        fused = _grads(loss, x, y)
        composed_x = x.clone().requires_grad_(True)
        composed = loss._composed(composed_x, y)
        composed.backward()
        torch.testing.assert_close(fused[0], composed.detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(fused[1], composed_x.grad, rtol=1e-5, atol=1e-7)
        assert fused[0].dtype == torch.float32


def test_losses_compile_fullgraph_and_export():
    x, y = _case(8, dtype=torch.float32)
    for loss in (
        ed.DiceLoss(softmax=True, to_onehot_y=True),
        ed.GeneralizedDiceLoss(softmax=True, to_onehot_y=True),
        ed.TverskyLoss(sigmoid=True, to_onehot_y=True, alpha=0.3, beta=0.7),
        ed.DiceCELoss(softmax=True, to_onehot_y=True),
        ed.DiceFocalLoss(sigmoid=True, to_onehot_y=True),
        ed.DiceCELoss(softmax=True, to_onehot_y=True, fused=True),
        ed.DiceFocalLoss(sigmoid=True, to_onehot_y=True, fused=True),
    ):
        eager = _grads(loss, x, y)
        compiled = torch.compile(lambda a, b: loss(a, b), backend="aot_eager", fullgraph=True)
        got = _grads(compiled, x, y)
        torch.testing.assert_close(got[0], eager[0], rtol=0, atol=0)
        torch.testing.assert_close(got[1], eager[1], rtol=0, atol=0)

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.loss = loss

            def forward(self, a, b):
                return self.loss(a, b)

        exported = torch.export.export(M(), (x, y))
        torch.testing.assert_close(exported.module()(x, y), eager[0], rtol=0, atol=0)


def test_torchscript_is_refused_clearly():
    for cls in (ed.DiceLoss, ed.DiceCELoss):
        with pytest.raises(RuntimeError, match="torch.jit.script"):
            torch.jit.script(cls())


def test_compound_losses_check_arguments_as_monai():
    with pytest.raises(ValueError):
        ed.DiceCELoss(reduction="none")
    with pytest.raises(ValueError):
        ed.DiceCELoss(lambda_ce=-1.0)
    with pytest.raises(ValueError):
        ed.DiceFocalLoss(lambda_dice=-1.0)
    with pytest.raises(ValueError, match="number of dimensions"):
        ed.DiceCELoss()(torch.ones((1, 2, 3)), torch.ones((1, 1, 2, 3)))
    with pytest.raises(ValueError, match="number of channels"):
        ed.DiceFocalLoss()(torch.ones((1, 3, 4, 4)), torch.ones((1, 2, 4, 4)))
    with pytest.raises(AssertionError):
        ed.DiceFocalLoss()(torch.ones((1, 2, 3)), torch.ones((1, 2, 5)))


def _ignore_cases():
    g = torch.Generator().manual_seed(11)
    x1 = torch.randn((2, 1, 6, 5), generator=g, dtype=torch.float64)
    y1 = (torch.rand((2, 1, 6, 5), generator=g) > 0.5).double()
    y1[:, :, 4:] = 255
    x3 = torch.randn((2, 3, 6, 5), generator=g, dtype=torch.float64)
    lab = torch.randint(0, 3, (2, 6, 5), generator=g)
    y3 = torch.nn.functional.one_hot(lab, 3).movedim(-1, 1).double()
    sentinel = y3.clone()
    sentinel[:, :, :2] = 0  # voxels of no class: ignored for a sentinel ignore_index
    return [
        (dict(sigmoid=True, ignore_index=255), x1, y1),
        (dict(softmax=True, ignore_index=1), x3, y3),
        (dict(softmax=True, ignore_index=0, include_background=False), x3, y3),
        (dict(softmax=True, ignore_index=255), x3, sentinel),
    ]


@pytest.mark.parametrize("i", range(4))
@pytest.mark.parametrize("cls", ["DiceLoss", "TverskyLoss"])
def test_ignore_index_on_dense_targets_equals_monai(i, cls):
    opts, x, y = _ignore_cases()[i]
    _same(getattr(ed, cls)(**opts), getattr(ml, cls)(**opts), x, y)


def test_generalized_dice_all_absent_and_w_func():
    x, _ = _case(12)
    y = torch.zeros_like(x)
    ours, theirs = ed.GeneralizedDiceLoss(sigmoid=True), ml.GeneralizedDiceLoss(sigmoid=True)
    # Ours on purpose: every class weighs 1 when none is present (MONAI: 0, so loss 0).
    assert float(ours(x, y)) > 0.1 and float(theirs(x, y)) == pytest.approx(0.0)
    _same(ed.GeneralizedDiceLoss(sigmoid=True, all_absent="zero"), theirs, x, y)
    g = torch.tensor([[0.0, 2.0, 4.0]])
    for w_type in ("square", "simple", "uniform"):
        torch.testing.assert_close(
            ed.GeneralizedDiceLoss(w_type=w_type).w_func(g), ml.GeneralizedDiceLoss(w_type=w_type).w_func(g)
        )


def _noisy_pair(seed, shape=(24, 20, 16), classes=3):
    """A network-like pair: blobs with jittered boundaries, a false-positive island, a hole."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    ref = np.zeros(shape, np.int64)
    for k in range(1, classes):
        c = rng.uniform(5, np.array(shape) - 5)
        r = rng.uniform(3, 6)
        ref[((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) <= r * r] = k
    pred = ref.copy()
    jitter = rng.random(shape) < 0.05
    pred[jitter] = rng.integers(0, classes, jitter.sum())
    pred[1:3, 1:3, 1:3] = classes - 1  # an island
    return pred, ref


def _onehot(labels, classes):
    t = torch.as_tensor(labels)
    return torch.nn.functional.one_hot(t, classes).movedim(-1, 0).float()


SURFACE_CASES = [
    ("hd", dict(), dict()),
    ("hd", dict(percentile=95), dict()),
    ("hd", dict(directed=True), dict()),
    ("hd", dict(percentile=90, directed=True, include_background=True), dict()),
    ("hd", dict(distance_metric="chessboard"), dict()),
    ("hd", dict(distance_metric="taxicab", percentile=95), dict()),
    ("asd", dict(distance_metric="taxicab", symmetric=True), dict()),
    ("nsd", dict(class_thresholds=[1.0, 2.0], distance_metric="chessboard"), dict()),
    ("asd", dict(), dict()),
    ("asd", dict(symmetric=True), dict()),
    ("nsd", dict(class_thresholds=[1.0, 2.0]), dict()),
    ("nsd", dict(class_thresholds=[0.5, 1.5, 1.0], include_background=True), dict()),
    ("nsd", dict(class_thresholds=[1.0, 2.0], use_subvoxels=True), dict()),
]
_CLASSES = {
    "hd": (ed.HausdorffDistanceMetric, mm.HausdorffDistanceMetric),
    "asd": (ed.SurfaceDistanceMetric, mm.SurfaceDistanceMetric),
    "nsd": (ed.SurfaceDiceMetric, mm.SurfaceDiceMetric),
}


@pytest.mark.parametrize("kind,opts,_", SURFACE_CASES)
def test_surface_metrics_in_monai_validation_loop(kind, opts, _):
    """MONAI's loop: decollated lists of MetaTensors, several iterations with per-case spacing,
    aggregate, reset; equal to MONAI's to 1e-6, float32, with the buffer and not_nans."""
    from monai.data import MetaTensor

    ours_cls, theirs_cls = _CLASSES[kind]
    extra = {} if kind == "nsd" else {"empty": "monai"}
    ours = ours_cls(reduction="mean_batch", get_not_nans=True, **opts, **extra)
    theirs = theirs_cls(reduction="mean_batch", get_not_nans=True, **opts)
    for it in range(2):
        preds, refs = [], []
        for case in range(3):
            p, r = _noisy_pair(10 * it + case)
            if case == 2 and it == 1:
                p[p == 1] = 0  # a class the network missed
            preds.append(MetaTensor(_onehot(p, 3)))
            refs.append(MetaTensor(_onehot(r, 3)))
        # MONAI takes one spacing for a decollated list (per-case spacing needs a batch).
        spacing = [1.0, 0.8, 1.5] if it == 0 else [0.7, 0.7, 0.7]
        a = ours(y_pred=preds, y=refs, spacing=spacing)
        b = theirs(y_pred=preds, y=refs, spacing=spacing)
        assert a.dtype == torch.float32 and a.device == b.device
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    va, na = ours.aggregate()
    vb, nb = theirs.aggregate()
    np.testing.assert_allclose(va.numpy(), vb.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(na.numpy(), nb.numpy())
    np.testing.assert_allclose(ours.get_buffer().numpy(), theirs.get_buffer().numpy(), rtol=1e-6)
    for red in ("mean", "sum", "mean_channel", "sum_batch", "none"):
        np.testing.assert_allclose(ours.aggregate(red)[0].numpy(), theirs.aggregate(red)[0].numpy(), rtol=1e-6)
    ours.reset()
    assert ours.get_buffer() is None


def test_surface_functions_equal_monai_on_batches():
    p = torch.stack([_onehot(_noisy_pair(s)[0], 3) for s in range(2)])
    r = torch.stack([_onehot(_noisy_pair(s)[1], 3) for s in range(2)])
    sp = [[1.0, 2.0, 0.5], [0.7, 0.7, 1.1]]
    pairs = [
        (ed.compute_hausdorff_distance(p, r, percentile=95, spacing=sp), mm.compute_hausdorff_distance(p, r, percentile=95, spacing=sp)),
        (ed.compute_average_surface_distance(p, r, symmetric=True, spacing=2.0), mm.compute_average_surface_distance(p, r, symmetric=True, spacing=2.0)),
        (ed.compute_surface_dice(p, r, [1.0, 1.0], spacing=sp), mm.compute_surface_dice(p, r, [1.0, 1.0], spacing=sp)),
    ]
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_empty_masks_ours_and_monai():
    z = torch.zeros(1, 2, 8, 8)
    a = z.clone()
    a[0, 1, 2:5, 2:5] = 1
    diagonal = float(np.hypot(8, 8))
    for p, g in ((a, z), (z, a)):
        assert float(ed.compute_hausdorff_distance(p, g)) == pytest.approx(diagonal)
        assert float(ed.compute_average_surface_distance(p, g)) == pytest.approx(diagonal)
        for kw in (dict(), dict(directed=True), dict(percentile=95)):
            np.testing.assert_equal(
                ed.compute_hausdorff_distance(p, g, empty="monai", **kw).numpy(),
                mm.compute_hausdorff_distance(p, g, **kw).numpy(),
            )
        assert float(ed.compute_surface_dice(p, g, [1.0])) == 0.0
    assert torch.isnan(ed.compute_hausdorff_distance(z, z)).all()
    assert torch.isnan(ed.compute_surface_dice(z, z, [1.0])).all()


def test_surface_metrics_bad_inputs():
    p = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ValueError, match="distance_metric"):
        ed.HausdorffDistanceMetric(distance_metric="minkowski")
    with pytest.raises(ValueError, match="boundary voxels"):
        ed.compute_surface_dice(p, p, [1.0], distance_metric="taxicab", use_subvoxels=True)
    with pytest.raises(ValueError, match="same shape"):
        ed.compute_hausdorff_distance(p, torch.zeros(1, 2, 8, 7))
    with pytest.raises(ValueError, match="case 1"):
        ed.HausdorffDistanceMetric()(y_pred=[p[0], p[0]], y=[p[0], p[0, :, :4]])
    with pytest.raises(ValueError, match="one-hot"):
        ed.SurfaceDiceMetric([1.0])(torch.zeros(2, 8), torch.zeros(2, 8))
    with pytest.raises(ValueError, match="percentile"):
        ed.compute_hausdorff_distance(p, p, percentile=101)
    nan = p.clone()
    nan[0, 1, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        ed.compute_surface_dice(nan, p, [1.0])


def test_dice_metric_return_with_label_extend_and_compute_dice():
    g = torch.Generator().manual_seed(3)
    p = (torch.rand((4, 3, 6, 6), generator=g) > 0.5).float()
    y = (torch.rand((4, 3, 6, 6), generator=g) > 0.5).float()
    for rwl in (True, ["bg", "a", "b"]):
        for bg in (True, False):
            names = rwl if (rwl is True or bg) else ["a", "b"]
            a = ed.DiceMetric(include_background=bg, reduction="mean_batch", return_with_label=names)
            b = mm.DiceMetric(include_background=bg, reduction="mean_batch", return_with_label=names)
            a(p, y)
            b(p, y)
            assert a.aggregate() == b.aggregate()
    np.testing.assert_allclose(ed.compute_dice(p, y).numpy(), mm.compute_dice(p, y).numpy(), rtol=1e-6)
    a, b = ed.DiceMetric(reduction="mean"), mm.DiceMetric(reduction="mean")
    a(p[:2], y[:2])
    b(p[:2], y[:2])
    extra = mm.compute_dice(p[2:], y[2:])
    a.extend(extra[:1])
    b.extend(extra[:1])
    a.append(extra[1])
    b.append(extra[1])
    np.testing.assert_allclose(a.get_buffer().numpy(), b.get_buffer().numpy(), rtol=1e-6)
    np.testing.assert_allclose(a.aggregate().numpy(), b.aggregate().numpy(), rtol=1e-6)


# --- MONAI's own unit tests, with exactdice bound in place of MONAI's classes -------------

SUITE = [
    "tests/losses/test_dice_loss.py",
    "tests/losses/test_generalized_dice_loss.py",
    "tests/losses/test_tversky_loss.py",
    "tests/losses/test_dice_ce_loss.py",
    "tests/losses/test_dice_focal_loss.py",
    "tests/losses/test_ignore_index_losses.py",
    "tests/metrics/test_compute_meandice.py",
    "tests/metrics/test_hausdorff_distance.py",
    "tests/metrics/test_surface_distance.py",
    "tests/metrics/test_surface_dice.py",
]

#: Why a test that passes on MONAI may fail on exactdice, by a text its failure contains.
EXPECTED = {
    "cannot be compiled by torch.jit.script": "TorchScript is refused (README)",
}


def _run_suite(root: Path, out: Path, **env) -> dict:
    files = [f for f in SUITE if (root / f).exists()]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "swap", f"--junitxml={out}", *files]
    e = dict(os.environ, PYTHONPATH=f"{Path(__file__).parent / 'monai_suite'}{os.pathsep}{root}", **env)
    subprocess.run(cmd, cwd=root, env=e, capture_output=True, timeout=1200)
    results = {}
    for case in ET.parse(out).iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped") is not None
        results[name] = "skipped" if skipped else ("passed" if bad is None else (bad.get("message", "") + (bad.text or "")))
    return results


@pytest.mark.skipif(
    not os.environ.get("DICE_MONAI_TESTS"),
    reason="DICE_MONAI_TESTS is not set: MONAI's unit tests are in neither its wheel nor its sdist "
    "(its MANIFEST prunes tests/), so only a checkout of MONAI's repository provides them",
)
def test_monai_own_unit_tests_pass_on_exactdice(tmp_path):
    root = Path(os.environ["DICE_MONAI_TESTS"])
    base = _run_suite(root, tmp_path / "monai.xml", DICE_MONAI_SWAP="0")
    ours = _run_suite(root, tmp_path / "ours.xml", DICE_MONAI_COMPAT="1")
    passing = [k for k, v in base.items() if v == "passed"]
    assert len(passing) > 150, f"only {len(passing)} of MONAI's tests pass on MONAI itself"
    unexpected = {}
    explained = {}
    for k in passing:
        v = ours.get(k, "missing")
        if v == "passed":
            continue
        why = next((w for text, w in EXPECTED.items() if text in v), None)
        if why is None:
            unexpected[k] = v[:300]
        else:
            explained[why] = explained.get(why, 0) + 1
    print(f"MONAI's tests: {len(passing)} pass on MONAI, {len(passing) - sum(explained.values()) - len(unexpected)} on exactdice; {explained}")
    assert not unexpected, unexpected


def _lesion_case():
    """Two 125-voxel reference lesions; the prediction finds the first exactly, misses the
    second and adds a 27-voxel island far from both."""
    ref = torch.zeros(1, 2, 40, 40, 40)
    ref[0, 1, 2:7, 2:7, 2:7] = 1
    ref[0, 1, 30:35, 30:35, 30:35] = 1
    pred = torch.zeros_like(ref)
    pred[0, 1, 2:7, 2:7, 2:7] = 1
    pred[0, 1, 30:33, 2:5, 30:33] = 1
    ref[:, 0] = 1 - ref[:, 1]
    pred[:, 0] = 1 - pred[:, 1]
    return pred, ref


def test_lesion_wise_metric_brats_and_detection():
    pred, ref = _lesion_case()
    m = ed.LesionWiseMetric(["lesion_dice", "lesion_hd95", "lesion_tp", "lesion_fp", "lesion_fn"])
    dice, hd95, tp, fp, fn = [float(v) for v in m(pred, ref)]
    assert (tp, fp, fn) == (1.0, 1.0, 1.0)
    assert dice == pytest.approx(1 / 3)
    assert hd95 == pytest.approx(2 * 374.0 / 3)
    det = ed.compute_lesion_wise(pred, ref, ["lesion_precision", "lesion_recall", "lesion_f1"], matching="iou")
    assert [float(d) for d in det] == [0.5, 0.5, 0.5]
    # Cumulative: two iterations (decollated lists), mean and sum reductions, float32.
    single = ed.LesionWiseMetric("lesion_dice", reduction="sum")
    for _ in range(2):
        single(y_pred=[pred[0], ref[0]], y=[ref[0], ref[0]], spacing=[1.0, 1.0, 1.0])
    buf = single.get_buffer()
    assert buf.shape == (4, 1) and buf.dtype == torch.float32
    assert float(single.aggregate()) == pytest.approx(2 * (1 / 3 + 1.0))
    # MET's minimum volume (2 mm³) counts the island's 27 voxels even at a coarse spacing.
    met = ed.compute_lesion_wise(pred, ref, "lesion_fp", challenge="MET", spacing=0.5)
    assert float(met) == 1.0
    small = ed.compute_lesion_wise(pred, ref, "lesion_fn", spacing=0.5)  # 125 × 0.125 mm³ < 50
    assert float(small) == 0.0
    with pytest.raises(ValueError, match="not values of matching"):
        ed.LesionWiseMetric("lesion_f1")
    with pytest.raises(ValueError, match="challenge"):
        ed.LesionWiseMetric(challenge="XYZ")


def test_lesion_wise_equals_dice_eval(tmp_path):
    """The same numbers as `dice eval --lesion-wise` (through the wheel's own entry point) on
    the same masks written as NumPy files."""
    import csv

    from exactdice import _native

    pred, ref = _lesion_case()
    np.save(tmp_path / "p.npy", pred[0, 1].numpy().astype(np.uint8))
    np.save(tmp_path / "g.npy", ref[0, 1].numpy().astype(np.uint8))
    out = tmp_path / "out.csv"
    code = _native.cli_main(["dice", "eval", str(tmp_path / "p.npy"), str(tmp_path / "g.npy"), "--lesion-wise",
                             "--spacing", "1,1,1", "--format", "csv", "--output", str(out)])
    assert code == 0
    rows = [r for r in csv.DictReader(open(out)) if r.get("label") == "1"]
    assert rows, open(out).read()
    ours = ed.compute_lesion_wise(pred, ref, ["lesion_dice", "lesion_hd95"])
    assert float(rows[0]["lesion_dice"]) == pytest.approx(float(ours[0]), abs=1e-6)
    assert float(rows[0]["lesion_hd95"]) == pytest.approx(float(ours[1]), abs=1e-4)


def test_dice_metric_ignore_index_on_one_hot_equals_monai():
    g = torch.Generator().manual_seed(21)
    lab_p = torch.randint(0, 3, (3, 9, 8), generator=g)
    lab_y = torch.randint(0, 3, (3, 9, 8), generator=g)
    p = torch.nn.functional.one_hot(lab_p, 3).movedim(-1, 1).float()
    y = torch.nn.functional.one_hot(lab_y, 3).movedim(-1, 1).float()
    sentinel = y.clone()
    sentinel[:, :, :3] = 0  # voxels of no class
    for ii, ref in ((1, y), (0, y), (255, sentinel)):
        for bg in (True, False):
            a = ed.DiceMetric(include_background=bg, ignore_index=ii, reduction="none")(p, ref)
            b = mm.DiceMetric(include_background=bg, ignore_index=ii, reduction="none")(p, ref)
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, equal_nan=True)
