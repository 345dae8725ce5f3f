"""The toy models' block decision: P(open a block) at the one point where a toy solution can branch.

    python benchmarks/toy_decision_probe.py models/toy-hybrid models/toy-threadweaver-rl [--problems 200]

Every toy solution starts "<think>\\n4 chains.\\n"; the next token is "<Parallel>" (a block) or "1:" (the
sequential rendering). For each model this feeds prompt + that prefix for the first N held-out tw_toy
problems and prints the mean next-token probability of the block's first token (the expected activation
when sampling at temperature 1), the share of problems where it exceeds 0.5 (greedy activation), both split
by the hybrid cue (chain d starts with +2; tasks/toy.py hybrid_mode). One forward per problem (HF, CPU).
"""

from __future__ import annotations

import argparse

from threadweaver_tasks.toy import make_split, prompt_text

PREFIX = "<think>\n4 chains.\n"


def probe(model_dir: str, n: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    block = tok("<Parallel>", add_special_tokens=False).input_ids[0]
    probs, cue = [], []
    for p in make_split("test", n):
        ids = tok(prompt_text(p, tok) + PREFIX, add_special_tokens=False).input_ids
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        probs.append(torch.softmax(logits, -1)[block].item())
        cue.append(p.chains[-1][0] == 2)

    def part(flags):
        ps = [q for q, f in zip(probs, flags, strict=True) if f]
        return {"n": len(ps), "p_block": sum(ps) / len(ps), "greedy": sum(q > 0.5 for q in ps) / len(ps)}

    return {"all": part([True] * len(probs)), "cue": part(cue), "no_cue": part([not c for c in cue])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--problems", type=int, default=200)
    args = ap.parse_args(argv)
    print(f"{'model':<40} {'group':<7} {'n':>4} {'mean P(block)':>14} {'P > 0.5':>8}")
    for m in args.models:
        for group, r in probe(m, args.problems).items():
            print(f"{m:<40} {group:<7} {r['n']:>4} {r['p_block']:>14.3f} {r['greedy']:>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
