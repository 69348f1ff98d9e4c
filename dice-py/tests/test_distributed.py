"""Data-parallel exactness: two processes on the gloo backend (CPU) give the loss and the input
gradients of one process on the concatenated batch, to 1e-12 in float64."""

import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from exactdice.torch import DiceLoss, DiceMetric, GeneralizedDiceLoss, TverskyLoss

OPTIONS = [
    ("dice", dict(softmax=True, to_onehot_y=True, batch=True)),
    ("dice", dict(softmax=True, to_onehot_y=True, batch=True, include_background=False, jaccard=True)),
    ("dice", dict(softmax=True, to_onehot_y=True)),
    ("dice", dict(sigmoid=True, to_onehot_y=True, reduction="sum")),
    ("gdl", dict(softmax=True, to_onehot_y=True, batch=True)),
    ("tversky", dict(softmax=True, to_onehot_y=True, batch=True, alpha=0.3, beta=0.7)),
]
LOSSES = {"dice": DiceLoss, "gdl": GeneralizedDiceLoss, "tversky": TverskyLoss}


def _data():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 6, 5, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (4, 1, 6, 5, 4), generator=g)
    y[:2][y[:2] == 2] = 0  # a class absent on rank 0's half
    return x, y


def _worker(rank, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    x, y = _data()
    half = slice(2 * rank, 2 * rank + 2)
    for k, (name, opts) in enumerate(OPTIONS):
        loss_fn = LOSSES[name](**opts, process_group=True)
        a = x[half].clone().requires_grad_(True)
        loss = loss_fn(a, y[half])
        loss.backward()
        torch.save((loss.detach(), a.grad), os.path.join(out_dir, f"{k}-{rank}.pt"))
    # DiceMetric over 5 cases: DistributedSampler gives each rank 3, repeating case 0.
    cases, labels = _cases()
    sampler = torch.utils.data.distributed.DistributedSampler(range(5), num_replicas=2, rank=rank, shuffle=False)
    metric = DiceMetric(num_classes=3, reduction="mean_batch", get_not_nans=True, process_group=True)
    for i in sampler:
        metric(cases[i:i + 1], labels[i:i + 1], case_index=[i])
    torch.save(metric.aggregate(), os.path.join(out_dir, f"metric-{rank}.pt"))
    dist.destroy_process_group()


def _cases():
    g = torch.Generator().manual_seed(9)
    return torch.randint(0, 3, (5, 1, 7, 6), generator=g), torch.randint(0, 3, (5, 1, 7, 6), generator=g)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_two_ranks_equal_one_process_on_the_whole_batch():
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(_free_port(), d), nprocs=2, join=True)
        x, y = _data()
        for k, (name, opts) in enumerate(OPTIONS):
            a = x.clone().requires_grad_(True)
            whole = LOSSES[name](**opts)(a, y)
            whole.backward()
            for rank in range(2):
                loss, grad = torch.load(os.path.join(d, f"{k}-{rank}.pt"))
                torch.testing.assert_close(loss, whole.detach(), rtol=1e-12, atol=1e-12)
                torch.testing.assert_close(grad, a.grad[2 * rank:2 * rank + 2], rtol=1e-12, atol=1e-12)
        cases, labels = _cases()
        single = DiceMetric(num_classes=3, reduction="mean_batch", get_not_nans=True)
        single(cases, labels)
        want = single.aggregate()
        for rank in range(2):
            got = torch.load(os.path.join(d, f"metric-{rank}.pt"))
            torch.testing.assert_close(got[0], want[0], rtol=0, atol=0)
            torch.testing.assert_close(got[1], want[1], rtol=0, atol=0)
        # Without deduplication the repeated case would count twice: the figures differ.
        twice = DiceMetric(num_classes=3, reduction="mean_batch", get_not_nans=True)
        twice(torch.cat([cases, cases[:1]]), torch.cat([labels, labels[:1]]))
        assert not torch.equal(twice.aggregate()[1], want[1])
