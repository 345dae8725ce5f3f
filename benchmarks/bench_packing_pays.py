"""Does trie packing pay? One SFT epoch on a tiny Qwen3, packed vs unpacked (issue 5, "Packing pays").

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_packing_pays.py
    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_packing_pays.py --trajectories 16  # quicker

Trajectories have the self-training structure of spec section 7, scaled to CPU size: about 300 tokens,
2 blocks of 2-3 uneven threads, self-parallelism about 1.2. Packed: every trajectory's units as one tree,
rows of `--max-tokens`, one row per step. Unpacked: each unit its own row (HF-style: loss on its
completion), `--batch` rows per step padded to the longest. Prints tokens processed (rows x padded
length, what the model computes), supervised tokens, seconds per epoch, and the ratios.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

LETTERS = "abcdefghij klmnopq rstuvw xyz 0123456789 +-="


def text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(n))


def synthetic_trajectory(
    rng: random.Random, seq_chars: int = 30, thread_chars: int = 24, blocks: int = 2
) -> str:
    """Sequential text, then `blocks` blocks of 2-3 uneven threads each, with sequential text between."""
    out = "<think>" + text(rng, seq_chars)
    for _ in range(blocks):
        n = rng.choice((2, 3))
        out += "\n<Parallel>\n<Outlines>\n"
        out += "".join(f"<Outline>{i}: {text(rng, 8)}</Outline>\n" for i in range(1, n + 1))
        out += "</Outlines>\n"
        bodies = [text(rng, max(4, int(thread_chars * rng.uniform(0.6, 1.4)))) for _ in range(n)]
        out += "".join(f"<Thread>\n{i}: {b}</Thread>" for i, b in enumerate(bodies, 1))
        out += "\n</Parallel>\n" + text(rng, seq_chars)
    return out + " \\boxed{" + str(rng.randint(0, 99)) + "}</think><|im_end|>"


def make_examples(n: int, seed: int = 0, **kwargs):
    """(tokenizer, [(prompt ids, completion ids, units)]) of `n` synthetic trajectories, cut into the
    rollout's units through the format (trainers/sft/units.py)."""
    from harness.tokenizer import build_char_tokenizer
    from trainers.sft.units import cut_units

    tok = build_char_tokenizer()
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        prompt = tok.encode(f"<|im_start|>user\nSolve {text(rng, 20)}<|im_end|>\n<|im_start|>assistant\n")
        completion, units = cut_units(prompt, synthetic_trajectory(rng, **kwargs), "threadweaver", "model", tok)
        examples.append((prompt, completion, units))
    return tok, examples


def tiny_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=1, num_key_value_heads=1, head_dim=64, max_position_embeddings=8192,
        attn_implementation="sdpa",
    )  # fmt: skip
    torch.manual_seed(seed)
    return Qwen3ForCausalLM(config)


def unit_row(unit):
    """A unit alone as a packed row: a single path, labels on its completion (pre-shifted)."""
    from trainers.sft.packing import pack_units

    return pack_units([unit])


def train_epoch(model, batches) -> tuple[float, int]:
    """One epoch, AdamW, one step per batch; returns (seconds, tokens processed)."""
    import torch

    from trainers.sft.collate import collate, model_inputs, packed_loss

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01)
    tokens, start = 0, time.perf_counter()
    for rows in batches:
        batch = collate(rows, mask="dense", pad_id=0)
        tokens += batch["input_ids"].numel()
        loss = packed_loss(model(**model_inputs(batch)).logits, batch["labels"])
        (loss / batch["num_supervised_tokens"]).backward()
        opt.step()
        opt.zero_grad()
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=2048, help="packed row length")
    parser.add_argument("--batch", type=int, default=8, help="unpacked rows per step")
    args = parser.parse_args()

    import torch

    from harness.counting import count_ids, tag_ids_of
    from trainers.sft.packing import pack

    torch.set_num_threads(2)
    tok, examples = make_examples(args.trajectories)
    tag_ids = tag_ids_of(tok)
    sp = [count_ids(completion, tag_ids).self_parallelism for _, completion, _ in examples]
    lengths = [len(completion) for _, completion, _ in examples]
    print(f"{len(examples)} trajectories: {statistics.mean(lengths):.0f} completion tokens on average, "
          f"self-parallelism {statistics.mean(sp):.2f}")  # fmt: skip

    packed_rows = pack([u for _, _, u in examples], max_tokens=args.max_tokens)
    units = [u for _, _, trajectory_units in examples for u in trajectory_units]
    unit_rows = [unit_row(u) for u in units]
    random.Random(0).shuffle(unit_rows)
    unpacked = [unit_rows[i : i + args.batch] for i in range(0, len(unit_rows), args.batch)]
    packed = [[r] for r in packed_rows]
    sup_packed = sum(r.num_supervised_tokens for r in packed_rows)
    sup_unpacked = sum(r.num_supervised_tokens for r in unit_rows)

    results = {}
    for name, batches in (("packed", packed), ("unpacked", unpacked)):
        model = tiny_model(len(tok))
        seconds, tokens = train_epoch(model, batches)
        results[name] = (seconds, tokens)
        sup = sup_packed if name == "packed" else sup_unpacked
        print(f"{name:9s} rows {sum(map(len, batches)):5d}  steps {len(batches):4d}  tokens processed {tokens:8d}"
              f"  supervised {sup:7d}  s/epoch {seconds:7.2f}")  # fmt: skip
    (ps, pt), (us, ut) = results["packed"], results["unpacked"]
    print(f"units per trajectory {len(units) / len(examples):.1f}; unpacked / packed: tokens {ut / pt:.2f}x, "
          f"time {us / ps:.2f}x (supervised {sup_unpacked / sup_packed:.2f}x: duplicated prefixes trained again)")  # fmt: skip


if __name__ == "__main__":
    main()
