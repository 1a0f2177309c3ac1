"""Gradient-keeping all_gather: no-op in one process; with 2 gloo processes the
losses and (DDP-averaged) gradients equal one process holding the global batch."""

import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from avsa.models.gather import all_gather_with_grad, world
from avsa.models.heads import AVSAEmbeddings
from avsa.models.losses import avc_loss, avsa_loss

WORLD = 2


def global_inputs():
    """A global batch of 4 clips x 4 crops (AVSA) and 6 pairs (AVC)."""
    g = torch.Generator().manual_seed(3)
    avsa = [torch.randn(4, 4, 8, generator=g) for _ in range(4)]
    avc = [torch.randn(6, 8, generator=g) for _ in range(2)]
    return avsa, avc


def losses_and_grads(avsa, avc, negatives):
    """Losses, metrics and input gradients of the given (local or global) batch."""
    avsa = [t.clone().requires_grad_(True) for t in avsa]
    avc = [t.clone().requires_grad_(True) for t in avc]
    r1 = avsa_loss(AVSAEmbeddings(*avsa), negatives=negatives)
    r2 = avc_loss(*avc)
    (r1.loss + r2.loss).backward()
    return {
        "avsa_loss": r1.loss.detach(), "avc_loss": r2.loss.detach(),
        "avsa_acc": r1.metrics["avsa_acc"], "retrieval_acc": r1.metrics["retrieval_acc"],
        "avc_acc": r2.metrics["avc_acc"],
        "grads": [t.grad for t in avsa + avc],
    }


def test_single_process_gather_is_identity_with_gradient():
    assert world() == (0, 1)
    x = torch.randn(3, 2, requires_grad=True)
    y = all_gather_with_grad(x)
    assert y is x
    (y * torch.arange(6.0).reshape(3, 2)).sum().backward()
    assert torch.equal(x.grad, torch.arange(6.0).reshape(3, 2))


def _worker(rank, port, out_dir, negatives):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        avsa, avc = global_inputs()
        local_avsa = [t.chunk(WORLD)[rank] for t in avsa]
        local_avc = [t.chunk(WORLD)[rank] for t in avc]
        result = losses_and_grads(local_avsa, local_avc, negatives)
        # the gathered tensor itself: rank order, local rows in place
        x = torch.full((2, 3), float(rank), requires_grad=True)
        gathered = all_gather_with_grad(x)
        (gathered * (torch.arange(12.0).reshape(4, 3) + 10 * rank)).sum().backward()
        result["gathered"] = gathered.detach()
        result["gather_grad"] = x.grad
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("negatives", ["paper", "same-crop"])
def test_two_process_gather_matches_one_process(tmp_path, negatives):
    mp.spawn(_worker, args=(free_port(), str(tmp_path), negatives), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    avsa, avc = global_inputs()
    single = losses_and_grads(avsa, avc, negatives)

    # gathered values and the summed-then-sliced gradient of the gather itself
    for r, res in enumerate(ranks):
        assert torch.equal(res["gathered"], torch.cat([torch.zeros(2, 3), torch.ones(2, 3)]))
        weights = sum(torch.arange(12.0).reshape(4, 3) + 10 * s for s in range(WORLD))
        assert torch.equal(res["gather_grad"], weights[2 * r:2 * r + 2])

    # the mean of the per-rank losses (what DDP optimises) is the global loss
    for key in ("avsa_loss", "avc_loss"):
        assert torch.allclose(sum(res[key] for res in ranks) / WORLD, single[key], atol=1e-6), key
    for key in ("avsa_acc", "retrieval_acc", "avc_acc"):
        assert sum(res[key] for res in ranks) / WORLD == pytest.approx(single[key]), key
    # DDP averages gradients over ranks: rank r's slice of the global gradient
    for i, g_single in enumerate(single["grads"]):
        g_multi = torch.cat([res["grads"][i] for res in ranks]) / WORLD
        assert torch.allclose(g_multi, g_single, atol=1e-6), i
