"""Grading rules: how a task's answers are extracted and compared. A task names its rule (tasks/*.yaml
`dataset_kwargs.grading`); the grader never looks at benchmark names.

    get_rule("minerva")                                            # a named rule
    get_rule({"compare": "math", "extract": ["boxed", "final_answer"]})
    get_rule(rule.name) == rule                                    # `name` is what sample records store
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from harness.errors import InputError

COMPARES = ("math", "exact", "digits")
EXTRACTORS = ("boxed", "final_answer", "answer_is", "last_number")
MINERVA_REL_TOL = 1e-2  # Minerva protocol (Lewkowycz et al. 2022): numbers agree within 1% relative
_DEFAULTS: dict[str, Any] = {"rel_tol": None, "extract": ("boxed",), "ordered": False}
_KEYS = ("compare", "rel_tol", "extract", "ordered")

# How the rules read and compare answers, beyond spec section 1 ("the LAST \boxed{}; no box = not
# correct"). `threadweaver grade --explain` names the step that decided each sample (compare.DECIDERS).
SPEC_NOTES = (
    "boxed: the last \\boxed{} (also \\fbox, \\framebox) anywhere in the response (spec section 1). A "
    "'final answer is X' sentence after the last box is not an answer (the last box wins), and prose "
    "without a box is no_answer.",
    "boxed, list golds (an extension of spec section 1): when the gold lists several answers and the "
    "answer part (after the last </think>, else the last paragraph) holds several boxes, those boxes are "
    "the answer list; a single-answer gold still takes the last box.",
    "golds written with boxes are read by their boxes (several boxes at most three words apart are a "
    "list, else the last box).",
    "final_answer: the last case-insensitive 'Final Answer:' up to the end of its line within the last "
    "300 characters (Parallel-R1's reward, spec formats.md section 2.2).",
    "answer_is, last_number: NPR's fallbacks after the last box (formats.md section 2.1): the text after the "
    "last 'he answer is', else 'final answer is', to the end of its line; else the last number.",
    "math: equal strings, then two whole numbers (exact), then a list gold against a list of as many "
    "answers (one to one, in any order unless the rule is `ordered`), then math-verify (gold first).",
    "rel_tol: exactly equal numbers are equal; the tolerance applies only where both sides are plain "
    "decimal numbers, not both integers (not base-n numerals like 1011_2, not fractions); a failed "
    "numeric test falls through to math-verify.",
    "numbers: thousands separators (1,000  1{,}000  1\\,000  1\\;000  1\\!000  1 000) make one number; a "
    "decimal comma is never guessed (1,22 is a list: commas separate answers).",
    "exact: normalised string equality. digits: the same digit string (leading zeros count).",
)


@dataclass(frozen=True)
class GradingRule:
    """How one task's answers are graded. Build rules with `get_rule`; `name` round-trips through it."""

    name: str
    """The canonical spec: a table name ("math", "minerva", ...) or the rule's JSON (non-default keys)."""
    compare: str = "math"
    """"math" (math-verify equivalence after our normalisations), "exact" (normalised string equality),
    "digits" (the same digit string; leading zeros count)."""
    rel_tol: float | None = None
    """math only: relative tolerance between two plain decimal numbers (Minerva: 0.01). Must be in (0, 1)."""
    extract: tuple[str, ...] = ("boxed",)
    """Answer extractors tried in order: "boxed" (spec section 1), "final_answer" (Parallel-R1)."""
    ordered: bool = False
    """A gold with several answers must be matched in its order (default: any order)."""

    def __post_init__(self) -> None:
        if self.compare not in COMPARES:
            raise InputError(f"grading rule: compare must be one of {', '.join(COMPARES)}, got {self.compare!r}")
        if self.rel_tol is not None:
            if self.compare != "math":
                raise InputError(f"grading rule: rel_tol needs compare 'math', got compare {self.compare!r}")
            if isinstance(self.rel_tol, bool) or not isinstance(self.rel_tol, int | float):
                raise InputError(f"grading rule: rel_tol must be a number in (0, 1), got {self.rel_tol!r}")
            if not 0 < self.rel_tol < 1:
                raise InputError(f"grading rule: rel_tol must be in (0, 1), got {self.rel_tol}")
        if not isinstance(self.extract, tuple) or not self.extract:
            raise InputError(f"grading rule: extract must be a non-empty list of {', '.join(EXTRACTORS)}")
        for e in self.extract:
            if e not in EXTRACTORS:
                raise InputError(f"grading rule: unknown extractor {e!r}{_hint(e, EXTRACTORS)}")
        if len(set(self.extract)) != len(self.extract):
            raise InputError(f"grading rule: extract lists an extractor twice: {list(self.extract)}")
        if not isinstance(self.ordered, bool):
            raise InputError(f"grading rule: ordered must be true or false, got {self.ordered!r}")
        if self.name != (want := _canonical_name(self.spec())):
            raise InputError(f"grading rule: name must be {want!r} for these fields, got {self.name!r}")

    def spec(self) -> dict[str, Any]:
        """The fields as a plain dict (`compare` always, the others when not default)."""
        return _spec_of({k: getattr(self, k) for k in _KEYS})


