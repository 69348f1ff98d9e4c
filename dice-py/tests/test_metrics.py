"""exactdice's NumPy metrics against a brute-force count, MONAI and medpy, with merges."""

import pickle

import numpy as np
import pytest

import exactdice as ed


def _brute(p, g, label):
    a, b = p == label, g == label
    return [int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum()), int((~a & ~b).sum())]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.int32, np.int64, np.bool_])
def test_label_counts_every_dtype(dtype):
    rng = np.random.default_rng(1)
    hi = 2 if dtype == np.bool_ else 5
    p = rng.integers(0, hi, (7, 9, 11)).astype(dtype)
    g = rng.integers(0, hi, (7, 9, 11)).astype(dtype)
    c = ed.confusion(p, g)
    for label in range(hi):
        assert c.counts[label].tolist() == _brute(p.astype(np.int64), g.astype(np.int64), label)


def test_policies_and_empty_cases():
    p = np.zeros((4, 4), np.uint8)
    g = np.zeros((4, 4), np.uint8)
    p[0, 0] = 2  # label 2 predicted, absent in the reference; label 1 absent in both
    c = ed.confusion(p, g, num_classes=3)
    assert np.isnan(c.dice[1])  # default: both empty is skipped
    assert c.dice[2] == 0.0
    assert c.with_policy("monai").dice[1] == 1.0
    assert np.isnan(c.with_policy("nnunet").dice[1])
    assert np.isnan(c.with_policy("monai_ignore_empty").dice[2])
    assert c.with_policy((1, 0)).dice.tolist()[1:] == [0.0, 1.0]
    m = ed.mean(c.dice)
    assert (m.defined, m.total) == (2, 3)
    with pytest.raises(ValueError, match="empty policy"):
        c.with_policy("sometimes").dice


def test_merge_is_exact_and_picklable():
    rng = np.random.default_rng(2)
    p = rng.integers(0, 3, (10, 20, 20)).astype(np.uint8)
    g = rng.integers(0, 3, (10, 20, 20)).astype(np.uint8)
    whole = ed.confusion(p, g)
    parts = [ed.confusion(p[i:i + 2], g[i:i + 2], num_classes=3) for i in range(0, 10, 2)]
    assert sum(parts) == whole
    assert pickle.loads(pickle.dumps(whole)) == whole
    batch = ed.confusion(p, g, batch=True)
    assert batch.counts.shape == (10, 3, 4)
    assert batch.total() == whole


def test_ignore_label_and_labels():
    p = np.array([[0, 1, 2, 255]], np.uint8)
    g = np.array([[0, 1, 255, 2]], np.uint8)
    c = ed.confusion(p, g, num_classes=3, ignore_label=255)
    assert c.counts.sum(axis=-1).tolist() == [2, 2, 2]
    assert ed.confusion(p, g, num_classes=3, ignore_label=255, labels=[2]).counts.shape == (1, 4)


def test_probability_maps():
    rng = np.random.default_rng(3)
    p = rng.random((2, 3, 8, 8))
    g = (rng.random((2, 3, 8, 8)) > 0.5).astype(np.float64)
    c = ed.confusion(p, g, threshold=0.4, batch=True)
    for n in range(2):
        for ch in range(3):
            a, b = p[n, ch] >= 0.4, g[n, ch] >= 0.4
            assert c.counts[n, ch, 0] == (a & b).sum()
    with pytest.raises(ValueError, match="element|NaN|outside|\\[0, 1\\]"):
        ed.confusion(p * 3, g, threshold=0.5, batch=True)


def test_bad_inputs():
    a = np.zeros((3, 3), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        ed.confusion(a, np.zeros((3, 4), np.uint8))
    with pytest.raises(TypeError):
        ed.confusion(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="label"):
        ed.confusion(a, a + 7, num_classes=3)
    with pytest.raises(ValueError, match="metric"):
        ed.confusion(a, a).metric("f7")


def test_agrees_with_monai_dice_metric():
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(4)
    p = rng.integers(0, 4, (3, 10, 12, 9))
    g = rng.integers(0, 4, (3, 10, 12, 9))
    g[1][g[1] == 2] = 0  # label 2 absent in case 1's reference
    oh = lambda v: torch.nn.functional.one_hot(torch.from_numpy(v), 4).permute(0, 4, 1, 2, 3)
    for ignore_empty, policy in [(True, "monai_ignore_empty"), (False, "monai")]:
        m = metrics.DiceMetric(include_background=False, reduction="none", ignore_empty=ignore_empty)
        want = m(oh(p), oh(g)).numpy()
        got = ed.confusion(p.astype(np.uint8), g.astype(np.uint8), batch=True,
                           include_background=False, policy=policy).dice
        np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "mean_batch", "sum_batch", "mean_channel", "sum_channel", "none"])
