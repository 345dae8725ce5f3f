"""Exactness of trie packing on a tiny random Qwen3 (issue 5, acceptance "Exactness").

The packed forward pass gives every unit's own logits, and the packed loss and gradients equal the sum
over units with each distinct supervised edge counted once; both mask forms (dense SDPA, FlexAttention).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harness.tokenizer import build_char_tokenizer  # noqa: E402
from trainers.sft.collate import collate, model_inputs, move, packed_loss  # noqa: E402
from trainers.sft.masks import block_mask, block_mask_to_dense, dense_mask  # noqa: E402
from trainers.sft.packing import PackedRow, pack_units, supervised_pairs  # noqa: E402
from trainers.sft.units import cut_units  # noqa: E402

TOK = build_char_tokenizer()
PROMPT = "<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\n"


def encode(text: str) -> list[int]:
    return TOK.encode(text, add_special_tokens=False)


def example(blocks: list[list[str]]) -> str:
    """Sequential text around one parallel block per entry of `blocks` (its thread bodies)."""
    text = "<think>s0"
    for b, threads in enumerate(blocks):
        text += " <Parallel>\n<Outlines>\n"
        text += "".join(f"<Outline>{i}: plan {i}</Outline>\n" for i in range(1, len(threads) + 1))
        text += "</Outlines>\n" + "".join(f"<Thread>\n{i}:{t}</Thread>" for i, t in enumerate(threads, 1))
        text += f"\n</Parallel> s{b + 1}"
    return text + " \\boxed{7}<|im_end|>"


TOL = 1e-4  # fp32 max abs difference (issue 5)
TRAJECTORIES = [  # (blocks of thread bodies, join mode)
    ([[" aa", " bbbbb"], [" c", " dd", " eeeeeee"]], "model"),  # 2 blocks, uneven threads
    ([[" x", " yyyy", " z"]], "orchestrator"),
    ([], "model"),  # purely sequential
]


def _units_and_row():
    """Units per trajectory and one packed row holding all trajectories (known segment offsets)."""
    per_traj, row, offsets = [], PackedRow(), []
    for blocks, join in TRAJECTORIES:
        units = cut_units(encode(PROMPT), example(blocks), "threadweaver", join, TOK)[1]
        per_traj.append(units)
        offsets.append(len(row))
        row.extend(pack_units(units))
    return per_traj, row, offsets


def _node_index(row, offset, end):
    """Token path (within one segment) -> flat index."""
    index = {}
    for i in range(offset, end):
        anc = [k for k in range(offset, i + 1) if row.tin[k] <= row.tin[i] and row.tout[i] <= row.tout[k]]
        index[tuple(row.input_ids[k] for k in anc)] = i
    return index


def _load(model_dir, attn):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, attn_implementation=attn, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture
def eager_flex(monkeypatch):
    """HF's flex path with torch's uncompiled flex_attention (compiling takes minutes on 2 CPU cores)."""
    from torch.nn.attention.flex_attention import flex_attention
    from transformers.integrations import flex_attention as hf_flex

    def uncompiled(query, key, value, training=False, **kwargs):
        return flex_attention(query, key, value, **kwargs)

    monkeypatch.setattr(hf_flex, "compile_friendly_flex_attention", uncompiled)


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def _reference(model, per_traj):
    """Each unit on its own: its logits, and loss/gradients of the sum over units with each distinct
    supervised edge counted once (weight 1 / number of units that train it)."""
    model.zero_grad()
    dev = next(model.parameters()).device
    logits, total = [], 0.0
    for units in per_traj:
        multiplicity = {}
        for unit in units:
            for j in range(len(unit.prompt_ids), len(unit.ids)):
                key = (unit.ids[:j], unit.ids[j])
                multiplicity[key] = multiplicity.get(key, 0) + 1
        for unit in units:
            own = model(input_ids=torch.tensor([unit.ids], device=dev), use_cache=False).logits[0]
            logits.append(own.detach())
            first = len(unit.prompt_ids)
            if first == len(unit.ids):
                continue
            weights = torch.tensor(
                [1 / multiplicity[(unit.ids[:j], unit.ids[j])] for j in range(first, len(unit.ids))],
                device=dev,
            )
            targets = torch.tensor(unit.ids[first:], device=dev)
            ce = torch.nn.functional.cross_entropy(own[first - 1 : -1], targets, reduction="none")
            loss = (ce * weights).sum()
            loss.backward()
            total += loss.item()
    return logits, total, _grads(model)


def _check_exact(model, mask_kind, reference_model=None, grads=True):
    """Packed `model` vs each unit alone on `reference_model` (default: the same model)."""
    per_traj, row, offsets = _units_and_row()
    ref_logits, ref_loss, ref_grads = _reference(reference_model or model, per_traj)

    # logits: a batch of the full row and a shorter row (a copy of the sequential trajectory) -> padding
    short = pack_units(per_traj[2])
    batch = collate([row, short], mask=mask_kind, pad_id=0)
    assert batch["mask_kind"] == mask_kind
    dev = next(model.parameters()).device
    with torch.no_grad():
        logits = model(**model_inputs(move(batch, dev))).logits
    segments = [
        (0, off, end, units)
        for off, end, units in zip(offsets, offsets[1:] + [len(row)], per_traj, strict=True)
    ]
    segments.append((1, 0, len(short), per_traj[2]))
    flat_units = [u for units in per_traj for u in units] + list(per_traj[2])
    own_logits = ref_logits + ref_logits[-len(per_traj[2]) :]
    worst, k = 0.0, 0
    for b, offset, end, units in segments:
        index = _node_index(row if b == 0 else short, offset, end)
        for unit in units:
            assert unit == flat_units[k]
            flat = [index[unit.ids[: j + 1]] for j in range(len(unit.ids))]
            worst = max(worst, (own_logits[k] - logits[b, flat]).abs().max().item())
            k += 1
    assert worst <= TOL, f"max abs logit difference {worst}"

    # supervised tokens = distinct edges that the units train (computed without the tree)
    count = sum(len(supervised_pairs(units)) for units in per_traj)
    assert row.num_supervised_tokens == count
    assert batch["num_supervised_tokens"].item() == count + len(supervised_pairs(per_traj[2]))

    # loss (sum over supervised tokens) and gradients of the packed row = the sum over units
    model.zero_grad()
    one = collate([row], mask=mask_kind, pad_id=0)
    with torch.set_grad_enabled(grads):
        loss = packed_loss(model(**model_inputs(move(one, dev))).logits, one["labels"])
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5, abs=TOL)
    if not grads:
        return worst, None
    loss.backward()
    diff = max((g - r).abs().max().item() for g, r in zip(_grads(model), ref_grads, strict=True))
    assert diff <= TOL, f"max abs gradient difference {diff}"
    return worst, diff


def test_dense_mask_is_exact(tiny_model_dir):
    _check_exact(_load(tiny_model_dir, "sdpa"), "dense")


def test_additive_dense_mask_with_eager_attention(tiny_model_dir):
    _, row, _ = _units_and_row()
    model = _load(tiny_model_dir, "eager")
    additive = collate([row], mask="dense", pad_id=0, dense_form="additive")
    plain = collate([row], mask="dense", pad_id=0)
    with torch.no_grad():
        eager = model(**model_inputs(additive)).logits
        sdpa = _load(tiny_model_dir, "sdpa")(**model_inputs(plain)).logits
    assert (eager - sdpa).abs().max().item() <= TOL


def test_flex_block_mask_is_exact(tiny_model_dir, eager_flex):
    # torch 2.13: "FlexAttention does not support backward on CPU", so logits and loss only here
    flex, sdpa = _load(tiny_model_dir, "flex_attention"), _load(tiny_model_dir, "sdpa")
    _check_exact(flex, "flex", reference_model=sdpa, grads=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlexAttention backward needs a GPU (not on CPU)")
def test_flex_block_mask_gradients_on_gpu(tiny_model_dir):
    # HF compiles flex_attention on first use: this is also the compiled-kernel check (minutes on a CPU)
    flex, sdpa = _load(tiny_model_dir, "flex_attention").cuda(), _load(tiny_model_dir, "sdpa").cuda()
    _check_exact(flex, "flex", reference_model=sdpa)


@pytest.mark.parametrize("block_size", [16, 128])
def test_block_mask_materialises_to_the_dense_mask(block_size):
    from torch.nn.attention.flex_attention import create_block_mask

    per_traj, row, _ = _units_and_row()
    short = pack_units(per_traj[1])
    batch = collate([row, short], mask="dense", pad_id=0, pad_to_multiple=block_size)
    tin, tout = batch["tin"], batch["tout"]
    ours = block_mask(tin, tout, block_size=block_size)
    dense = dense_mask(tin, tout)
    assert torch.equal(block_mask_to_dense(ours), dense)
    # same block tables as torch's own builder on the same mask_mod
    theirs = create_block_mask(ours.mask_mod, tin.shape[0], 1, tin.shape[1], tin.shape[1], device="cpu",
                               BLOCK_SIZE=block_size)  # fmt: skip
    assert torch.equal(block_mask_to_dense(theirs), dense)
    assert torch.equal(ours.to_dense(), theirs.to_dense())


def test_auto_picks_flex_for_long_rows():
    from trainers.sft.masks import FLEX_MIN_TOKENS, flex_available, resolve_mask_kind

    assert resolve_mask_kind("auto", FLEX_MIN_TOKENS - 1) == "dense"
    assert resolve_mask_kind("auto", FLEX_MIN_TOKENS) == ("flex" if flex_available() else "dense")
    with pytest.raises(ValueError, match="mask must be one of"):
        resolve_mask_kind("sparse", 10)


def test_move_rebuilds_a_flex_mask_whose_captured_tensors_are_elsewhere():
    """BlockMask.to moves only the block tables; collate.move rebuilds the mask where tin/tout now are
    (without it a CUDA kernel would index the collator's CPU tensors: the GPU test above failed so)."""
    per_traj, row, _ = _units_and_row()
    batch = collate([row, pack_units(per_traj[1])], mask="flex", pad_id=0, pad_to_multiple=128)
    same = move(batch, "cpu")
    assert same["attention_mask"] is batch["attention_mask"]  # already where its tensors are
    batch["attention_mask"].mask_mod.index_device = torch.device("meta")  # as if built on another device
    moved = move(batch, "cpu")["attention_mask"]
    assert moved is not batch["attention_mask"] and moved.mask_mod.index_device == torch.device("cpu")
    assert torch.equal(block_mask_to_dense(moved), dense_mask(batch["tin"], batch["tout"]))
