"""Math grading: extract the last boxed answer, compare with math-verify, in worker processes with a deadline.

Spec section 1: the final answer is the content of the LAST `\\boxed{...}` in the output; no box = not correct.
math-verify (gold first) decides equivalence after the normalisations of `harness.answer_norm`; the toy
task's answers are digit strings and must match exactly after normalising ("0917" is not "917"). Its own
timeouts use SIGALRM and cannot interrupt big-integer work in C (`\\boxed{9^{9^{9^{9}}}}`), so every
comparison runs in a worker process that is SIGKILLed when it passes the per-sample deadline.

    from harness.grading import grade, grade_many
    grade("... so \\boxed{025}", "25", "aime24")            # Grade(status='correct', extracted='025')
    grade_many([(response, gold, "math500", truncated)], workers=2, deadline_s=5.0)
"""

from __future__ import annotations

import atexit
import logging
import math
import multiprocessing as mp
import re
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import wait as wait_conns
from typing import Any

from harness import answer_norm as norm

STATUSES = ("correct", "wrong", "no_answer", "truncated", "timeout", "grader_error")
BENCHMARKS = ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "toy")
DIGIT_STRING_BENCHMARKS = ("toy",)  # answers are digit strings compared exactly (leading zeros count)
MINERVA_REL_TOL = 1e-2  # Minerva protocol: numeric answers agree within a 1% relative tolerance
WORKER_START_S = 120.0  # a worker must import math-verify and report ready within this time
_BOX_COMMANDS = ("\\boxed", "\\fbox", "\\framebox")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grade:
    """One graded sample. `status` is one of STATUSES; `extracted` the boxed text (None if no box)."""

    status: str
    extracted: str | None

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------- extraction
_BOX_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])([ \t]*)")
_TOKEN_RE = re.compile(r"[^\s$]+")
_BRACE_RE = re.compile(r"\\[{}]|[{}]")


def _closing_braces(text: str) -> dict[int, int]:
    """Index of each `{` -> index of its `}`, in one pass (linear even on degenerate output)."""
    match, stack = {}, []
    for m in _BRACE_RE.finditer(text):
        if m.group(0) == "{":
            stack.append(m.start())
        elif m.group(0) == "}" and stack:
            match[stack.pop()] = m.start()
    return match  # `\{` and `\}` are literal braces: matched whole by _BRACE_RE, never paired


def _box_contents(text: str) -> list[str]:
    """Contents of every `\\boxed{..}` / `\\boxed {..}` / `\\fbox{..}` / `\\boxed 5`, in order."""
    found: list[str] = []
    closing: dict[int, int] | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        if text[j : j + 1] == "{":
            closing = _closing_braces(text) if closing is None else closing
            if j in closing:
                found.append(text[j + 1 : closing[j]])
        elif m.group(1) and m.group(0).startswith("\\boxed"):  # "\boxed 5": one token
            if tok := _TOKEN_RE.match(text, j):
                found.append(tok.group(0))
    return found


def extract_answer(response: str, require_after_think: bool = False) -> str | None:
    """Content of the last `\\boxed{...}` (nested braces kept); None when there is none.

    With `require_after_think`, only text after the last `</think>` counts (no `</think>` -> None).
    """
    if require_after_think:
        cut = response.rfind("</think>")
        if cut == -1:
            return None
        response = response[cut + len("</think>") :]
    boxes = _box_contents(response)
    if not boxes:
        return None
    return boxes[-1].strip()


# ------------------------------------------------------------------------------ comparison (in workers)
def _parse(s: str) -> list:
    from math_verify import parse

    return parse("\\boxed{" + s + "}", parsing_timeout=None)


def _mv_equal(gold: str, pred: str, rel_tol: float | None) -> bool:
    from math_verify import verify

    g, p = _parse(gold), _parse(pred)
    if not g or not p or _symbols_differ(g, p):
        return False
    if verify(g, p, timeout_seconds=None):
        return True
    if rel_tol is None:
        return False
    for ge in g:
        for pe in p:  # Minerva: both sides numbers -> relative tolerance
            if getattr(ge, "is_number", False) and getattr(pe, "is_number", False):
                try:
                    if math.isclose(float(pe), float(ge), rel_tol=rel_tol):
                        return True
                except (TypeError, ValueError, OverflowError):
                    pass
    return False


