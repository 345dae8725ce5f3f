"""The config of `threadweaver datagen pipeline` (stage 0 -> stage 1 -> SFT -> stage 2 -> SFT in one run).

    config = load_pipeline_config("pipeline.yaml", overrides=["stage2.samples=4"])

One YAML mapping, loaded through harness/config.py (unknown keys refused with the closest known one):

    work_dir: out/pipeline             # every stage's files go here (resume: run the same config again)
    problems: problems.jsonl           # id, problem, answer: the prompts of stages 0 and 2
    stages: [stage0, stage1, sft1, stage2, sft2]   # which to run (default: all, in this order)
    traces: null                       # sequential traces to rewrite instead of stage 0's (e.g. MATH500)
    stage0: {engine: vllm, model: BASE, samples: 4}          # `datagen stage0` flags, as key: value
    stage1: {base_url: http://127.0.0.1:8000/v1, model: LLM}  # `datagen stage1` flags
    sft1: {model: BASE, num_train_epochs: 8}                   # SFTConfig fields
    stage2: {engine: vllm, samples: 8, max_per_problem: 4}     # `datagen stage2` flags (model: sft1's output)
    sft2: {num_train_epochs: 8}                                # SFTConfig fields (model: sft1's output)

The keys of a stage section are the long flags of its command with `_` for `-` (`max_total_tokens`); the
CLI layer checks them against the command's own parser, and the SFT sections against SFTConfig, before any
stage runs. The paths each stage reads and writes are the pipeline's: a section may not set them
(PIPELINE_OWNED).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.config import apply_overrides, build_dataclass, load_yaml_mapping
from harness.errors import InputError

STAGES = ("stage0", "stage1", "sft1", "stage2", "sft2")
PIPELINE_OWNED = {
    "stage0": ("prompts", "out", "rollouts", "json"),
    "stage1": ("traces", "out", "work_dir", "json"),
    "stage2": ("prompts", "out", "rollouts", "json"),
    "sft1": ("dataset_path", "output_dir"),
    "sft2": ("dataset_path", "output_dir"),
}


@dataclass
class PipelineConfig:
    work_dir: str
    """Folder of every stage's outputs: stage0.jsonl, stage1.jsonl (+ .work/), sft1/, stage2.jsonl, sft2/,
    summary.json."""
    problems: str | None = None
    """JSONL of problems (`id`, `problem`, `answer`): stage 0's and stage 2's prompts (needed by them only)."""
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    """The stages to run, in pipeline order; a later stage reads an earlier one's output from work_dir."""
    traces: str | None = None
    """Sequential traces for stage 1 instead of stage 0's output: sample records, or problem lines with a
    trace field (stage1's `trace_field`, default `solution`). Stage 0 is then not run."""
    stage2_problems: str | None = None
    """Stage 2's prompts when they differ from `problems`."""
    stage0: dict = field(default_factory=dict)
    stage1: dict = field(default_factory=dict)
    sft1: dict = field(default_factory=dict)
    stage2: dict = field(default_factory=dict)
    sft2: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.stages, list) or not self.stages:
            raise ValueError(f"stages must be a non-empty list out of {list(STAGES)}, got {self.stages!r}")
        for name in self.stages:
            if name not in STAGES:
                raise ValueError(f"stages: unknown stage {name!r}; the stages are {list(STAGES)}")
        if sorted(self.stages, key=STAGES.index) != self.stages or len(set(self.stages)) != len(self.stages):
            raise ValueError(
                f"stages must be in pipeline order {list(STAGES)} without repeats, got {self.stages}"
            )
        if self.traces is not None and "stage0" in self.stages:
            raise ValueError("traces replaces stage 0's output: drop stage0 from stages, or drop traces")
        if self.problems is None and (
            "stage0" in self.stages or ("stage2" in self.stages and not self.stage2_problems)
        ):
            raise ValueError("problems: needed by stage0 and stage2 (a JSONL of id, problem, answer)")
        for name in STAGES:
            section = getattr(self, name)
            if not isinstance(section, dict):
                raise ValueError(f"{name} must be a mapping of key: value, got {type(section).__name__}")
            for key in PIPELINE_OWNED[name]:
                if key in section:
                    raise ValueError(f"{name}.{key}: set by the pipeline (it reads and writes work_dir)")

    # the files of each stage
    @property
    def root(self) -> Path:
        return Path(self.work_dir)

    def path(self, what: str) -> Path:
        """stage0 / stage1 / stage2 -> their JSONL of kept records; sft1 / sft2 -> the checkpoint folder."""
        return self.root / (what if what.startswith("sft") else f"{what}.jsonl")

    def stage1_input(self) -> Path:
        return Path(self.traces) if self.traces is not None else self.path("stage0")


def load_pipeline_config(path: str | Path, overrides: list[str] = ()) -> PipelineConfig:
    """PipelineConfig from YAML plus `KEY=VALUE` overrides (`SECTION.KEY=VALUE` for a stage's key)."""
    data = load_yaml_mapping(path)
    top, nested = [], []
    for item in overrides:
        key = item.partition("=")[0]
        (nested if "." in key else top).append(item)
    data = apply_overrides(data, top)
    for item in nested:
        key, _, value = item.partition("=")
        section, _, sub = key.strip().partition(".")
        if section not in STAGES:
            raise InputError(f"--set {item!r}: {section!r} is not a stage section ({', '.join(STAGES)})")
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise InputError(f"{path}: {section} must be a mapping")
        data[section] = apply_overrides(data.get(section) or {}, [f"{sub}={value}"])
    for name in STAGES:  # an empty section (`stage0:` with nothing under it) reads as {}
        if name in data and data[name] is None:
            data[name] = {}
    return build_dataclass(PipelineConfig, data, str(path))
