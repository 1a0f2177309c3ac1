"""Normalisation layers chosen at training time.

SyncBatchNorm (statistics over the global batch under DDP) runs only on GPUs.
``group`` replaces every BatchNorm with a GroupNorm whose statistics are per
sample, so a multi-process run equals a single-process one exactly — useful on
CPU clusters and for small per-process batches.
"""

from __future__ import annotations

from torch import nn


def _groups(channels: int, most: int = 32, per_group: int = 8) -> int:
    """At most ``most`` groups of at least ``per_group`` channels (fewer for narrow layers),
    so statistics stay well defined where tiny models shrink a map to 1×1×1."""
    groups = max(1, min(most, channels // per_group))
    while channels % groups:
        groups -= 1
    return groups


def batchnorm_to_groupnorm(module: nn.Module, *, groups: int = 32) -> nn.Module:
    """Replace every ``BatchNorm1d/2d/3d`` in ``module`` by ``GroupNorm`` (in place; returns it).

    Groups hold at least 8 channels (at most ``groups`` of them); affine parameters are kept
    (γ, β copied), running statistics dropped.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and child.num_features > 0:
            gn = nn.GroupNorm(_groups(child.num_features, most=groups), child.num_features, eps=child.eps,
                              affine=child.affine)
            if child.affine:
                gn.weight.data.copy_(child.weight.data)
                gn.bias.data.copy_(child.bias.data)
            setattr(module, name, gn)
        else:
            batchnorm_to_groupnorm(child, groups=groups)
    return module
