"""Trie-packed SFT on transformers' Trainer (spec section 3).

    from trainers.sft.config import SFTConfig
    from trainers.sft.trainer import train_sft
    train_sft(SFTConfig(output_dir="out", model="ckpt", dataset_path=["data.jsonl"]))

The dataset is sample records (harness/records.py): a rollout's own records train on the exact units
the engine saw; text-only records (toy data, generated data: `messages` + `response`) are rendered with
the one prompt encoder (harness/prompts.py) and cut into the rollout's units through their format
(`trainers.sft.units`); the completion ends with the end-of-sequence token. Units are packed into prefix
trees (`trainers.sft.packing`) and trained with the ancestor-only mask (`trainers.sft.collate`). Trainer gives CPU, one GPU, and FSDP/DeepSpeed (`accelerate launch` with a
standard config) for free. The final model is saved in plain HF format (safetensors) with its tokenizer.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from harness.errors import InputError
from harness.records import SampleRecord, read_records
from trainers.sft.config import SFTConfig


def read_dataset(paths: list[str], max_examples: int | None = None) -> list[tuple[str, SampleRecord]]:
    """("FILE:LINE", record) of the JSONL files, concatenated in order."""
    records = [item for path in paths for item in read_records(path)]
    if not records:
        raise InputError(f"dataset_path: no records in {paths}")
    return records[:max_examples] if max_examples else records


def trajectory_units(where: str, rec: SampleRecord, tokenizer, join: str):
    """The training units of one record (trainers.sft.units): its own units when the rollout that wrote it
    counted in this tokenizer's unit, else cut from its text."""
    from harness.prompts import encode_prompt, render_prompt
    from harness.tokens import count_unit
    from trainers.sft.units import cut_units, units_from_record

    eos = tokenizer.eos_token_id
    same_unit = rec.metrics is not None and rec.metrics.count_unit == count_unit(tokenizer)
    if rec.units and rec.prompt_ids is not None and rec.response_ids is not None and same_unit:
        return units_from_record(rec, eos)
    if rec.prompt is None and not rec.messages:
        raise InputError(f"{where}: a training record needs `prompt` or `messages`")
    text = rec.prompt if rec.prompt is not None else render_prompt(tokenizer, rec.messages)
    run_join = (rec.run.rollout or {}).get("join") if rec.run is not None else None
    try:
        return cut_units(encode_prompt(tokenizer, text), rec.response, rec.format, run_join or join, tokenizer, eos)[1]
    except ValueError as exc:  # a join mode the record's format does not have
        raise InputError(f"{where}: {exc}") from None


def build_model(config: SFTConfig, attn_implementation: str):
    """(model, tokenizer): a random Qwen3 with the char tokenizer (model_init), or a loaded checkpoint.

    A loaded tokenizer without the format tags gets them as single special ids, their embedding rows
    initialised by `harness.tokenizer.add_format_tokens` (threadweaver.md section 1).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from harness.tokenizer import add_format_tokens

    if config.model_init is not None:
        from harness.tokenizer import build_char_tokenizer

        tokenizer = build_char_tokenizer(extra_tokens=config.extra_tokens, formats=config.tag_formats)
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


def pack_records(records: list[tuple[str, SampleRecord]], tokenizer, config: SFTConfig):
    """Records -> packed rows (`trainers.sft.packing.pack`)."""
    from trainers.sft.packing import pack

    return pack([trajectory_units(where, rec, tokenizer, config.join) for where, rec in records], config.max_tokens)


def _make_trainer_class():
    import torch
    from transformers import Trainer, TrainerCallback

    from trainers.sft.collate import model_inputs, move, packed_loss

    class PackedSFTTrainer(Trainer):
        """Trainer whose loss is the mean cross-entropy over the supervised tree edges of the optimizer
        step: all micro-batches (gradient accumulation) on all data-parallel ranks. Trainer counts them
        (`num_items_in_batch`, from `shift_labels`: our labels are pre-shifted) and, with
        `average_tokens_across_devices` (default), sums the count over ranks; each rank's share is then
        scaled by the rank count because DDP/FSDP average gradients. So 2 processes x 1 row train exactly
        like 1 process x 2 rows (tests/trainers/test_accelerate_launch.py)."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # Trainer moved the tensors; the flex BlockMask follows them (collate.move)
            inputs = move(inputs, inputs["input_ids"].device)
            outputs = model(**model_inputs(inputs))
            total = packed_loss(outputs.logits, inputs["labels"], reduction="sum")
            if num_items_in_batch is None:  # a direct call, outside Trainer's step
                loss = total / inputs["num_supervised_tokens"].clamp(min=1).to(total.device)
            else:
                loss = total / torch.as_tensor(num_items_in_batch, device=total.device).clamp(min=1)
                if self.args.average_tokens_across_devices and self.args.world_size > 1:
                    loss = loss * self.accelerator.num_processes
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
        out = collate(batch, mask=kind, pad_id=tokenizer.pad_token_id, pad_to_multiple=128 if kind == "flex" else 1)
        out["shift_labels"] = out["labels"]  # Trainer counts the step's supervised tokens here (pre-shifted)
        return out

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