def _symbols_differ(golds: list, preds: list) -> bool:
    """Plain expressions over different variables never match (math-verify's strict mode); deciding
    it here skips sympy simplifications that can run for seconds (a number vs an ODE solution)."""
    from sympy import Expr
    from sympy.core.relational import Relational

    pairs = [
        (g, p)
        for g in golds
        for p in preds
        for kind in (Expr, Relational)
        if isinstance(g, kind) and isinstance(p, kind)
    ]
    if not pairs:
        return False
    names = lambda e: {str(s) for s in e.free_symbols}  # noqa: E731
    return all(names(g) != names(p) for g, p in pairs)


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")


def is_equivalent(pred: str, gold: str, benchmark: str, _split: bool = True) -> bool:
    """True when `pred` equals `gold` mathematically under `benchmark`'s rules. In-process, NO deadline:

    call it only on trusted strings or inside a worker; `grade_many` / `equivalent_many` are the safe paths.
    """
    _check_benchmark(benchmark)
    g, p = norm.normalize(gold), norm.normalize(pred)
    if not p or not g:
        return False
    if g == p:
        return True
    if benchmark in DIGIT_STRING_BENCHMARKS:
        return False  # the answer is a digit string: "0917" is not "917"
    gi = norm.simple_integer(g)
    if gi is not None and (pi := norm.simple_integer(p)) is not None:
        return gi == pi  # "025" == "25", "27.0" == "27"
    rel_tol = MINERVA_REL_TOL if benchmark == "minerva_math" else None
    if rel_tol is not None and (gv := norm.minerva_number(gold)) is not None:
        if (pv := norm.minerva_number(pred)) is not None:
            return math.isclose(pv, gv, rel_tol=rel_tol)
    if norm.is_text_answer(g) or norm.is_text_answer(p):
        if norm.plain_text(g) and norm.plain_text(g) == norm.plain_text(p):
            return True
    if _mv_equal(g, p, rel_tol):
        return True
    g2, p2 = norm.drop_lhs(g), norm.drop_lhs(p)
    if (g2, p2) != (g, p) and _mv_equal(g2, p2, rel_tol):
        return True
    if _split:
        gparts = norm.split_top_level(g)
        if len(gparts) > 1:  # several answers in one string: order-insensitive match
            pparts = norm.split_top_level(norm.unwrap_set(norm.split_alternatives(p)))
            return len(pparts) == len(gparts) and _match_all(gparts, pparts, benchmark)
    return False


def _match_all(golds: list[str], preds: list[str], benchmark: str) -> bool:
    unused = list(preds)
    for g in golds:
        hit = next((i for i, p in enumerate(unused) if is_equivalent(p, g, benchmark, _split=False)), None)
        if hit is None:
            return False
        unused.pop(hit)
    return True


