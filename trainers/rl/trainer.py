"""P-GRPO on one machine (threadweaver.md section 5, rl.md sections 1-2): rollouts, rewards, one update.

    from trainers.rl.config import load_rl_config
    from trainers.rl.trainer import train_rl
    train_rl(load_rl_config("trainers/toy/configs/toy-rl.yaml"))

A step: `prompts_per_step` prompts x `rollouts_per_prompt` rollouts through the trie rollout
(harness/rollout.py, any format; `rollout.parallel: false` is the sequential-RL baseline), served by the
policy object itself (harness.engines.hf.HFEngine.from_model: no weights to sync); each answer graded
with its task's rule in the deadline pool and rewarded (harness/reward.py, the variant in every log
line); the mean-centred group advantage broadcast to every completion token of every unit
(harness/pgrpo.py); one packed tree per trajectory and one optimizer update (trainers/rl/update.py).

Why a thin loop and not transformers' Trainer: Trainer iterates a fixed dataset through a DataLoader
and owns the step; an on-policy step must first generate its own batch with the current weights, then
update exactly once on all of it (T = the batch's completion tokens). Bending Trainer to that means
overriding its inner loop (what TRL's GRPOTrainer does in ~3,000 lines). Here the loop is ~100 lines on
plain torch: AdamW, gradient clipping, safetensors checkpoints. Data parallel under `accelerate launch`
or torchrun (trainers/rl/distributed.py: prompts dealt out by position, gradients summed, identical to one
process); FSDP/ZeRO sharding is not built here: the cluster path is verl (rl.md section 3).

Files in output_dir: rl_log.jsonl (one line per step), checkpoint-last/ (weights, tokenizer,
optimizer.pt, state.json; written every `save_steps`, swapped in atomically, so a kill loses at most the
steps since), the final model (HF format) and rl_curves.png. A rerun with the same output_dir resumes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

from harness.errors import InputError
from harness.records import read_records
from trainers.rl.config import RLConfig
from trainers.rl.log import LOG_NAME, step_stats, truncate_log, write_plot

CKPT, CKPT_TMP, CKPT_OLD = "checkpoint-last", "checkpoint-tmp", "checkpoint-old"


def read_prompts(paths: list[str], tokenizer, max_examples: int | None) -> list[dict]:
    """Prompts of the dataset: problem_id, prompt_ids (rendered with the model's chat template), gold, grading."""
    from harness.prompts import encode_prompt, render_prompt

    out = []
    for path in paths:
        for where, rec in read_records(path):
            if rec.gold is None or rec.grading is None:
                raise InputError(f"{where}: an RL prompt needs `gold` and `grading` (the task's rule)")
            if rec.prompt_ids is not None:
                ids = list(rec.prompt_ids)
            elif rec.prompt is not None or rec.messages:
                text = rec.prompt if rec.prompt is not None else render_prompt(tokenizer, rec.messages)
                ids = encode_prompt(tokenizer, text)
            else:
                raise InputError(f"{where}: an RL prompt needs `prompt`, `prompt_ids` or `messages`")
            out.append({"problem_id": rec.problem_id, "prompt_ids": ids, "gold": rec.gold, "grading": rec.grading,
                        "benchmark": rec.benchmark})  # fmt: skip
    if not out:
        raise InputError(f"dataset_path: no records in {paths}")
    return out[:max_examples] if max_examples else out


def step_prompts(n: int, per_step: int, step: int, seed: int) -> list[int]:
    """Prompt indices of step `step`: epochs of seeded permutations, read in order (no state to save)."""
    out = []
    for pos in range(step * per_step, (step + 1) * per_step):
        epoch, k = divmod(pos, n)
        out.append(random.Random(seed * 1_000_003 + epoch).sample(range(n), n)[k])
    return out


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def load_policy(path: str, device: str, mask_kind: str = "dense"):
    """(model, tokenizer) of a checkpoint, float32; SDPA attention for the dense tree mask (exact), flex
    attention for the BlockMask (trainers/sft/collate.py)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    attn = "flex_attention" if mask_kind == "flex" else "sdpa"
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation=attn).to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_checkpoint(out: Path, model, tokenizer, optimizer, step: int, config: RLConfig) -> None:
    """checkpoint-last/ with the state after `step` steps, replaced atomically (tmp, then renames)."""
    import torch

    tmp, last, old = out / CKPT_TMP, out / CKPT, out / CKPT_OLD
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "model": config.model, "seed": config.seed}) + "\n")
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(last, old)
    os.replace(tmp, last)
    shutil.rmtree(old, ignore_errors=True)


def find_checkpoint(out: Path) -> Path | None:
    """The last complete checkpoint (a kill between the two renames leaves checkpoint-old)."""
    for name in (CKPT, CKPT_OLD):
        if (out / name / "state.json").exists():
            return out / name
    return None


def rollout_step(engine, model, prompts: list[dict], picked: list[int], config: RLConfig, step: int,
                 positions: list[int] | None = None):  # fmt: skip
    """Records of one step: every picked prompt x rollouts_per_prompt, identified and ready to grade.
    `positions`: each picked prompt's position in the whole step (data parallelism: the seeds follow it)."""
    from harness.rollout import rollout_sync

    k = config.rollouts_per_prompt
    ids = [prompts[i]["prompt_ids"] for i in picked for _ in range(k)]
    positions = list(range(len(picked))) if positions is None else positions
    base = (config.seed * 1_000_003 + step) * 10_007
    seeds = [(base + positions[j // k] * k + j % k) % 2**31 for j in range(len(ids))]
    model.eval()
    records = rollout_sync(engine, ids, config.rollout, seeds=seeds)
    for j, rec in enumerate(records):
        p = prompts[picked[j // k]]
        rec.problem_id, rec.sample_index = p["problem_id"], j % k
        rec.gold, rec.grading, rec.benchmark = p["gold"], p["grading"], p["benchmark"]
    return records


def train_rl(config: RLConfig) -> dict:
    """Run (or resume) the configured steps; returns a summary (steps, last log line, output_dir)."""
    import torch

    from harness.engines.hf import HFEngine
    from harness.pgrpo import num_completion_tokens, units_to_rows
    from harness.reward import group_advantages, pgrpo_rewards
    from trainers.rl import distributed as dp
    from trainers.rl.update import build_tree, update
    from trainers.sft.masks import resolve_mask_kind

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, size = dp.world()
    device = _device(dp.local_device(config.device))
    ckpt = find_checkpoint(out)
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        if (state.get("model"), state.get("seed")) != (config.model, config.seed):
            raise InputError(f"output_dir {out} holds a run from model {state.get('model')!r}, seed "
                             f"{state.get('seed')}: resume it with those, or use another output_dir")  # fmt: skip
    # trees up to the rollout budget: the dense mask when short, a FlexAttention BlockMask on CUDA when long
    kind = resolve_mask_kind(config.mask, config.rollout.budget_tokens)
    model, tokenizer = load_policy(str(ckpt or config.model), device, kind)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                                  eps=config.adam_epsilon, weight_decay=config.weight_decay)  # fmt: skip
    start = 0
    if ckpt is not None:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True, map_location=device))
        start = json.loads((ckpt / "state.json").read_text())["step"]
    prompts = read_prompts(config.dataset_path, tokenizer, config.max_examples)
    if rank == 0:
        truncate_log(out / LOG_NAME, start)
    ref = load_policy(config.model, device, kind)[0].eval().requires_grad_(False) if config.kl_monitor else None
    engine = HFEngine.from_model(model, tokenizer, device=device, max_batch_size=config.max_batch_size)
    eos = tokenizer.eos_token_id
    if rank == 0:
        (out / "rl_config.json").write_text(json.dumps(config.to_dict(), indent=1) + "\n")
    for step in range(start, config.steps):
        t0 = time.perf_counter()
        picked = step_prompts(len(prompts), config.prompts_per_step, step, config.seed)
        mine = dp.my_positions(len(picked), rank, size)
        records = rollout_step(engine, model, prompts, [picked[p] for p in mine], config, step, mine)
        tg = time.perf_counter()
        rewards = pgrpo_rewards(records, config.reward, workers=config.grading_workers,
                                deadline_s=config.grading_deadline_s)  # fmt: skip
        groups = [str(j // config.rollouts_per_prompt) for j in range(len(records))]
        advantages = group_advantages(rewards, groups, config.normalize_std)
        t1 = time.perf_counter()
        rows = [units_to_rows(rec, a, eos) for rec, a in zip(records, advantages, strict=True)]
        num_tokens = max(1, int(dp.all_sum(num_completion_tokens(rows), size)))
        trees = [build_tree(rs, tokenizer.pad_token_id, kind) for rs in rows if rs]
        kl = None
        for index in range(config.updates_per_step):
            stats = update(model, optimizer, trees, num_tokens, index=index, clip_low=config.clip_low,
                           clip_high=config.clip_high, on_policy=config.updates_per_step == 1,
                           max_grad_norm=config.max_grad_norm, ref_model=ref if index == 0 else None,
                           reduce_grads=dp.sum_grads if size > 1 else None)  # fmt: skip
            kl = stats["kl"] if index == 0 else kl  # the KL of the policy that sampled the batch
        t2 = time.perf_counter()
        if size > 1:  # the whole step's figures: every rank's records in step order, losses summed
            kl = None if kl is None else dp.all_sum(kl, size)
            stats = stats | {k: dp.all_sum(stats[k], size) for k in ("loss", "clipped_tokens")}
            k, parts = config.rollouts_per_prompt, dp.all_gather(list(zip(records, rewards, advantages, strict=True)), size)
            by_position = {p: part[i * k : (i + 1) * k] for r, part in enumerate(parts)
                           for i, p in enumerate(dp.my_positions(len(picked), r, size))}  # fmt: skip
            records, rewards, advantages = (list(x) for x in zip(*[t for p in sorted(by_position) for t in by_position[p]], strict=True))
        packed = int(dp.all_sum(sum(len(t.batch["input_ids"][0]) for t in trees), size))
        line = step_stats(step + 1, config, records, rewards, advantages) | {
            "loss": stats["loss"], "clipped_tokens": stats["clipped_tokens"], "grad_norm": stats["grad_norm"],
            "kl": kl, "trained_tokens": num_tokens, "packed_tokens": packed, "processes": size,
            "rollout_s": round(tg - t0, 3), "grading_s": round(t1 - tg, 3), "train_s": round(t2 - t1, 3),
            "rollout_tokens_per_s": round(sum(len(r.response_ids or []) for r in records) / max(tg - t0, 1e-9), 1),
            "train_tokens_per_s": round(num_tokens * config.updates_per_step / max(t2 - t1, 1e-9), 1),
        }  # fmt: skip
        if rank == 0:
            with (out / LOG_NAME).open("a") as fh:  # lines past the checkpoint are cut on resume (truncate_log)
                fh.write(json.dumps(line) + "\n")
            if (step + 1) % config.save_steps == 0 or step + 1 == config.steps:
                save_checkpoint(out, model, tokenizer, optimizer, step + 1, config)
        dp.barrier(size)
    if rank == 0:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    dp.barrier(size)
    lines = [json.loads(x) for x in (out / LOG_NAME).read_text().splitlines() if x.strip()]
    if config.plot and lines and rank == 0:
        write_plot(lines, out / "rl_curves.png")
    return {"steps": len(lines), "resumed_from": start, "last": lines[-1] if lines else None,
            "reward_variant": config.reward.variant, "output_dir": str(out)}  # fmt: skip