def _hint(name: str, known) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"


def _spec_of(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"compare": fields["compare"]}
    for key, default in _DEFAULTS.items():
        value = fields.get(key, default)
        if value != default:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _canonical_name(spec: dict[str, Any]) -> str:
    key = json.dumps(spec, sort_keys=True)
    return _NAME_OF_SPEC.get(key, json.dumps(spec, sort_keys=True, separators=(",", ":")))


# The named rules. A task YAML names one of these, or spells a rule out as a dict.
_TABLE: dict[str, dict[str, Any]] = {
    "math": {"compare": "math"},  # answers compared as mathematics
    "minerva": {"compare": "math", "rel_tol": MINERVA_REL_TOL},  # the Minerva protocol
    "exact": {"compare": "exact"},
    "digits": {"compare": "digits"},  # digit-string answers: "0917" is not "917"
}
_NAME_OF_SPEC = {json.dumps(s, sort_keys=True): n for n, s in _TABLE.items()}
RULES: dict[str, GradingRule] = {n: GradingRule(name=n, **s) for n, s in _TABLE.items()}


def _from_dict(spec: dict) -> GradingRule:
    unknown = [k for k in spec if k not in _KEYS]
    if unknown:
        raise InputError(f"grading rule: unknown key {unknown[0]!r}{_hint(unknown[0], _KEYS)}")
    fields = {"compare": spec.get("compare", "math"), **{k: spec[k] for k in _DEFAULTS if k in spec}}
    if "extract" in fields:
        if not isinstance(fields["extract"], list | tuple):
            raise InputError(f"grading rule: extract must be a list, got {fields['extract']!r}")
        fields["extract"] = tuple(fields["extract"])
    try:
        name = _canonical_name(_spec_of(fields))
    except TypeError:  # a value JSON cannot hold: the field checks of GradingRule name it
        name = ""
    return GradingRule(name=name, **fields)


_CACHE: dict[str, GradingRule] = {}


def get_rule(spec: str | dict | GradingRule) -> GradingRule:
    """The rule for `spec`: a GradingRule, a table name, a dict of fields, or a rule's JSON name."""
    if isinstance(spec, GradingRule):
        return spec
    if isinstance(spec, dict):
        return _from_dict(spec)
    if not isinstance(spec, str):
        raise InputError(f"grading rule must be a name or a dict, got {type(spec).__name__}")
    if spec in RULES:
        return RULES[spec]
    if spec in _CACHE:
        return _CACHE[spec]
    if spec.lstrip().startswith("{"):
        try:
            parsed = json.loads(spec)
        except json.JSONDecodeError:
            raise InputError(f"grading rule {spec!r}: not valid JSON") from None
        if not isinstance(parsed, dict):
            raise InputError(f"grading rule {spec!r}: must be a JSON object")
        rule = _from_dict(parsed)
        _CACHE[spec] = rule
        return rule
    raise InputError(f"unknown grading rule {spec!r}{_hint(spec, RULES)}")


def with_extractors(spec: str | dict | GradingRule, extractors: tuple[str, ...]) -> GradingRule:
    """The rule with `extractors` appended to its own (those it lacks), e.g. a format's answer extractors
    on top of the task's rule: Parallel-R1 answers in a `Final Answer:` line when it writes no box."""
    rule = get_rule(spec)
    extra = tuple(e for e in extractors if e not in rule.extract)
    if not extra:
        return rule
    fields = _spec_of({"compare": rule.compare, "rel_tol": rule.rel_tol, "extract": rule.extract + extra,
                       "ordered": rule.ordered})  # fmt: skip
    return get_rule(fields)
