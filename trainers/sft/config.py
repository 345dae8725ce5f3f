"""SFTConfig: transformers.TrainingArguments plus the fields of trie-packed SFT (spec section 3).

Changed defaults (the paper's SFT settings, spec section 3): `learning_rate` 1e-5 instead of 5e-5,
`adam_beta2` 0.95 instead of 0.999, `weight_decay` 0.01 instead of 0, `warmup_steps` 0.05 (a ratio: 5%)
instead of 0, `lr_scheduler_type` "cosine" instead of "linear", `num_train_epochs` 8 instead of 3,
`per_device_train_batch_size` 1 packed row instead of 8 rows, `save_strategy` "no" (the final model is
saved to `output_dir`), `remove_unused_columns` False (rows are packed, not dict columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from harness.tokenizer import check_extra_tokens

MASK_KINDS = ("auto", "dense", "flex")


@dataclass
class SFTConfig(TrainingArguments):
    """Trie-packed SFT. Only our fields are listed here; the rest are TrainingArguments'."""

    model: str = field(
        default="",
        metadata={
            "help": "HF checkpoint directory (or hub id) to fine-tune; ignored when model_init is set."
        },
    )
    model_init: dict | None = field(
        default=None,
        metadata={
            "help": "Train from scratch: Qwen3Config fields (hidden_size, num_hidden_layers, ...) for a random "
            "model with the project's character tokenizer (harness.tokenizer), seeded by `seed`."
        },
    )
    extra_tokens: list[str] = field(
        default_factory=list,
        metadata={
            "help": "With model_init: strings the character tokenizer keeps as one token each, e.g. "
            "['+9', '=4'] (harness.tokenizer.build_char_tokenizer)."
        },
    )
    tag_formats: list[str] = field(
        default_factory=lambda: ["threadweaver"],
        metadata={
            "help": "With model_init: the formats (harness.formats) whose tags the character tokenizer holds "
            "as single ids; ThreadWeaver's ids come first and never move."
        },
    )
    dataset_path: list[str] = field(
        default_factory=list,
        metadata={
            "help": "JSONL files of sample records (harness/records.py: a run's records, or data records with "
            "`messages` and `response`); lists are concatenated, so sequential and parallel trajectories can "
            "be mixed in one run."
        },
    )
    max_examples: int | None = field(
        default=None,
        metadata={"help": "Use only the first N trajectories of the concatenated datasets (None: all)."},
    )
    max_tokens: int = field(
        default=40960, metadata={"help": "Tokens per packed row (spec section 3: 40,960)."}
    )
    join: str | None = field(
        default=None,
        metadata={
            "help": "Join mode that text-only records are cut for, where their format offers a choice "
            "(ThreadWeaver: 'model' writes </Parallel>, 'orchestrator' appends it); None: the format's default. "
            "Records written by a rollout keep the join mode of their run."
        },
    )
    mask: str = field(
        default="auto",
        metadata={
            "help": "Ancestor mask: 'dense' (SDPA, short rows), 'flex' (FlexAttention BlockMask, O(N)), or 'auto'.",
            "choices": list(MASK_KINDS),
        },
    )
    loss_log: str = field(
        default="loss_log.jsonl",
        metadata={"help": "File (relative to output_dir) that receives one JSON line per logging step."},
    )
    deterministic: bool = field(
        default=False,
        metadata={
            "help": "torch.use_deterministic_algorithms(True) and fixed CPU threads, for bit-for-bit reruns."
        },
    )
    num_threads: int | None = field(
        default=None,
        metadata={"help": "torch CPU threads (None: torch's default); fix it for reproducible CPU runs."},
    )

    # changed defaults (see the module docstring)
    learning_rate: float = 1e-5
    adam_beta2: float = 0.95
    weight_decay: float = 0.01
    warmup_steps: float = 0.05
    lr_scheduler_type: str = "cosine"
    num_train_epochs: float = 8.0
    per_device_train_batch_size: int = 1
    save_strategy: str = "no"
    remove_unused_columns: bool = False
    logging_steps: float = 10

    def __post_init__(self):
        if isinstance(self.dataset_path, str):
            raise ValueError(f"dataset_path must be a list of paths, got the string {self.dataset_path!r}")
        if not self.dataset_path:
            raise ValueError("dataset_path must name at least one JSONL file, got []")
        if not self.model and not self.model_init:
            raise ValueError("model must be a checkpoint path when model_init is not set, got ''")
        if self.model_init is not None and not isinstance(self.model_init, dict):
            raise ValueError(f"model_init must be a mapping of Qwen3Config fields, got {self.model_init!r}")
        if self.extra_tokens and self.model_init is None:
            raise ValueError("extra_tokens needs model_init (a loaded checkpoint keeps its own tokenizer)")
        self.extra_tokens = check_extra_tokens(self.extra_tokens)
        from harness.formats import FORMATS

        unknown = [f for f in self.tag_formats if f not in FORMATS]
        if unknown or not self.tag_formats:
            raise ValueError(f"tag_formats must name formats among {sorted(FORMATS)}, got {self.tag_formats!r}")
        if self.join is not None and not isinstance(self.join, str):
            raise ValueError(f"join must be a join mode name or None, got {self.join!r}")
        if self.mask not in MASK_KINDS:
            raise ValueError(f"mask must be one of {MASK_KINDS}, got {self.mask!r}")
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {self.max_tokens}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be >= 1 or None, got {self.max_examples}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if not self.output_dir:
            raise ValueError("output_dir must be set (where the final checkpoint goes), got None")
        super().__post_init__()


def load_sft_config(path, overrides=()) -> SFTConfig:
    """SFTConfig from a YAML file (+ `KEY=VALUE` overrides); InputError names the file and the key."""
    from harness.config import apply_overrides, build_dataclass, load_yaml_mapping

    data = apply_overrides(load_yaml_mapping(path), overrides)
    if isinstance(data.get("dataset_path"), str):
        data["dataset_path"] = [data["dataset_path"]]
    return build_dataclass(SFTConfig, data, str(path))
