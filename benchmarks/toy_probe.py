"""Teacher-forced probe of a toy model: next-token accuracy per kind of step token (issue 5 diagnostics).

    python benchmarks/toy_probe.py models/toy-sequential sequential [--problems 40]

Feeds prompt + gold completion of held-out tw_toy problems and reports, per token kind, how often the
argmax prediction is the gold token: `key` (the next key letter: local), `addend` (the addend after
that key in the question, "+2": a copy), `result` (running value mod 10: one table entry), `final` (the
chain result closing a thread, "c=1": local), `answer` (a chain result copied into the answer line),
`boxed` (the answer digits), `other` (format). A model that has learned the task scores ~1.0 everywhere;
chance for `addend` is 1 / len(tasks/toy.py ADDENDS).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

from threadweaver_tasks.toy import STEP_TOKENS


def token_kind(toks: list[str], j: int, in_answer: bool) -> str:
    """The kind of token j (characters, plus the one-token addends "+1" and chain labels "a=")."""
    c, p1 = toks[j], toks[j - 1]
    if c in STEP_TOKENS and c[0] == "+":
        return "addend"
    if c.isdigit() and p1 in STEP_TOKENS:  # after a chain label "a="
        return "answer" if in_answer else "final"
    if c.isdigit() and p1 == "=":
        return "result"
    if c.isdigit() and in_answer:
        return "boxed"
    if c.isupper() and len(c) == 1:
        return "key"
    return "other"


def probe(path: str, mode: str, problems: int = 40) -> dict:
    import torch
    from threadweaver_tasks.toy import make_split, prompt_text, render
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    total, right = Counter(), Counter()
    for p in make_split("test", problems):
        prompt = tok.encode(prompt_text(p, tok), add_special_tokens=False)
        ids = prompt + tok.encode(render(p, mode), add_special_tokens=False)
        with torch.no_grad():
            pred = model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
        chars = [tok.decode([i]) for i in ids]
        in_answer = False
        for j in range(len(prompt), len(ids)):
            in_answer = in_answer or chars[j] == "answer:"
            kind = token_kind(chars, j, in_answer)
            total[kind] += 1
            right[kind] += pred[j - 1] == ids[j]
    return {k: round(right[k] / total[k], 3) for k in sorted(total)} | {"tokens": dict(total)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("mode", choices=("parallel", "sequential"))
    parser.add_argument("--problems", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(probe(args.model, args.mode, args.problems)))


if __name__ == "__main__":
    main()