# --------------------------------------------------------------------------------------- worker pool
def _worker_main(conn) -> None:
    """Worker loop: warm math-verify up, say ready, then answer (index, kind, args) messages."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    try:
        is_equivalent("\\frac{1}{2}", "0.5", "math500")
    except Exception:  # a broken install shows up as grader_error per sample, not here
        pass
    conn.send(("ready", None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, args = msg
        try:
            reply = ("ok", is_equivalent(*args))
        except Exception as exc:  # never str() a sympy object here: that alone can hang
            reply = ("error", type(exc).__name__)
        conn.send((index, reply))


class _Worker:
    def __init__(self, ctx) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.born = time.monotonic()
        self.ready = False
        self.task: int | None = None
        self.sent_at = 0.0

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class GraderPool:
    """Worker processes, one task at a time each, with a hard per-task deadline (SIGKILL + replacement)."""

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.ctx = mp.get_context("forkserver")
        try:
            self.ctx.set_forkserver_preload(["harness.grading", "math_verify"])
        except Exception:
            pass
        self.size = workers
        self.workers = [_Worker(self.ctx) for _ in range(workers)]
        self.lock = threading.Lock()

    def run(self, tasks: Sequence[tuple], deadline_s: float) -> list[tuple[str, Any]]:
        """Results in task order: ("ok", value), ("timeout", None) or ("error", why)."""
        with self.lock:
            return self._run(tasks, deadline_s)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self.workers[self.workers.index(w)] = _Worker(self.ctx)

    def _run(self, tasks: Sequence[tuple], deadline_s: float) -> list[tuple[str, Any]]:
        results: list[tuple[str, Any] | None] = [None] * len(tasks)
        pending = deque(range(len(tasks)))
        failed_starts = 0
        while pending or any(w.task is not None for w in self.workers):
            for w in self.workers:
                if w.ready and w.task is None and pending:
                    i = pending.popleft()
                    try:
                        w.conn.send((i, tasks[i]))
                    except (OSError, ValueError):  # died while idle: retry the task on a fresh worker
                        pending.appendleft(i)
                        self._replace(w)
                        continue
                    w.task, w.sent_at = i, time.monotonic()
            now = time.monotonic()
            waits = [w.sent_at + deadline_s - now for w in self.workers if w.task is not None]
            waits += [w.born + WORKER_START_S - now for w in self.workers if not w.ready]
            ready = wait_conns([w.conn for w in self.workers], timeout=max(0.0, min(waits, default=1.0)))
            for w in [w for w in self.workers if w.conn in ready]:
                try:
                    index, reply = w.conn.recv()
                except (EOFError, OSError):  # the worker died (crash, OOM kill, failed start)
                    if w.task is not None:
                        results[w.task] = ("error", "worker died")
                    failed_starts += not w.ready
                    self._replace(w)
                    continue
                if index == "ready":
                    w.ready, failed_starts = True, 0
                elif index == w.task:
                    results[index], w.task = reply, None
            now = time.monotonic()
            for w in list(self.workers):
                if w.task is not None and now - w.sent_at > deadline_s:
                    results[w.task] = ("timeout", None)
                    self._replace(w)
                elif not w.ready and now - w.born > WORKER_START_S:
                    failed_starts += 1
                    self._replace(w)
            if failed_starts >= 2 * self.size:  # workers cannot start: fail the rest, never hang
                _log.error(
                    "grader workers failed to start; a script that grades needs an "
                    '`if __name__ == "__main__":` guard (worker processes re-import it)'
                )
                while pending:
                    results[pending.popleft()] = ("error", "grader workers failed to start")
        return [r if r is not None else ("error", "lost") for r in results]

    def close(self) -> None:
        for w in self.workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
            w.proc.join(timeout=1)
            w.kill()
        self.workers = []


_POOL: GraderPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(workers: int = 2) -> GraderPool:
    """The process-wide pool (created on first use, resized when `workers` changes, closed at exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.size != workers or not _POOL.workers:
            if _POOL is not None:
                _POOL.close()
            _POOL = GraderPool(workers)
        return _POOL


@atexit.register
def close_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.close()
        _POOL = None


# ------------------------------------------------------------------------------------------ public API
def grade_many(items: Iterable[Sequence[Any]], workers: int = 2, deadline_s: float = 5.0) -> list[Grade]:
    """Grade (response, gold, benchmark[, truncated]) items; results in the order of `items`.

    Each comparison gets `deadline_s` seconds in a worker process; past it the worker is killed and the
    sample is `timeout`. A worker exception makes that one sample `grader_error`.
    """
    if deadline_s <= 0:
        raise ValueError(f"deadline_s must be > 0, got {deadline_s}")
    items = [tuple(it) for it in items]
    grades: list[Grade | None] = [None] * len(items)
    tasks, where = [], []
    for i, item in enumerate(items):
        response, gold, benchmark = item[0], item[1], item[2]
        truncated = bool(item[3]) if len(item) > 3 else False
        _check_benchmark(benchmark)
        extracted = extract_answer(response or "")
        if extracted is None or not extracted.strip():
            grades[i] = Grade("truncated" if truncated else "no_answer", extracted)
        else:
            tasks.append((extracted, str(gold), benchmark))
            where.append(i)
    if tasks:
        replies = get_pool(workers).run(tasks, deadline_s)
        for i, task, (kind, value) in zip(where, tasks, replies, strict=True):
            status = {"ok": "correct" if value else "wrong", "timeout": "timeout"}.get(kind, "grader_error")
            grades[i] = Grade(status, task[0])
    return [g for g in grades if g is not None]


def grade(
    response: str, gold: str, benchmark: str, *, truncated: bool = False, deadline_s: float = 5.0
) -> Grade:
    """Grade one response (through the shared worker pool, so it cannot hang)."""
    return grade_many([(response, gold, benchmark, truncated)], workers=2, deadline_s=deadline_s)[0]


def equivalent_many(
    pairs: Sequence[tuple[str, str]], benchmark: str, workers: int = 2, deadline_s: float = 5.0
) -> list[bool]:
    """is_equivalent(a, b) for each (a, b) pair, in worker processes; a timeout or error counts False."""
    _check_benchmark(benchmark)
    if not pairs:
        return []
    replies = get_pool(workers).run([(a, b, benchmark) for a, b in pairs], deadline_s)
    return [kind == "ok" and bool(value) for kind, value in replies]
