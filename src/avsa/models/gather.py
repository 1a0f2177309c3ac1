"""Gather contrastive negatives from every process, keeping gradients.

Under DDP each process holds a slice of the global batch. The losses compare
their local queries with the keys of *all* processes, so the keys are gathered
with :func:`all_gather_with_grad`: forward concatenates the slices of every
rank in rank order; backward sums the incoming gradient over ranks and returns
this rank's slice. DDP then averages parameter gradients over ranks, so the
gradient equals that of the mean loss over the global batch computed in one
process. Without an initialised process group everything is a no-op.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from avsa.errors import InputError


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllGather(torch.autograd.Function):
    """Concatenate ``x`` of every rank along dim 0; backward = summed gradient, local slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, size = world()
        ctx.rank, ctx.n = rank, x.shape[0]
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # gloo has no reduce_scatter; same result
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Gather ``x`` from every process, differentiably.

    Parameters
    ----------
    x : Tensor, shape (n, ...)
        This rank's slice; every rank must pass the same shape.

    Returns
    -------
    Tensor, shape (world_size·n, ...)
        Rank 0's rows first; ``x`` itself when not distributed.

    Raises
    ------
    InputError
        If the ranks hold different shapes (use ``drop_last`` batches).
    """
    rank, size = world()
    if size == 1:
        return x
    shape = torch.tensor(list(x.shape), dtype=torch.long, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(size)]
    dist.all_gather(shapes, shape)
    if any(not torch.equal(s, shape) for s in shapes):
        raise InputError(
            f"all_gather_with_grad: ranks hold different shapes {[tuple(s.tolist()) for s in shapes]}; "
            "every process needs the same local batch size"
        )
    return _AllGather.apply(x)
