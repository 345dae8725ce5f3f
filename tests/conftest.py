"""Shared fixtures: the shared offline data, tiny Qwen3-architecture models, a real Qwen BPE vocabulary.

Everything is made here (no hub), once per session:
- `tiny_model_dir`: the project's character tokenizer (format tags are single special ids) and a randomly
  initialised Qwen3 with head_dim 64, the smallest that vLLM's CPU backend accepts.
- `trained_tiny_model(units)`: such a model (4 heads) trained until greedy decoding reproduces every
  (prompt, completion) unit exactly, or an error in the test's setup saying which unit it got wrong.
- `qwen_bpe_raw_tokenizer`, `qwen_bpe_tokenizer`, `qwen_bpe_model_dir`: Qwen's byte-level BPE with the
  format tags (tests/tokenizers_qwen.py) and a tiny random Qwen3 over it.
This module imports no heavy package at the top: the `core` tests run in an environment without torch.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("THREADWEAVER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
# Not in the base dependencies (pyproject.toml): the `core` tests run without them (tests/test_light_core.py).
HEAVY_PACKAGES = ("torch", "transformers", "lm_eval", "vllm", "accelerate", "datasets", "matplotlib")
_MISSING_HEAVY = re.compile(r"No module named '(" + "|".join(HEAVY_PACKAGES) + r")[.']")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A test module that cannot be imported because an optional heavy package is not installed (the light
    `core` environment) is reported as skipped with that reason, not as a collection error. Where the
    package is installed (CI's full environment) nothing changes."""
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        missing = _MISSING_HEAVY.search(str(report.longrepr))
        if missing and importlib.util.find_spec(missing.group(1)) is None:  # a broken install still fails
            reason = f"Skipped: needs {missing.group(1)}, which is not installed"
            return pytest.CollectReport(report.nodeid, "skipped", (str(collector.path), 0, reason), [])
    return report


def make_tiny_model(out_dir: Path, *, seed: int = 0, layers: int = 2, heads: int = 1,
                    tie: bool = True, tokenizer=None, **config_fields) -> Path:  # fmt: skip
    """Save a random tiny Qwen3 (hidden 64, `heads` heads of 64) + its tokenizer to `out_dir`: `tokenizer`
    (an HF tokenizer), else the char tokenizer with every format's tags as one id each. The embedding has
    len(tokenizer) rounded up to 64 rows. `config_fields` are further Qwen3Config fields (a sliding window)."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from harness.tokenizer import build_char_tokenizer

    if tokenizer is None:
        from harness.formats import FORMATS

        tokenizer = build_char_tokenizer(out_dir, formats=tuple(FORMATS))
    else:
        tokenizer.save_pretrained(str(out_dir))
    config = Qwen3Config(
        vocab_size=-(-len(tokenizer) // 64) * 64,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=64,
        max_position_embeddings=8192,
        tie_word_embeddings=tie,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        torch_dtype="float32",
        **config_fields,
    )
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.save_pretrained(out_dir)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id).save_pretrained(
        out_dir
    )
    return out_dir


class FixtureError(RuntimeError):
    """A fixture could not build what it promises (raised in setup, so pytest reports an ERROR)."""


def _unit_rows(tok, units: Sequence[tuple[str, str]]):
    """(input_ids, labels, attention_mask) of the units, right-padded; loss on completion tokens only."""
    import torch

    rows = []
    for prompt, completion in units:
        p, c = tok.encode(prompt, add_special_tokens=False), tok.encode(completion, add_special_tokens=False)
        rows.append((p + c, [-100] * len(p) + c))
    width = max(len(ids) for ids, _ in rows)
    ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in rows])
    labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in rows])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in rows])
    return ids, labels, mask


def _min_margin(model, ids, labels, mask) -> float:
    """Smallest (gold logit - best other logit) over the completion tokens, teacher-forced. Greedy decoding
    reproduces the units when it is > 0; a margin keeps other engines' rounding from flipping a token."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    gold_ids = labels[:, 1:]
    on = gold_ids != -100
    gold_ids = gold_ids.clamp(min=0).unsqueeze(-1)
    gold = logits.gather(-1, gold_ids).squeeze(-1)
    other = logits.scatter(-1, gold_ids, float("-inf")).amax(-1)
    return (gold - other)[on].min().item()


