"""Grading rules declared by the task: the rule table, get_rule's errors, each compare kind, the
final_answer extractor, and that every tw_* task names a rule get_rule accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.grading import RULES, GradingRule, extract_answer, get_rule, grade_many, is_equivalent

TASKS = Path(__file__).resolve().parents[2] / "tasks"


def test_rule_table():
    assert list(RULES) == ["math", "minerva", "exact", "digits"]
    assert RULES["minerva"].rel_tol == 0.01 and RULES["minerva"].compare == "math"
    assert RULES["math"].rel_tol is None and RULES["math"].extract == ("boxed",)
    assert (RULES["exact"].compare, RULES["digits"].compare) == ("exact", "digits")
    for name, rule in RULES.items():
        assert rule.name == name and get_rule(name) is rule


@pytest.mark.parametrize(
    "spec, name",
    [
        ("math", "math"),
        ({"compare": "math", "rel_tol": 0.01}, "minerva"),  # a dict equal to a named rule gets its name
        ({"compare": "digits"}, "digits"),
        ({}, "math"),
        ({"compare": "math", "extract": ["boxed", "final_answer"]},
         '{"compare":"math","extract":["boxed","final_answer"]}'),
        ({"compare": "exact", "extract": ["final_answer"]}, '{"compare":"exact","extract":["final_answer"]}'),
        ({"compare": "math", "rel_tol": 0.05, "ordered": True}, '{"compare":"math","ordered":true,"rel_tol":0.05}'),
    ],
)  # fmt: skip
def test_name_round_trips(spec, name):
    rule = get_rule(spec)
    assert rule.name == name
    assert get_rule(rule.name) == rule and get_rule(rule) is rule


@pytest.mark.parametrize(
    "spec, message",
    [
        ("minerva_math", "unknown grading rule 'minerva_math'; did you mean 'minerva'?"),
        ("aime24", r"unknown grading rule 'aime24' \(known: math, minerva, exact, digits\)"),
        ({"compre": "math"}, "unknown key 'compre'; did you mean 'compare'?"),
        ({"compare": "maths"}, "compare must be one of math, exact, digits, got 'maths'"),
        ({"compare": "exact", "rel_tol": 0.01}, "rel_tol needs compare 'math'"),
        ({"rel_tol": 1.5}, r"rel_tol must be in \(0, 1\), got 1.5"),
        ({"rel_tol": True}, "rel_tol must be a number"),
        ({"extract": ["boxd"]}, "unknown extractor 'boxd'; did you mean 'boxed'?"),
        ({"extract": []}, "extract must be a non-empty list"),
        ({"extract": "boxed"}, "extract must be a list"),
        ({"extract": ["boxed", "boxed"]}, "lists an extractor twice"),
        ({"ordered": "yes"}, "ordered must be true or false"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "unknown grading rule"),
        (3, "must be a name or a dict, got int"),
    ],
)
def test_bad_specs_are_refused_with_a_hint(spec, message):
    with pytest.raises(InputError, match=message):
        get_rule(spec)


def test_rule_name_must_match_its_fields():
    with pytest.raises(InputError, match="name must be 'minerva' for these fields, got 'mine'"):
        GradingRule(name="mine", compare="math", rel_tol=0.01)
    assert GradingRule(name="math") == RULES["math"]


@pytest.mark.parametrize(
    "pred, gold, rule, same",
    [
        ("0917", "0917", "digits", True),
        ("917", "0917", "digits", False),  # leading zeros count
        ("0917.", "0917", "digits", True),  # a sentence's full stop is not part of the answer
        ("917", "0917", "math", True),  # the same number
        ("\\text{East}", "\\text{East}", "exact", True),
        ("East", "\\text{East}", "exact", False),  # exact: no text-command or case folding
        ("1/2", "\\frac{1}{2}", "exact", False),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", "exact", True),  # our normalisations still apply
        ("1/2", "\\frac{1}{2}", "math", True),
        ("4.47e33", "4.5e33", "minerva", True),
        ("4.47e33", "4.5e33", "math", False),
    ],
)
def test_each_compare_kind(pred, gold, rule, same):
    assert is_equivalent(pred, gold, rule) is same


@pytest.mark.parametrize(
    "text, expected",
    [
        ("work...\nFinal Answer: 1267", "1267"),
        ("final answer: $\\frac{1}{2}$.\n", "$\\frac{1}{2}$."),
        ("FINAL ANSWER:   42  \nThanks", "42"),
        ("Final Answer: 1\nno wait\nFinal Answer: 2", "2"),  # the last one
        ("Final Answer: 7" + "x" * 300, None),  # outside the last 300 characters
        ("x" * 1000 + "Final Answer: 7", "7"),
        ("The answer is 7", None),
        ("Final Answer:\n\n5", "5"),  # blank lines after the colon are skipped (Parallel-R1's pattern)
        ("\\boxed{3}", None),  # a bare box is not a Final Answer line
    ],
)
def test_final_answer_extractor(text, expected):
    rule = {"compare": "math", "extract": ["final_answer"]}
    assert extract_answer(text, rule) == expected


def test_extractors_are_tried_in_order():
    both = {"compare": "math", "extract": ["final_answer", "boxed"]}
    text = "so \\boxed{3}\nFinal Answer: 4"
    assert extract_answer(text, both) == "4"
    assert extract_answer(text, {"extract": ["boxed", "final_answer"]}) == "3"
    assert extract_answer("so \\boxed{3}", both) == "3"  # falls back to the next extractor
    assert extract_answer(text) == "3"  # default rule: boxed only
    grades = grade_many([("Final Answer: 1267", "1267", "math"), ("Final Answer: 1267", "1267", both)])
    assert [g.status for g in grades] == ["no_answer", "correct"]


def _load_task(path: Path) -> dict:
    loader = type("TaskLoader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda ld, node: ld.construct_scalar(node))
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def test_every_task_declares_a_rule_get_rule_accepts():
    tasks = sorted(TASKS.glob("tw_*.yaml"))
    assert len(tasks) >= 7
    declared = {}
    for path in tasks:
        spec = _load_task(path)
        assert "grading" in spec.get("dataset_kwargs", {}), f"{path.name}: dataset_kwargs.grading missing"
        declared[path.stem] = get_rule(spec["dataset_kwargs"]["grading"]).name
    assert declared["tw_minerva_math"] == "minerva" and declared["tw_toy"] == "digits"
    assert declared["tw_math500"] == declared["tw_aime24"] == declared["tw_olympiadbench"] == "math"
