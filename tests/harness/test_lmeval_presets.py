"""A preset through the lm-eval backend: its paper's prompt built from the doc, its answer extraction in
the records' grading rule, its settings in the run header, and a note when the task's k differs."""

from __future__ import annotations

import pytest

pytest.importorskip("lm_eval")
from lm_eval.api.instance import Instance  # noqa: E402

from harness.engines.scripted import ScriptedEngine  # noqa: E402
from harness.formats.npr import npr_prompt  # noqa: E402
from harness.lmeval import ThreadweaverLM  # noqa: E402
from harness.records import read_records  # noqa: E402
from harness.tokenizer import build_char_tokenizer  # noqa: E402

DOC = {"id": "aime25-x", "problem": "1+1?", "answer": "2", "benchmark": "aime25", "grading": "math"}


def test_npr_preset_prompt_grading_settings_and_k_note(tmp_path, capsys):
    tok = build_char_tokenizer(formats=("threadweaver", "npr"))
    engine = ScriptedEngine({"*": "no tags; so the answer is 2."}, tokenizer=tok)
    lm = ThreadweaverLM(pretrained="scripted", engine=engine, preset="npr", top_p=0.9,
                        store=str(tmp_path / "s.jsonl"), trajectories=str(tmp_path / "t.jsonl"))  # fmt: skip
    inst = Instance("generate_until", DOC, ("task prompt", {"max_gen_toks": 64, "temperature": 0.3}), 0,
                    ("tw_aime25", 0, 2))  # fmt: skip
    lm.generate_until([inst, inst])
    want = tok.apply_chat_template([{"role": "user", "content": npr_prompt("1+1?")}], tokenize=False,
                                   add_generation_prompt=True)  # fmt: skip
    (_, r), _ = read_records(tmp_path / "t.jsonl")
    assert r.prompt == want  # the paper's prompt from the doc, not lm-eval's context
    assert len(engine.prompts) == 2 and engine.prompts[0].startswith("<|im_start|>user\n1+1?\n\nYou must write")
    assert r.grade.status == "correct" and r.grade.extracted == "2"  # NPR's "answer is" fallback
    assert '"answer_is"' in r.grading and r.format == r.run.format == "npr"
    ro = r.run.rollout
    assert (ro["temperature"], ro["top_p"], ro["budget_tokens"]) == (1.0, 0.9, 39_872)  # explicit top_p wins
    err = capsys.readouterr().err
    assert "preset npr: prompts are its paper's" in err
    assert "preset npr samples k=8 per problem on aime25" in err and "this task runs k=2" in err
