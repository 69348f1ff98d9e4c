"""A pytest plugin that binds exactdice's classes in place of MONAI's before MONAI's own unit
tests are collected (``python -m pytest -p swap …`` with this folder on ``sys.path``).

MONAI's tests import the names from ``monai.losses`` and ``monai.metrics`` (``from
monai.losses import DiceLoss``), so replacing those module attributes before collection makes
every test run on exactdice, unchanged. ``DICE_MONAI_SWAP=0`` binds nothing (MONAI's own
result, the baseline the swapped run is compared with). ``DICE_MONAI_COMPAT=1`` binds them
with the keywords that select MONAI's behaviour where ours differs on purpose
(``GeneralizedDiceLoss(all_absent="zero")``, the surface metrics' ``empty="monai"``)."""

from __future__ import annotations

import functools
import os

import monai.losses
import monai.metrics
import monai.metrics.hausdorff_distance
import monai.metrics.meandice
import monai.metrics.surface_dice
import monai.metrics.surface_distance

import exactdice.torch as ed

#: (module, name) → exactdice's object of the same name (the package and the submodules
#: MONAI's tests import from).
SWAPS = {
    monai.metrics.meandice: ["DiceMetric", "compute_dice"],
    monai.metrics.hausdorff_distance: ["HausdorffDistanceMetric", "compute_hausdorff_distance"],
    monai.metrics.surface_distance: ["SurfaceDistanceMetric", "compute_average_surface_distance"],
    monai.metrics.surface_dice: ["SurfaceDiceMetric", "compute_surface_dice"],
    monai.losses: [
        "DiceLoss",
        "GeneralizedDiceLoss",
        "TverskyLoss",
        "DiceCELoss",
        "DiceFocalLoss",
    ],
    monai.metrics: [
        "DiceMetric",
        "compute_dice",
        "HausdorffDistanceMetric",
        "compute_hausdorff_distance",
        "SurfaceDistanceMetric",
        "compute_average_surface_distance",
        "SurfaceDiceMetric",
        "compute_surface_dice",
    ],
}


#: The keywords that select MONAI's behaviour where exactdice's default differs on purpose.
COMPAT = {
    "GeneralizedDiceLoss": {"all_absent": "zero"},
    "HausdorffDistanceMetric": {"empty": "monai"},
    "compute_hausdorff_distance": {"empty": "monai"},
    "SurfaceDistanceMetric": {"empty": "monai"},
    "compute_average_surface_distance": {"empty": "monai"},
}


def _with_defaults(obj, keywords):
    """`obj` (a class or a function) with other defaults for `keywords`."""
    if isinstance(obj, type):

        class Compat(obj):
            def __init__(self, *args, **kwargs):
                for k, v in keywords.items():
                    kwargs.setdefault(k, v)
                super().__init__(*args, **kwargs)

        Compat.__name__ = Compat.__qualname__ = obj.__name__
        return Compat
    return functools.partial(obj, **keywords)


def pytest_configure(config):
    if os.environ.get("DICE_MONAI_SWAP", "1") == "0":
        return
    compat = os.environ.get("DICE_MONAI_COMPAT") == "1"
    for module, names in SWAPS.items():
        for name in names:
            obj = getattr(ed, name)
            if compat and name in COMPAT:
                obj = _with_defaults(obj, COMPAT[name])
            setattr(module, name, obj)
