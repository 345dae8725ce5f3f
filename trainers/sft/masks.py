"""The ancestor-only attention mask of trie packing (spec section 3), dense or as a FlexAttention BlockMask.

Token q may attend to k iff k is an ancestor of q or q itself: `tin[k] <= tin[q] and tout[q] <= tout[k]`
(Euler enter/exit times from `trainers.sft.packing`, shapes [B, N], `tin[b] == arange(N)`).
- `dense_mask`: [B, 1, N, N], bool (SDPA: True = attend) or additive float (eager: 0 / dtype min).
  O(N^2): 1.6 GB as bool, 6.7 GB as fp32 at 40,960 tokens.
- `block_mask`: a `BlockMask` for `attn_implementation="flex_attention"`, built from per-block minima and
  maxima of `tout` (no N x N tensor): O(N + (N / block_size)^2) memory.
"""

from __future__ import annotations

FLEX_MIN_TOKENS = 4096  # "auto" uses the BlockMask from this many tokens per row on (dense below)
BLOCK_SIZE = 128  # FlexAttention's default sparse block size
MASK_KINDS = ("auto", "dense", "flex")


def flex_available() -> bool:
    """Whether FlexAttention can train here: torch >= 2.5 and a CUDA device (torch 2.13 has no flex
    backward on CPU; on CPU the forward also compiles for minutes)."""
    try:
        import torch
        from torch.nn.attention.flex_attention import BlockMask  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_mask_kind(mask: str, num_tokens: int) -> str:
    """Mask kind ("dense" or "flex") for a row of `num_tokens`; "auto": flex from FLEX_MIN_TOKENS on, if available."""
    if mask not in MASK_KINDS:
        raise ValueError(f"mask must be one of {MASK_KINDS}, got {mask!r}")
    if mask == "auto":
        return "flex" if num_tokens >= FLEX_MIN_TOKENS and flex_available() else "dense"
    return mask


def dense_mask(tin, tout, additive_dtype=None):
    """[B, 1, N, N] ancestor mask: bool, or additive (0 / finfo.min) in `additive_dtype` for eager attention."""
    import torch

    allowed = (tin[:, None, :] <= tin[:, :, None]) & (tout[:, :, None] <= tout[:, None, :])  # [B, q, k]
    allowed = allowed[:, None]
    if additive_dtype is None:
        return allowed
    zero = torch.zeros((), dtype=additive_dtype)
    return torch.where(allowed, zero, torch.finfo(additive_dtype).min)


def _check_tin(tin) -> None:
    import torch

    expected = torch.arange(tin.shape[1], device=tin.device).expand_as(tin)
    if not torch.equal(tin, expected):
        raise ValueError("tin must be the flat depth-first index (tin[b] == arange(N)), as packing builds it")


def block_mask(tin, tout, block_size: int = BLOCK_SIZE):
    """FlexAttention `BlockMask` of the ancestor mask, exact, without an N x N tensor.

    With `tin` = flat index, every ancestor of q comes before q, and for blocks I (queries) after J (keys):
    some pair is allowed iff max(tout over J) >= first q of I; every pair iff min(tout over J) >= last q
    of I. Diagonal blocks are partial: `mask_mod` decides there, token by token.
    """
    import torch
    from torch.nn.attention.flex_attention import BlockMask

    _check_tin(tin)
    batch, n = tin.shape
    blocks = -(-n // block_size)
    padded = blocks * block_size
    idx = torch.arange(padded, device=tin.device)
    tin_p = idx.expand(batch, padded).contiguous()
    tout_p = idx.expand(batch, padded).clone()
    tout_p[:, :n] = tout  # padding positions see only themselves
    per_block = tout_p.view(batch, blocks, block_size)
    tout_max, tout_min = per_block.amax(-1), per_block.amin(-1)  # [B, blocks] for key blocks J
    q_first = torch.arange(blocks, device=tin.device) * block_size  # [blocks] for query blocks I
    q_last = q_first + block_size - 1
    earlier = torch.ones(blocks, blocks, dtype=torch.bool, device=tin.device).tril(-1)  # J < I
    any_pair = (tout_max[:, None, :] >= q_first[None, :, None]) & earlier  # [B, I, J]
    full = (tout_min[:, None, :] >= q_last[None, :, None]) & earlier
    partial = (any_pair & ~full) | torch.eye(blocks, dtype=torch.bool, device=tin.device)

    def _table(flags):
        count = flags.sum(-1, dtype=torch.int32)[:, None]  # [B, 1, I]
        order = torch.argsort((~flags).to(torch.int8), dim=-1, stable=True).to(torch.int32)
        return count, order[:, None]  # indices of the set blocks first, [B, 1, I, J]

    def mask_mod(b, h, q_idx, kv_idx):
        return (tin_p[b, kv_idx] <= tin_p[b, q_idx]) & (tout_p[b, q_idx] <= tout_p[b, kv_idx])

    mask_mod.index_device = tin.device  # BlockMask.to does not move what mask_mod captured (collate.move)

    kv_num, kv_idx = _table(partial)
    full_num, full_idx = _table(full)
    return BlockMask.from_kv_blocks(
        kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=block_size, mask_mod=mask_mod, seq_lengths=(n, n)
    )


def block_mask_to_dense(mask):
    """Token-level [B, 1, N, N] bool view of a BlockMask (full blocks, plus `mask_mod` on partial ones)."""
    import torch

    n_q, n_kv = mask.seq_lengths
    bs_q, bs_kv = mask.BLOCK_SIZE
    kv_blocks = mask.kv_indices.shape[-1]
    partial = _block_flags(mask.kv_num_blocks, mask.kv_indices, kv_blocks)[:, 0]
    full = _block_flags(mask.full_kv_num_blocks, mask.full_kv_indices, kv_blocks)[:, 0]
    q, k = torch.arange(n_q), torch.arange(n_kv)
    token_partial = partial[:, q // bs_q][:, :, k // bs_kv]
    token_full = full[:, q // bs_q][:, :, k // bs_kv]
    b = torch.arange(partial.shape[0])[:, None, None]
    mod = mask.mask_mod(b, 0, q[None, :, None], k[None, None, :])
    return (token_full | (token_partial & mod))[:, None]


def _block_flags(num, indices, kv_blocks):
    """[B, H, I, J] bool from (count, indices) block tables; None (no full blocks) gives all False."""
    import torch

    if num is None:
        return torch.zeros(*indices.shape[:-1], kv_blocks, dtype=torch.bool)
    rank = torch.arange(indices.shape[-1])
    valid = (rank < num[..., None]).to(torch.int32)
    counts = torch.zeros(*indices.shape[:-1], kv_blocks, dtype=torch.int32)
    counts.scatter_add_(-1, indices.long(), valid)
    return counts > 0
