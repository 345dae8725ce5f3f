"""Rebuild the external answer-equivalence tables in this folder from the public test files they come from.

    python tests/data/grading/collect.py MATH_VERIFY_CHECKOUT HENDRYCKS_MATH_CHECKOUT OPENCOMPASS_TEST_FILE

Only the test cases are taken (gold, prediction, expected verdict, and the settings the verdict was stated
under): facts, read with `ast` from the test sources, never executed. Provenance: README.md here.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MV_FILES = ("test_all.py", "test_boxed.py", "test_numina_cases.py", "test_open_thoughts.py", "test_strict.py",
            "test_yujianll.py")  # fmt: skip
SETTING_KEYS = ("match_types", "precision", "strict", "allow_set_relation_comp")


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def _settings(func: ast.FunctionDef) -> dict:
    """Literal keyword arguments of the comparison call in a test body (`compare_strings(..., precision=5)`)."""
    for node in ast.walk(func):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "compare_strings":
            return {k.arg: v for k in node.keywords if k.arg in SETTING_KEYS
                    and (v := _literal(k.value)) is not None}  # fmt: skip
    return {"default": True}  # verify(parse(gold), parse(pred)) with no arguments


def math_verify_cases(repo: Path, commit: str) -> list[dict]:
    out = []
    for name in MV_FILES:
        tree = ast.parse((repo / "tests" / name).read_text(encoding="utf-8"))
        for func in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
            for dec in func.decorator_list:
                if not (isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize"):
                    continue
                names = [s.strip() for s in _literal(dec.args[0]).split(",")]
                rows = _literal(dec.args[1]) or []
                if "gold" not in names or "pred" not in names:
                    continue
                verdict = "expected" if "expected" in names else "result"
                base = _settings(func)
                for row in rows:
                    case = dict(zip(names, row, strict=True))
                    settings = dict(base)
                    settings.update({k: case[k] for k in SETTING_KEYS if k in case})
                    out.append({"source": "huggingface/Math-Verify", "commit": commit, "path": f"tests/{name}",
                                "test": func.name, "gold": case["gold"], "pred": case["pred"],
                                "expected": int(case[verdict]), "settings": settings})  # fmt: skip
    return out


def _assert_pairs(tree: ast.AST):
    """(test name, assert kind, args of the compared call, local string assignments) of unittest asserts."""
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        local = {t.id: _literal(n.value) for n in ast.walk(func) if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name)}  # fmt: skip
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("assertTrue", "assertFalse"):
                inner = node.args[0]
                if isinstance(inner, ast.Call):
                    yield func.name, node.func.attr, inner.args, local


def _value(arg, local):
    return local.get(arg.id) if isinstance(arg, ast.Name) else _literal(arg)


def hendrycks_cases(repo: Path, commit: str) -> list[dict]:
    path = "modeling/math_equivalence_test.py"
    out = []
    for test, kind, args, local in _assert_pairs(ast.parse((repo / path).read_text(encoding="utf-8"))):
        pred, gold = (_value(a, local) for a in args)  # is_equiv(model output, gold answer)
        out.append({"source": "hendrycks/math", "commit": commit, "path": path, "test": test, "gold": gold,
                    "pred": pred, "expected": int(kind == "assertTrue"), "settings": {"order": "as written"}})
    return out


def opencompass_cases(file: Path, commit: str) -> list[dict]:
    path = "tests/datasets/test_olympiadbench.py"
    out = []
    for test, kind, args, local in _assert_pairs(ast.parse(file.read_text(encoding="utf-8"))):
        gold, pred = (_value(a, local) for a in args)  # MathJudger.judge(ground truth, model answer)
        out.append({"source": "open-compass/opencompass", "commit": commit, "path": path, "test": test,
                    "gold": gold, "pred": pred, "expected": int(kind == "assertTrue"), "settings": {}})
    return out


def write(name: str, rows: list[dict]) -> None:
    with open(HERE / name, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{name}: {len(rows)} cases")


if __name__ == "__main__":
    mv, hm, oc = (Path(a) for a in sys.argv[1:4])
    write("math_verify_cases.jsonl", math_verify_cases(mv, sys.argv[4] if len(sys.argv) > 4 else "HEAD"))
    write("math_is_equiv_cases.jsonl", hendrycks_cases(hm, sys.argv[5] if len(sys.argv) > 5 else "HEAD"))
    write("opencompass_olympiadbench_cases.jsonl", opencompass_cases(oc, sys.argv[6] if len(sys.argv) > 6 else "HEAD"))