def _greedy_mismatch(model, tok, units: Sequence[tuple[str, str]]) -> str | None:
    """Real greedy `generate` of each unit's prompt for as many tokens as its completion; None when every
    unit comes back exactly, else which unit differs and how."""
    import torch

    for k, (prompt, completion) in enumerate(units):
        p = tok.encode(prompt, add_special_tokens=False)
        want = tok.encode(completion, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                 max_new_tokens=len(want), do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        got = out[0, len(p) :].tolist()
        if got != want:
            return f"unit {k} greedy gives {tok.decode(got)!r} expected {completion!r}"
    return None


def train_until_greedy(out_dir: Path, units: Sequence[tuple[str, str]], *, max_steps: int = 1000,
                       check_every: int = 10, min_margin: float = 2.0, lr: float = 3e-3, seed: int = 0,
                       threads: int = 1, check_units: Sequence[tuple[str, str]] | None = None,
                       **config_fields) -> Path:  # fmt: skip
    """Save to `out_dir` a tiny Qwen3 (`make_tiny_model`, 4 heads) trained on `units`, (prompt, completion)
    pairs, with loss on completion tokens only, until greedy decoding reproduces every completion.

    Full-batch AdamW. Every `check_every` steps: the teacher-forced margin of every completion token (gold
    logit minus the best other) must be at least `min_margin`, and then a real greedy `generate` of each
    prompt (of `check_units`, default `units`) must give its completion exactly; `config_fields` go to
    `make_tiny_model`. Deterministic: fixed seeds, deterministic algorithms and
    `threads` intra-op threads (restored afterwards). Raises FixtureError after `max_steps` without that.
    Writes `train_until_greedy.json` (steps, margin, seconds) beside the weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    old_threads, old_det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        make_tiny_model(out_dir, seed=seed, heads=4, **config_fields)
        tok = AutoTokenizer.from_pretrained(out_dir)
        model = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
        ids, labels, mask = _unit_rows(tok, units)
        torch.manual_seed(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        margin, mismatch = float("-inf"), "never checked"
        for step in range(1, max_steps + 1):
            model.train()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % check_every and step != max_steps:
                continue
            model.eval()
            margin = _min_margin(model, ids, labels, mask)
            if margin < min_margin:
                continue
            mismatch = _greedy_mismatch(model, tok, check_units or units)
            if mismatch is None:
                model.save_pretrained(out_dir)
                seconds = round(time.perf_counter() - start, 2)
                log = {"steps": step, "min_margin": round(margin, 4), "seconds": seconds}
                (Path(out_dir) / "train_until_greedy.json").write_text(json.dumps(log) + "\n")
                return Path(out_dir)
        mismatch = _greedy_mismatch(model, tok, check_units or units) or "greedy reproduces every unit"
        raise FixtureError(
            f"train_until_greedy did not converge after {max_steps} steps: {mismatch} "
            f"(min teacher-forced margin {margin:.3f}, need {min_margin})"
        )
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


@pytest.fixture(scope="session")
def trained_tiny_model(tmp_path_factory) -> Callable[[Sequence[tuple[str, str]]], Path]:
    """`trained_tiny_model(units) -> model dir`: `train_until_greedy` on `units`; each distinct list of units
    trains once per session, shared by every test module that asks for it."""
    made: dict[tuple, Path] = {}

    def get(units: Sequence[tuple[str, str]]) -> Path:
        key = tuple((p, c) for p, c in units)
        if key not in made:
            made[key] = train_until_greedy(tmp_path_factory.mktemp("tiny-trained"), key)
        return made[key]

    return get


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen3 checkpoint with the char tokenizer, made once per test session."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen3"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline benchmark copies (../shared/data); tests that need them skip with a reason if absent."""
    if not (SHARED_DATA / "math500.jsonl").exists():
        pytest.skip(f"offline benchmark data not found at {SHARED_DATA} (set THREADWEAVER_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def qwen_bpe_raw_tokenizer():
    """Qwen's byte-level BPE with Qwen3's added tokens and the format tags, as a `tokenizers.Tokenizer`
    (needs only the base and dev dependencies). One object per session: do not add tokens to it."""
    from tokenizers_qwen import build_qwen_bpe

    return build_qwen_bpe()


@pytest.fixture(scope="session")
def qwen_bpe_tokenizer():
    """The same as a transformers `PreTrainedTokenizerFast` with the Qwen3-style chat template."""
    pytest.importorskip("transformers")
    from tokenizers_qwen import build_qwen_bpe_tokenizer

    return build_qwen_bpe_tokenizer()


@pytest.fixture(scope="session")
def qwen_bpe_model_dir(tmp_path_factory) -> Path:
    """A tiny random Qwen3 (hidden 64, head_dim 64, 2 layers, tied embeddings) with the Qwen BPE tokenizer."""
    pytest.importorskip("torch")
    from tokenizers_qwen import make_qwen_bpe_model

    return make_qwen_bpe_model(tmp_path_factory.mktemp("tiny-qwen-bpe"))
