"""The dask example on a LocalCluster of 2 worker processes equals one process."""

import os
import sys
import tempfile

import numpy as np
import pytest

import exactdice as ed

distributed = pytest.importorskip("dask.distributed")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
from dask_folder import evaluate_folder  # noqa: E402


def test_folder_on_a_local_cluster_equals_one_process():
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        pdir, rdir = os.path.join(d, "pred"), os.path.join(d, "ref")
        os.makedirs(pdir)
        os.makedirs(rdir)
        cases = []
        for k in range(11):
            ref = rng.integers(0, 4, (12, 10, 9)).astype(np.uint8)
            pred = np.where(rng.random(ref.shape) < 0.8, ref, rng.integers(0, 4, ref.shape)).astype(np.uint8)
            np.save(os.path.join(pdir, f"case{k:02d}.npy"), pred)
            np.save(os.path.join(rdir, f"case{k:02d}.npy"), ref)
            cases.append((pred, ref))
        want = sum(ed.confusion(p, r, num_classes=4) for p, r in cases)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            total, per_case = evaluate_folder(client, pdir, rdir, 4, fan_in=3)
        assert total == want
        assert np.array_equal(total.dice, want.dice)
        assert len(per_case) == 11
        with pytest.raises(FileNotFoundError):
            os.remove(os.path.join(pdir, "case03.npy"))
            with distributed.Client(processes=False, dashboard_address=None) as client:
                evaluate_folder(client, pdir, rdir, 4)
