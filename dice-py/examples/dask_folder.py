#!/usr/bin/env python3
"""Evaluate a folder of label volumes on a dask.distributed cluster, exactly.

Each task loads one (prediction, reference) pair and returns its exact confusion counts (an
``exactdice.Confusion``, small and picklable); the counts are merged with ``+``, in a tree, on
the workers. Integer counts merge exactly, so the pooled Dice is the same on one machine, on a
``LocalCluster`` or on a real cluster, whatever the order the tasks finish in.

    python dask_folder.py PRED_DIR REF_DIR NUM_CLASSES [SCHEDULER_ADDRESS]

Pairs are the ``.npy`` files of the same name in both folders.
"""

import os
import sys

import numpy as np

import exactdice as ed


def pair_counts(pred_path: str, ref_path: str, num_classes: int) -> ed.Confusion:
    """The per-label counts of one case (runs on a worker)."""
    return ed.confusion(np.load(pred_path), np.load(ref_path), num_classes=num_classes)


def merge(parts):
    """Exact merge of a list of counts (runs on a worker)."""
    return sum(parts)


def evaluate_folder(client, pred_dir: str, ref_dir: str, num_classes: int, fan_in: int = 8):
    """Pooled counts over every pair, and the per-case counts in name order."""
    names = sorted(n for n in os.listdir(ref_dir) if n.endswith(".npy"))
    missing = [n for n in names if not os.path.exists(os.path.join(pred_dir, n))]
    if missing:
        raise FileNotFoundError(f"no prediction for {missing[:3]} in {pred_dir}")
    futures = client.map(
        pair_counts,
        [os.path.join(pred_dir, n) for n in names],
        [os.path.join(ref_dir, n) for n in names],
        num_classes=num_classes,
        pure=False,
    )
    level = futures
    while len(level) > 1:
        level = [client.submit(merge, level[i:i + fan_in]) for i in range(0, len(level), fan_in)]
    total = level[0].result()
    return total, dict(zip(names, client.gather(futures)))


if __name__ == "__main__":
    from dask.distributed import Client, LocalCluster

    pred_dir, ref_dir, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Client(sys.argv[4]) if len(sys.argv) > 4 else Client(LocalCluster(n_workers=2, threads_per_worker=1))
    total, per_case = evaluate_folder(client, pred_dir, ref_dir, k)
    print("pooled Dice per label:", total.dice)
    print("mean of per-case Dice:", [ed.mean(np.stack([c.dice[l] for c in per_case.values()])) for l in range(k)])
