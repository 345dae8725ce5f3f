"""Preloaded by the grader's fork server (pool.py): one comparison of each common answer shape, so every
worker forked from it, the replacement of a killed one included, starts with math-verify's parsers and
sympy's lazily imported parts loaded instead of paying for them inside its first deadlines."""

import logging

from harness.grading.compare import _parse, compare

WARM_PAIRS = (
    ("\\frac{1}{2}", "0.5"), ("\\sqrt{2}", "2^{1/2}"), ("(1, 2]", "(1,2]"), ("x = 5", "5"),
    ("\\sin x", "\\cos x"), ("\\{1, 2\\}", "1, 2"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "(1, 2)"),
    ("3\\pi", "9.42"), ("x^2 - 1", "(x-1)(x+1)"), ("2 \\times 10^{3}", "2000"), ("\\text{east}", "East"),
)  # fmt: skip

logging.getLogger("math_verify").setLevel(logging.ERROR)
for _pred, _gold in WARM_PAIRS:
    try:
        compare(_pred, _gold, "math")
    except Exception:  # a broken install shows up per sample, as grader_error
        pass
_parse.cache_clear()  # workers start with empty caches
