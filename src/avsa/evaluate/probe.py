"""The one downstream harness: a linear probe on frozen embeddings, or fine-tuning.

Every downstream task (EigenScape, TAU, UCF101, HMDB51, the synthetic tasks)
runs through :func:`run_probe`::

    result = run_probe(encoder, task.train, task.test, inputs, n_classes=len(task.classes))

- ``encoder``: an ``nn.Module`` mapping a batch ``(N, ...)`` to embeddings
  ``(N, D)``; or a sequence of them for early fusion (TAU audio + video):
  their embeddings are concatenated.
- ``inputs(item)``: the model input of one item, a tensor ``(n_clips, ...)``
  (one or several clips/windows per item), or a tuple of such tensors — one
  per encoder, same ``n_clips``.
- ``mode="linear"``: encoders frozen (eval mode, no gradient); embeddings are
  extracted once, standardised with the training mean/std, and a linear
  classifier is trained on them (Adam mini-batches or full-batch L-BFGS, L2
  weight decay). Afterwards the harness checks that no encoder tensor moved,
  as MoCo's linear classification does.
- ``mode="finetune"``: encoders + linear head trained end to end (Adam; the
  encoders at ``backbone_lr``, the head at ``lr``).

Each clip is labelled with its item's label for training. At test time, clip
accuracy scores every clip alone; item (video) accuracy averages the softmax
probabilities of an item's clips. Every accuracy carries a 95 % interval
(:mod:`avsa.evaluate.intervals`), resampling ``Item.group`` when groups hold
several items or clips.

:func:`score_logits` turns per-clip logits into a :class:`ProbeResult` (for
callers with their own classifier); :func:`avsa.models.heads.load_weights` loads pretrained weights into an
encoder, with ``optional=("fc.",)`` refusing a checkpoint that misses anything but classifier keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from avsa.errors import InputError
from avsa.evaluate.datasets.common import Item
from avsa.evaluate.intervals import Interval, accuracy_interval

MODES = ("linear", "finetune")
OPTIMIZERS = ("adam", "lbfgs")
InputFn = Callable[[Item], "torch.Tensor | Sequence[torch.Tensor]"]


@dataclass(frozen=True)
class ProbeResult:
    """What a probe run measured on the test items.

    Attributes
    ----------
    mode : str
        ``"linear"`` or ``"finetune"``.
    clip_accuracy : Interval
        Every test clip scored alone (interval resamples item groups).
    item_accuracy : Interval
        Clip probabilities averaged per item (video-level accuracy).
    per_class_accuracy : np.ndarray, shape (K,)
        Item-level recall of each class; NaN for a class with no test item.
    confusion : np.ndarray, shape (K, K), int
        Item-level counts, rows = true class, columns = predicted.
    item_ids : tuple of str
    item_predictions : np.ndarray, shape (n_items,), int
    n_items, n_clips : int
    """

    mode: str
    clip_accuracy: Interval
    item_accuracy: Interval
    per_class_accuracy: np.ndarray
    confusion: np.ndarray
    item_ids: tuple[str, ...]
    item_predictions: np.ndarray
    n_items: int
    n_clips: int


def run_probe(
    encoder: nn.Module | Sequence[nn.Module],
    train: Sequence[Item],
    test: Sequence[Item],
    inputs: InputFn,
    *,
    n_classes: int,
    mode: str = "linear",
    epochs: int = 50,
    lr: float = 1e-2,
    backbone_lr: float = 1e-4,
    weight_decay: float = 1e-4,
    optimizer: str = "adam",
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    confidence: float = 0.95,
    n_boot: int = 2000,
    progress: bool = False,
) -> ProbeResult:
    """Train a classifier on ``train`` and score it on ``test``.

    Parameters
    ----------
    encoder : nn.Module or sequence of nn.Module
        ``(N, ...) → (N, D_i)``; several = early fusion (concatenated).
    train, test : sequence of Item
        Labels in ``0..n_classes-1``.
    inputs : callable
        ``inputs(item)`` → tensor ``(n_clips, ...)`` or a tuple of them (one
        per encoder).
    n_classes : int
    mode : {"linear", "finetune"}
    epochs : int
        Passes over the training clips (L-BFGS: outer steps of 20 iterations).
    lr : float
        Learning rate of the linear classifier / head.
    backbone_lr : float
        Learning rate of the encoders when fine-tuning.
    weight_decay : float
        L2 penalty on the classifier (and encoders when fine-tuning).
    optimizer : {"adam", "lbfgs"}
        L-BFGS is only for ``mode="linear"`` (full batch).
    batch_size : int
        Clips per forward pass / training step.
    seed : int
        Same seed, same inputs → same result (global RNG state is restored).
    device : str or torch.device
    confidence, n_boot : float, int
        Interval level and bootstrap replicates.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    ProbeResult

    Raises
    ------
    InputError
        Unknown mode/optimizer, empty item lists, out-of-range labels,
        inputs not matching the encoders.
    RuntimeError
        If a frozen encoder changed during a linear probe (a harness bug).
    """
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if optimizer not in OPTIMIZERS or (optimizer == "lbfgs" and mode != "linear"):
        raise InputError(f"optimizer must be one of {OPTIMIZERS} (lbfgs only with mode='linear'), got {optimizer!r}")
    if not train or not test:
        raise InputError(f"need training and test items, got {len(train)} and {len(test)}")
    for item in list(train) + list(test):
        if not 0 <= item.label < n_classes:
            raise InputError(f"item {item.id}: label {item.label} outside 0..{n_classes - 1}")
    encoders = nn.ModuleList([encoder] if isinstance(encoder, nn.Module) else list(encoder)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        if mode == "linear":
            reference = {k: v.detach().clone() for k, v in encoders.state_dict().items()}
            train_emb, train_owner = _embed(encoders, train, inputs, batch_size, device, progress, "train")
            test_emb, test_owner = _embed(encoders, test, inputs, batch_size, device, progress, "test")
            mean, std = train_emb.mean(0), train_emb.std(0).clamp_min(1e-6)
            head = nn.Linear(train_emb.shape[1], n_classes).to(device)
            labels = torch.tensor([train[i].label for i in train_owner.tolist()], device=device)
            _fit_linear(head, (train_emb - mean) / std, labels, epochs=epochs, lr=lr, weight_decay=weight_decay,
                        optimizer=optimizer, batch_size=batch_size, generator=generator)
            with torch.no_grad():
                test_logits = head((test_emb - mean) / std)
            check_unchanged(reference, encoders)
        else:
            head = _finetune(encoders, train, inputs, n_classes=n_classes, epochs=epochs, lr=lr,
                             backbone_lr=backbone_lr, weight_decay=weight_decay, batch_size=batch_size,
                             generator=generator, device=device, progress=progress)
            test_emb, test_owner = _embed(encoders, test, inputs, batch_size, device, progress, "test")
            with torch.no_grad():
                test_logits = head(test_emb)
    return score_logits(test, test_logits.cpu(), test_owner.cpu(), n_classes=n_classes, mode=mode,
                        confidence=confidence, n_boot=n_boot, seed=seed)


def check_unchanged(reference: dict[str, torch.Tensor], module: nn.Module) -> None:
    """Raise if any tensor of ``module``'s state differs from ``reference``.

    Parameters
    ----------
    reference : dict
        A cloned ``state_dict`` taken before the linear probe.
    module : nn.Module

    Raises
    ------
    RuntimeError
        Naming the tensors that moved (the frozen backbone must not).
    """
    state = module.state_dict()
    moved = [k for k, v in reference.items() if k not in state or not torch.equal(v.to(state[k].device), state[k])]
    if moved or set(state) != set(reference):
        raise RuntimeError(f"frozen encoder changed during the linear probe: {moved or sorted(set(state) ^ set(reference))}")


def _as_tuple(value, n_encoders: int, item: Item) -> tuple[torch.Tensor, ...]:
    parts = (value,) if isinstance(value, torch.Tensor) else tuple(value)
    if len(parts) != n_encoders or len({p.shape[0] for p in parts}) != 1:
        raise InputError(f"inputs({item.id}) gave {len(parts)} tensor(s) with leading sizes "
                         f"{[tuple(p.shape)[:1] for p in parts]}; expected {n_encoders} with equal n_clips")
    return parts


def _batches(items: Sequence[Item], order: Sequence[int], inputs: InputFn, n_encoders: int, batch_size: int):
    """Yield (tuple of input tensors, owner item indices) of ≈ batch_size clips."""
    pending: list[tuple[torch.Tensor, ...]] = []
    owners: list[int] = []
    count = 0
    for index in order:
        parts = _as_tuple(inputs(items[index]), n_encoders, items[index])
        pending.append(parts)
        owners.extend([index] * parts[0].shape[0])
        count += parts[0].shape[0]
        if count >= batch_size:
            yield tuple(torch.cat(p) for p in zip(*pending)), torch.tensor(owners)
            pending, owners, count = [], [], 0
    if pending:
        yield tuple(torch.cat(p) for p in zip(*pending)), torch.tensor(owners)


def _forward(encoders: nn.ModuleList, parts: tuple[torch.Tensor, ...], device) -> torch.Tensor:
    """(N, D) = concatenated embeddings of every encoder."""
    return torch.cat([enc(x.to(device)).flatten(1) for enc, x in zip(encoders, parts)], dim=1)


def _embed(encoders, items, inputs, batch_size, device, progress, name):
    """Frozen embeddings (M, D) of every clip and the owner item of each (M,)."""
    encoders.eval()
    embeddings, owners = [], []
    with torch.no_grad():
        batches = _batches(items, range(len(items)), inputs, len(encoders), batch_size)
        for parts, owner in tqdm(batches, desc=f"embed {name}", disable=not progress):
            embeddings.append(_forward(encoders, parts, device).float())
            owners.append(owner)
    return torch.cat(embeddings), torch.cat(owners).to(device)


def _fit_linear(head, x, y, *, epochs, lr, weight_decay, optimizer, batch_size, generator):
    """Train ``head`` on fixed features x (M, D) with labels y (M,)."""
    loss_fn = nn.CrossEntropyLoss()
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_fn(head(x), y) + 0.5 * weight_decay * head.weight.pow(2).sum()
            loss.backward()
            return loss

        for _ in range(epochs):
            opt.step(closure)
        return
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        for batch in torch.randperm(x.shape[0], generator=generator).split(batch_size):
            batch = batch.to(x.device)
            opt.zero_grad()
            loss_fn(head(x[batch]), y[batch]).backward()
            opt.step()


def _finetune(encoders, train, inputs, *, n_classes, epochs, lr, backbone_lr, weight_decay, batch_size,
              generator, device, progress) -> nn.Linear:
    """Train encoders + a linear head end to end; return the head."""
    with torch.no_grad():
        parts, _ = next(_batches(train, [0], inputs, len(encoders), 1))
        encoders.eval()
        dim = _forward(encoders, parts, device).shape[1]
    head = nn.Linear(dim, n_classes).to(device)
    opt = torch.optim.Adam([{"params": encoders.parameters(), "lr": backbone_lr},
                            {"params": head.parameters(), "lr": lr}], weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.tensor([item.label for item in train])
    for _ in tqdm(range(epochs), desc="finetune", disable=not progress):
        encoders.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for parts, owner in _batches(train, order, inputs, len(encoders), batch_size):
            opt.zero_grad()
            loss_fn(head(_forward(encoders, parts, device)), labels[owner].to(device)).backward()
            opt.step()
    encoders.eval()
    return head


def score_logits(
    test: Sequence[Item],
    logits: torch.Tensor,
    owner: torch.Tensor,
    *,
    n_classes: int,
    mode: str = "linear",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> ProbeResult:
    """Clip and item accuracies, per-class accuracy and confusion from clip logits.

    Parameters
    ----------
    test : sequence of Item
    logits : torch.Tensor, shape (M, K)
        One row per test clip.
    owner : torch.Tensor of int, shape (M,)
        Index into ``test`` of each clip's item.
    n_classes : int
    mode : str
        Recorded in the result.
    confidence, n_boot, seed
        For the intervals: item accuracy resamples ``Item.group`` when groups
        hold several items (else Wilson); clip accuracy resamples the coarser
        of groups and items.

    Returns
    -------
    ProbeResult
        Item predictions = argmax of the mean softmax over the item's clips.
    """
    if logits.ndim != 2 or logits.shape[1] != n_classes or owner.shape != (logits.shape[0],):
        raise InputError(f"logits must be (M, {n_classes}) with one owner per row, got {tuple(logits.shape)} "
                         f"and {tuple(owner.shape)}")
    if set(owner.tolist()) != set(range(len(test))):
        raise InputError("every test item needs at least one clip (owner must cover 0..len(test)-1)")
    labels = np.array([item.label for item in test])
    groups = np.array([item.group for item in test])
    owner = owner.numpy()
    clip_correct = logits.argmax(1).numpy() == labels[owner]
    probs = torch.softmax(logits.double(), dim=1).numpy()
    item_probs = np.zeros((len(test), n_classes))
    np.add.at(item_probs, owner, probs)
    item_probs /= np.bincount(owner, minlength=len(test))[:, None]
    predictions = item_probs.argmax(1)
    confusion = np.zeros((n_classes, n_classes), int)
    np.add.at(confusion, (labels, predictions), 1)
    totals = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(totals > 0, np.diag(confusion) / totals, np.nan)
    clip_groups = groups[owner] if len(np.unique(groups)) < len(test) else owner
    return ProbeResult(
        mode=mode,
        clip_accuracy=accuracy_interval(clip_correct, groups=clip_groups, n_boot=n_boot, confidence=confidence, seed=seed),
        item_accuracy=accuracy_interval(predictions == labels, groups=groups, n_boot=n_boot,
                                        confidence=confidence, seed=seed),
        per_class_accuracy=per_class,
        confusion=confusion,
        item_ids=tuple(item.id for item in test),
        item_predictions=predictions,
        n_items=len(test),
        n_clips=int(owner.size),
    )
