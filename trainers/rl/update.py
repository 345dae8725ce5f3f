"""One P-GRPO optimizer update over a rollout batch: trajectory trees, packed forward, token-mean loss.

    trees = [build_tree(rows, pad_id) for rows in rows_per_trajectory]   # rows: harness.pgrpo.units_to_rows
    stats = update(model, optimizer, trees, num_tokens=T, ...)

Each trajectory's units are packed into ONE prefix tree (trainers/sft/packing.py: shared contexts are
forwarded once, the ancestor-only mask of trainers/sft/masks.py keeps every unit seeing exactly its own
context), with the trajectory's advantage and the stored log probability on every trained edge. One
forward and backward per tree; the gradients add up over the batch and are normalised by T, the
completion tokens of the whole batch (harness.pgrpo.pgrpo_loss), then one optimizer step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.pgrpo import RLRow, pgrpo_loss


@dataclass
class Tree:
    """One trajectory's packed tree: the collated batch (one row) plus per-token advantages and old
    log probabilities ([1, N] tensors; NaN where no stored value)."""

    batch: dict
    advantages: object
    old_logprobs: object
    num_tokens: int  # trained (completion) tokens

    @property
    def trains(self) -> bool:
        """False when every advantage is 0: the tree adds nothing to the gradient."""
        return bool((self.advantages != 0).any())


def build_tree(rows: list[RLRow], pad_id: int, mask: str = "dense") -> Tree:
    """Pack one trajectory's rows (its units) into one tree with per-token values; `mask` as in
    trainers/sft/collate.py ("dense", "flex", "auto"; the model's attention must match it)."""
    import torch

    from trainers.sft.collate import collate
    from trainers.sft.masks import resolve_mask_kind
    from trainers.sft.packing import IGNORE_INDEX, pack_units_valued
    from trainers.sft.units import Unit

    units = [Unit(r.prompt_ids, r.completion_ids) for r in rows]
    values = [list(zip(r.advantages, r.old_logprobs, strict=True)) for r in rows]
    row, flat = pack_units_valued(units, values, empty=(0.0, None))
    kind = resolve_mask_kind(mask, len(row))
    batch = collate([row], mask=kind, pad_id=pad_id, pad_to_multiple=128 if kind == "flex" else 1)
    flat += [(0.0, None)] * (batch["input_ids"].shape[1] - len(flat))  # padding: no loss
    adv = torch.tensor([[a for a, _ in flat]], dtype=torch.float32)
    old = torch.tensor([[math.nan if o is None else o for _, o in flat]], dtype=torch.float32)
    trained = int((batch["labels"] != IGNORE_INDEX).sum())
    return Tree(batch, adv, old, trained)


def token_logprobs(logits, labels):
    """(log pi of each position's label, mask of trained positions); labels are pre-shifted (-100 = none)."""
    import torch

    from trainers.sft.packing import IGNORE_INDEX

    mask = labels != IGNORE_INDEX
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * mask, mask


def tree_logprobs(model, tree: Tree):
    """Forward one tree: (token log probabilities, trained-token mask), both [1, N] on the model's device."""
    from trainers.sft.collate import model_inputs, move

    device = next(model.parameters()).device
    batch = move(tree.batch, device)
    out = model(**model_inputs(batch))
    return token_logprobs(out.logits, batch["labels"])


def update(model, optimizer, trees: list[Tree], num_tokens: int, *, index: int = 0, clip_low: float = 0.2,
           clip_high: float = 0.28, on_policy: bool = True, max_grad_norm: float | None = None,
           ref_model=None, reduce_grads=None) -> dict:  # fmt: skip
    """One optimizer step over all trees (update number `index` of this rollout batch).

    `on_policy`: the ratio is exactly 1 (one update per batch). Otherwise the old policy is the stored log
    probabilities; where none was stored (the appended EOS), update 0's own values stand in and are kept
    in the tree for the later updates. `ref_model`: also the KL to it (k3 estimate, monitor only).
    `reduce_grads(params)`: runs between backward and clipping (data parallelism: the sum over ranks).
    Returns loss, clipped tokens, grad norm, kl (None without ref_model)."""
    import torch

    device = next(model.parameters()).device
    model.train()
    optimizer.zero_grad(set_to_none=True)
    total_loss, clipped, kl_sum = 0.0, 0, 0.0
    for tree in trees:
        if not tree.trains and ref_model is None:
            continue
        with torch.set_grad_enabled(tree.trains):
            logp, mask = tree_logprobs(model, tree)
        if ref_model is not None:
            with torch.no_grad():
                ref_logp, _ = tree_logprobs(ref_model, tree)
                d = (ref_logp - logp.detach()) * mask
                kl_sum += float(((torch.exp(d) - d - 1) * mask).sum())
        if not tree.trains:
            continue
        old = None
        if not on_policy:
            old = tree.old_logprobs.to(device)
            if index == 0:
                old = torch.where(torch.isnan(old), logp.detach(), old)
                tree.old_logprobs = old.cpu()
        loss, n_clipped = pgrpo_loss(logp, old, tree.advantages.to(device), mask, num_tokens, clip_low, clip_high)
        loss.backward()
        total_loss += float(loss.detach())
        clipped += n_clipped
    params = [p for p in model.parameters() if p.requires_grad]
    if reduce_grads is not None:
        reduce_grads(params)
    if max_grad_norm is not None:
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    else:
        grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))) \
            if any(p.grad is not None for p in params) else 0.0  # fmt: skip
    optimizer.step()
    return {"loss": total_loss, "clipped_tokens": clipped, "grad_norm": grad_norm,
            "kl": kl_sum / num_tokens if ref_model is not None else None}  # fmt: skip
