"""Packed rows -> model inputs for a HF causal LM (Qwen3), with the ancestor-only mask (spec section 3).

    batch = collate(rows, mask="auto", pad_id=tokenizer.pad_token_id)
    out = model(**model_inputs(batch))               # input_ids, position_ids, attention_mask
    loss = packed_loss(out.logits, batch["labels"])  # sum over supervised tokens; no shift

`labels` are already shifted (label at k = next token of k along its tree path), so they must NOT be passed
as HF `labels` (which shift again). The mask is a custom 4D mask: transformers returns such a mask as-is
(`masking_utils._preprocess_mask_arguments`). Use "dense" with `attn_implementation="sdpa"` (bool) or
"eager" (`dense_form="additive"`), and "flex" with `attn_implementation="flex_attention"` (a BlockMask).
"""

from __future__ import annotations

from collections.abc import Sequence

from trainers.sft.masks import BLOCK_SIZE, block_mask, dense_mask, resolve_mask_kind
from trainers.sft.packing import IGNORE_INDEX, PackedRow

DENSE_FORMS = ("bool", "additive")
MODEL_KEYS = ("input_ids", "position_ids", "attention_mask")


def collate(
    rows: Sequence[PackedRow],
    mask: str = "auto",
    pad_id: int = 0,
    *,
    dense_form: str = "bool",
    dtype=None,
    pad_to_multiple: int = 1,
    block_size: int = BLOCK_SIZE,
) -> dict:
    """Stack rows (right-padded to the longest) into tensors plus the mask.

    Returns `input_ids`, `position_ids`, `labels` (pre-shifted, -100 = no loss), `tin`, `tout` ([B, N] long),
    `num_supervised_tokens` (long scalar), `attention_mask` (dense [B, 1, N, N] or a BlockMask), and
    `mask_kind` ("dense" or "flex"). Padding: pad_id, position 0, no label, sees only itself, seen by none.
    `dtype`: the additive mask's dtype (default float32); `pad_to_multiple`: round N up (e.g. 128 for flex).
    """
    import torch

    if not rows:
        raise ValueError("rows must be non-empty, got []")
    if dense_form not in DENSE_FORMS:
        raise ValueError(f"dense_form must be one of {DENSE_FORMS}, got {dense_form!r}")
    if pad_to_multiple < 1:
        raise ValueError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}")
    n = max(len(r) for r in rows)
    n = -(-n // pad_to_multiple) * pad_to_multiple
    kind = resolve_mask_kind(mask, n)

    def stacked(name: str, pad) -> torch.Tensor:
        data = [getattr(r, name) + [pad(k) for k in range(len(r), n)] for r in rows]
        return torch.tensor(data, dtype=torch.long)

    tin = stacked("tin", lambda k: k)
    tout = stacked("tout", lambda k: k)
    batch = {
        "input_ids": stacked("input_ids", lambda k: pad_id),
        "position_ids": stacked("position_ids", lambda k: 0),
        "labels": stacked("labels", lambda k: IGNORE_INDEX),
        "tin": tin,
        "tout": tout,
        "num_supervised_tokens": torch.tensor(sum(r.num_supervised_tokens for r in rows)),
        "mask_kind": kind,
    }
    if kind == "flex":
        batch["attention_mask"] = block_mask(tin, tout, block_size=block_size)
    else:
        additive = None if dense_form == "bool" else (dtype or torch.float32)
        batch["attention_mask"] = dense_mask(tin, tout, additive_dtype=additive)
    return batch


def move(batch: dict, device) -> dict:
    """The batch with its tensors and mask on `device`.

    A flex BlockMask is rebuilt there from the moved `tin` / `tout`: its mask_mod indexes tensors that it
    captured where it was built (the collator's CPU), and `BlockMask.to` moves only the block tables, so a
    CUDA kernel would read CPU memory (Inductor refuses to compile it). Trainer moves the block tables
    itself, so the check is on the captured tensors' device."""
    out = {k: v.to(device) if hasattr(v, "to") and k != "attention_mask" else v for k, v in batch.items()}
    mask = batch["attention_mask"]
    if batch["mask_kind"] != "flex":
        out["attention_mask"] = mask.to(device)
    elif getattr(mask.mask_mod, "index_device", None) != out["tin"].device:
        out["attention_mask"] = block_mask(out["tin"], out["tout"], block_size=mask.BLOCK_SIZE[0])
    return out


def model_inputs(batch: dict) -> dict:
    """The keys a HF causal LM takes: input_ids, position_ids, attention_mask (and use_cache=False)."""
    return {key: batch[key] for key in MODEL_KEYS} | {"use_cache": False}


def packed_loss(logits, labels, reduction: str = "sum"):
    """Cross-entropy of pre-shifted labels (no shift): "sum" over supervised tokens, or their "mean"."""
    import torch.nn.functional as F

    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    flat = logits.float().reshape(-1, logits.shape[-1])
    return F.cross_entropy(
        flat, labels.reshape(-1).to(flat.device), ignore_index=IGNORE_INDEX, reduction=reduction
    )