@pytest.mark.parametrize("ignore_empty,include_background", [(True, True), (False, False), (True, False)])
def test_dice_metric_matches_monai(reduction, ignore_empty, include_background):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    from exactdice.torch import DiceMetric

    g = torch.Generator().manual_seed(5)
    ours = DiceMetric(include_background=include_background, reduction=reduction, get_not_nans=True,
                      ignore_empty=ignore_empty)
    labels = DiceMetric(include_background=include_background, reduction=reduction, get_not_nans=True,
                        ignore_empty=ignore_empty, num_classes=4)
    theirs = metrics.DiceMetric(include_background=include_background, reduction=reduction,
                                get_not_nans=True, ignore_empty=ignore_empty)
    oh = lambda v: torch.nn.functional.one_hot(v, 4).movedim(-1, 1)
    for _ in range(3):
        p = torch.randint(0, 4, (3, 9, 8, 7), generator=g)
        y = torch.randint(0, 4, (3, 9, 8, 7), generator=g)
        y[0][y[0] == 3] = 1  # label 3 absent in one reference
        p[1][p[1] == 3] = 1
        y[1][y[1] == 3] = 1  # and absent in both in another case
        ours(oh(p), oh(y))
        labels(p[:, None], y[:, None])
        theirs(oh(p), oh(y))
    want, want_n = theirs.aggregate()
    for m in (ours, labels):
        got, got_n = m.aggregate()
        torch.testing.assert_close(got.to(want.dtype), want, rtol=1e-6, atol=1e-6, equal_nan=True)
        torch.testing.assert_close(got_n.to(want_n.dtype), want_n)


def test_dice_metric_in_monais_validation_loop():
    """MONAI's tutorial loop, one import changed: decollated lists of one-hot cases (also of
    different sizes), float32 results, ``get_buffer``, the same numbers as MONAI's."""
    torch = pytest.importorskip("torch")
    monai = pytest.importorskip("monai")
    from monai.data import decollate_batch
    from monai.transforms import AsDiscrete

    from exactdice.torch import DiceMetric

    post_pred, post_label = AsDiscrete(argmax=True, to_onehot=4), AsDiscrete(to_onehot=4)
    # MONAI returns MetaTensors (a torch.Tensor subclass) from some calls: compare plain tensors.
    plain = lambda t: t.as_tensor() if hasattr(t, "as_tensor") else t
    ours = DiceMetric(include_background=False, reduction="mean", get_not_nans=True)
    theirs = monai.metrics.DiceMetric(include_background=False, reduction="mean", get_not_nans=True)
    g = torch.Generator().manual_seed(3)
    for size in [(9, 8, 7), (9, 8, 7), (5, 6, 4)]:
        out = torch.randn((2, 4) + size, generator=g)
        lab = torch.randint(0, 4, (2, 1) + size, generator=g)
        y_pred = [post_pred(i) for i in decollate_batch(out)]
        y = [post_label(i) for i in decollate_batch(lab)]
        mine = ours(y_pred=y_pred, y=y)
        want = theirs(y_pred=y_pred, y=y)
        assert mine.dtype == torch.float32 and mine.shape == want.shape
        torch.testing.assert_close(mine, plain(want), rtol=1e-6, atol=1e-6, equal_nan=True)
    # Cases of different sizes in one list.
    y_pred = [post_pred(torch.randn((4,) + s, generator=g)) for s in [(6, 5, 4), (3, 7, 2)]]
    y = [post_label(torch.randint(0, 4, (1,) + s, generator=g)) for s in [(6, 5, 4), (3, 7, 2)]]
    torch.testing.assert_close(ours(y_pred, y), plain(theirs(y_pred, y)), rtol=1e-6, atol=1e-6, equal_nan=True)
    (v, n), (tv, tn) = ours.aggregate(), theirs.aggregate()
    assert v.dtype == n.dtype == torch.float32
    torch.testing.assert_close(v, plain(tv), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(n, plain(tn))
    torch.testing.assert_close(ours.get_buffer(), plain(theirs.get_buffer()), rtol=1e-6, atol=1e-6,
                               equal_nan=True)
    ours.reset()
    assert ours.get_buffer() is None
    with pytest.raises(ValueError, match="lists"):
        ours(y_pred, y[0])
    with pytest.raises(ValueError, match="cases"):
        ours(y_pred, y[:1])


def _surface_voxels(mask):
    """Voxels of the mask with a face neighbour outside it or outside the image."""
    padded = np.pad(mask, 1)
    inner = np.ones_like(mask)
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis=axis)[tuple(slice(1, -1) for _ in range(mask.ndim))]
    return np.argwhere(mask & ~inner)


