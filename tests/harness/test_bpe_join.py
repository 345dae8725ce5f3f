"""The rollout, counting, SFT unit cutting and join text on a real byte-level BPE vocabulary (Qwen2/3 ranks
with the format tags as single special tokens, tests/tokenizers_qwen.py), where merges cross join pieces:
the thread header ends "1:" and a thread that starts with a newline would merge into ":\\n" if the whole
text were encoded at once. The rollout keeps the piece-wise ids (what the engine saw); the SFT cutter
encodes a text-only trajectory piece by piece, so it gets exactly those ids back.
"""

from __future__ import annotations

import pytest

from harness.counting import measure_text
from harness.engines.scripted import ScriptedEngine
from harness.formats import get_format
from harness.rollout import RolloutConfig, rollout_sync
from harness.tokens import RawTokenizer, count_unit
from trainers.sft.units import cut_units, units_from_record

pytestmark = pytest.mark.core
P = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
HEAD = "<think>\nTwo checks.\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n<Outline>2: check</Outline>\n</Outlines>"
T1, T2 = "\nThe sum is 5.</Thread>", "\nAnd 5-3 is 2, so yes.</Thread>"
TAIL = "</Parallel>\nSo the answer is \\boxed{5}.</think>"


@pytest.fixture(scope="module")
def tok(qwen_bpe_raw_tokenizer):
    return RawTokenizer(qwen_bpe_raw_tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def script(prompt: str) -> str:
    if prompt == P:
        return HEAD
    if prompt.endswith("<Thread>\n1:"):
        return T1
    if prompt.endswith("<Thread>\n2:"):
        return T2
    return TAIL.removeprefix("</Parallel>") if prompt.endswith("</Parallel>") else TAIL


@pytest.mark.parametrize("join", ["model", "orchestrator"])
def test_bpe_rollout_keeps_piecewise_ids_and_sft_cuts_the_same_units(tok, join):
    tw = get_format("threadweaver")
    engine = ScriptedEngine(script, tokenizer=tok)
    (rec,) = rollout_sync(engine, [tok.encode(P)], RolloutConfig(join=join, temperature=0.0))
    text = HEAD + tw.join_text([("1", T1), ("2", T2)], join) + TAIL.removeprefix("</Parallel>" if join == "orchestrator" else "")
    assert rec.response == text and rec.end_reason == "eos" and rec.faults == []
    # the engine saw the header as its own piece: "...1:" then the completion's own "\n..."
    header = tok.encode("".join(tw.branch_header("1", 0, joined=False)))
    assert engine.requests[1].prompt_ids == tok.encode(P) + tok.encode(HEAD) + header
    assert tok.convert_ids_to_tokens(header[-1]) == ":"
    # encoding the whole text merges across the join pieces: fewer ids than the rollout's
    whole = tok.encode(text)
    assert len(whole) < len(rec.response_ids) and tok.decode(whole) == tok.decode(rec.response_ids) == text
    assert ":Ċ" in [tok.convert_ids_to_tokens(i) for i in whole]
    # record-first counts are exact in the model's unit; re-counting the bare text sees the merged ids
    assert rec.metrics.total_tokens == len(rec.response_ids) and rec.metrics.count_unit == count_unit(tok)
    bare = measure_text(text, tok)
    assert bare.total_tokens == len(whole) and bare.count_unit == rec.metrics.count_unit
    assert rec.metrics.total_tokens - bare.total_tokens == 2  # one ":\n" merge per thread
    assert rec.metrics.threads_per_block == bare.threads_per_block == [2]
    # SFT: the text-only cut is piece-wise, so it reproduces the rollout's own units id for id
    completion_ids, units = cut_units(tok.encode(P), text, "threadweaver", join, tok, eos_id=tok.eos_token_id)
    rec.end_reason = "eos"
    assert units == units_from_record(rec, eos_id=tok.eos_token_id)
    assert completion_ids == rec.response_ids + [tok.eos_token_id]
