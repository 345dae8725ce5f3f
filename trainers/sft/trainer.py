"""Trie-packed SFT on transformers' Trainer (spec section 3).

    from trainers.sft.config import SFTConfig
    from trainers.sft.trainer import train_sft
    train_sft(SFTConfig(output_dir="out", model="ckpt", dataset_path=["data.jsonl"]))

Each JSONL line is `{"prompt": user turn, "completion": model output}`; the prompt is rendered with the
tokenizer's chat template, the completion gets the end-of-sequence token. Trajectories are cut into the
rollout's units, packed into prefix trees (`trainers.sft.packing`) and trained with the ancestor-only mask
(`trainers.sft.collate`). Trainer gives CPU, one GPU, and FSDP/DeepSpeed (`accelerate launch` with a
standard config) for free. The final model is saved in plain HF format (safetensors) with its tokenizer.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from harness.errors import InputError
from harness.jsonl import iter_jsonl
from trainers.sft.config import SFTConfig


def read_dataset(paths: list[str], max_examples: int | None = None) -> list[dict]:
    """The {prompt, completion} records of the JSONL files, concatenated in order."""
    records: list[dict] = []
    for path in paths:
        for where, rec in iter_jsonl(path, required=("prompt", "completion")):
            if not isinstance(rec["prompt"], str) or not isinstance(rec["completion"], str):
                raise InputError(f"{where}: fields `prompt` and `completion` must be strings")
            records.append(rec)
    if not records:
        raise InputError(f"dataset_path: no records in {paths}")
    return records[:max_examples] if max_examples else records


def build_model(config: SFTConfig, attn_implementation: str):
    """(model, tokenizer): a random Qwen3 with the char tokenizer (model_init), or a loaded checkpoint.

    A loaded tokenizer without the format tags gets them as single special ids, their embedding rows
    initialised by `harness.trajectory.add_format_tokens` (spec section 1).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from harness.trajectory import add_format_tokens

    if config.model_init is not None:
        from harness.tokenizer import build_char_tokenizer

        tokenizer = build_char_tokenizer(extra_tokens=config.extra_tokens)
        fields = {
            "vocab_size": 128,
            "head_dim": 64,
            "tie_word_embeddings": True,
            "bos_token_id": None,
            **config.model_init,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        try:
            qcfg = Qwen3Config(**fields)
        except TypeError as exc:
            raise InputError(f"model_init: {exc}") from exc
        if qcfg.vocab_size < len(tokenizer):
            raise InputError(f"model_init.vocab_size must be >= {len(tokenizer)}, got {qcfg.vocab_size}")
        qcfg._attn_implementation = attn_implementation
        torch.manual_seed(config.seed)
        model = Qwen3ForCausalLM(qcfg)
    else:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForCausalLM.from_pretrained(
            config.model, attn_implementation=attn_implementation, dtype=torch.float32
        )
    add_format_tokens(tokenizer, model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def pack_records(records: list[dict], tokenizer, config: SFTConfig):
    """Records -> packed rows (`trainers.sft.packing.pack`), prompts chat-templated, EOS appended."""
    from harness.trajectory import format_tag_ids
    from trainers.sft.packing import Example, pack

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    examples = []
    for rec in records:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": rec["prompt"]}], tokenize=False, add_generation_prompt=True
        )
        examples.append(Example(encode(prompt), encode(rec["completion"]) + [tokenizer.eos_token_id]))
    return pack(examples, format_tag_ids(tokenizer), config.join, encode, config.max_tokens)


def _make_trainer_class():
    from transformers import Trainer, TrainerCallback

    from trainers.sft.collate import model_inputs, move, packed_loss

    class PackedSFTTrainer(Trainer):
        """Trainer whose loss is the mean cross-entropy over the batch's supervised tree edges."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Trainer moved the tensors; the flex BlockMask follows them (collate.move)
            inputs = move(inputs, inputs["input_ids"].device)
            outputs = model(**model_inputs(inputs))
            total = packed_loss(outputs.logits, inputs["labels"], reduction="sum")
            loss = total / inputs["num_supervised_tokens"].clamp(min=1).to(total.device)
            return (loss, outputs) if return_outputs else loss

    class LossLog(TrainerCallback):
        """Appends every log (loss, learning rate, epoch, step) as one JSON line."""

        def __init__(self, path: Path):
            self.path = path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                with self.path.open("a") as fh:
                    fh.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    return PackedSFTTrainer, LossLog


def train_sft(config: SFTConfig) -> dict:
    """Pack, train, save to `config.output_dir`; returns a summary (rows, tokens, steps, final loss)."""
    import torch
    from transformers import GenerationConfig, set_seed

    from trainers.sft.collate import collate
    from trainers.sft.masks import resolve_mask_kind

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_seed(config.seed)
    kind = resolve_mask_kind(config.mask, config.max_tokens)
    model, tokenizer = build_model(config, "flex_attention" if kind == "flex" else "sdpa")
    rows = pack_records(read_dataset(config.dataset_path, config.max_examples), tokenizer, config)

    def collator(batch):
        return collate(
            batch, mask=kind, pad_id=tokenizer.pad_token_id, pad_to_multiple=128 if kind == "flex" else 1
        )

    trainer_cls, loss_log = _make_trainer_class()
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=rows,
        data_collator=collator,
        callbacks=[loss_log(Path(config.output_dir) / config.loss_log)],
    )
    result = trainer.train()
    trainer.save_model(config.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(config.output_dir)
        GenerationConfig(
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
        ).save_pretrained(config.output_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "rows": len(rows),
        "tokens": sum(len(r) for r in rows),
        "supervised_tokens": sum(r.num_supervised_tokens for r in rows),
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else math.nan,
        "final_loss": losses[-1] if losses else math.nan,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "output_dir": config.output_dir,
    }