def test_surface_distances_against_brute_force():
    rng = np.random.default_rng(7)
    for case in range(20):
        shape = (6, 7, 8) if case % 2 else (9, 11)
        spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, len(shape)))
        p = (rng.random(shape) < 0.35).astype(np.uint8) * 2
        t = (rng.random(shape) < 0.35).astype(np.uint8) * 2
        r = ed.surface_distances(p, t, spacing=spacing, num_classes=3)
        assert r.status.tolist()[1] == 3  # label 1 is in neither
        a, b = _surface_voxels(p == 2) * spacing, _surface_voxels(t == 2) * spacing
        d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        ab, ba = d.min(1), d.min(0)
        assert r.hausdorff[2] == pytest.approx(max(ab.max(), ba.max()), rel=1e-12)
        assert r.assd[2] == pytest.approx(np.concatenate([ab, ba]).mean(), rel=1e-12)
        assert r.masd[2] == pytest.approx((ab.mean() + ba.mean()) / 2, rel=1e-12)
        assert r.nsd[2] == pytest.approx(((ab <= 1.0).sum() + (ba <= 1.0).sum()) / (len(ab) + len(ba)), rel=1e-12)


def test_surface_distances_against_medpy():
    binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(8)
    zz, yy, xx = np.ogrid[:20, :24, :18]
    for _ in range(5):
        c = rng.uniform(6, 12, 3)
        p = ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 / 1.5 + (xx - c[2]) ** 2 < 30).astype(np.uint8)
        t = ((zz - c[0] - 1) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 / 1.3 < 28).astype(np.uint8)
        spacing = (1.5, 0.8, 1.1)
        r = ed.surface_distances(p, t, spacing=spacing, num_classes=2)
        assert r.hausdorff[1] == pytest.approx(binary.hd(p, t, voxelspacing=spacing), rel=1e-12)
        assert r.hd_pooled[1] == pytest.approx(binary.hd95(p, t, voxelspacing=spacing), rel=1e-9)
        assert r.assd[1] == pytest.approx(binary.assd(p, t, voxelspacing=spacing), rel=1e-12)


def test_agrees_with_the_rust_cli():
    """The same counts and scores as `dice eval` (dice-core through the Rust CLI) on files."""
    import json
    import os
    import subprocess
    import tempfile

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    exe = next((p for p in (os.path.join(root, "target", d, "dice") for d in ("debug", "release")) if os.path.exists(p)), None)
    if exe is None:
        pytest.skip("dice-cli is not built (cargo build -p dice-cli)")
    rng = np.random.default_rng(12)
    with tempfile.TemporaryDirectory() as d:
        p = rng.integers(0, 4, (9, 10, 11)).astype(np.uint8)
        g = rng.integers(0, 4, (9, 10, 11)).astype(np.uint8)
        g[g == 3] = 0  # label 3 only predicted
        np.save(os.path.join(d, "p.npy"), p)
        np.save(os.path.join(d, "g.npy"), g)
        out = subprocess.run([exe, "eval", os.path.join(d, "p.npy"), os.path.join(d, "g.npy"), "--format", "json"],
                             capture_output=True, text=True, check=True)
        labels = json.loads(out.stdout)["cases"][0]["labels"]
        c = ed.confusion(p, g, num_classes=4)
        for row in labels:
            l = row["label"]
            assert [row["tp"], row["fp"], row["fn"], row["tn"]] == c.counts[l].tolist()
            for m in ("dice", "iou", "precision", "recall", "volume_similarity"):
                if isinstance(row[m], float):
                    assert getattr(c, m)[l] == row[m], (l, m)
