"""Worker processes for grading, with a hard per-task deadline.

math-verify's own timeouts use SIGALRM and cannot interrupt big-integer work in C
(`\\boxed{9^{9^{9^{9}}}}`), so every comparison runs in a worker process that is SIGKILLed when it passes
the per-task deadline, and replaced.

Tasks with the same key (the gold: the samples of one problem) go to the same worker, whose parse cache
then reads that gold once (an RL batch has 8 samples per problem); an idle worker takes work from the
longest other queue rather than wait.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import wait as wait_conns
from typing import Any

WORKER_START_S = 120.0  # a worker must import math-verify and report ready within this time
_log = logging.getLogger(__name__)


def _worker_main(conn) -> None:
    """Worker loop: warm math-verify up, say ready, then answer (index, kind, args) messages."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    from harness.grading.compare import compare

    try:
        compare("\\frac{1}{2}", "0.5", "math")
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
            reply = ("ok", compare(*args))
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


class _Queues:
    """Pending task indices, one queue per worker slot: a task's key picks its slot (stable crc32)."""

    def __init__(self, n: int, slots: int, keys: Sequence[str] | None) -> None:
        self.queues: list[deque[int]] = [deque() for _ in range(slots)]
        for i in range(n):
            slot = i if keys is None else zlib.crc32(str(keys[i]).encode("utf-8", "replace"))
            self.queues[slot % slots].append(i)
        self.left = n

    def __bool__(self) -> bool:
        return self.left > 0

    def take(self, slot: int) -> int:
        """The next task of `slot`, else the last task of the longest other queue."""
        self.left -= 1
        if self.queues[slot]:
            return self.queues[slot].popleft()
        return max(self.queues, key=len).pop()

    def put_back(self, slot: int, i: int) -> None:
        self.queues[slot].appendleft(i)
        self.left += 1


class GraderPool:
    """Worker processes, one task at a time each, with a hard per-task deadline (SIGKILL + replacement)."""

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.ctx = mp.get_context("forkserver")
        try:
            self.ctx.set_forkserver_preload(["harness.grading.warm"])  # workers fork warm
        except Exception:
            pass
        self.size = workers
        self.affinity = True  # tasks with the same key to the same worker (False: round-robin, for benchmarks)
        self.workers = [_Worker(self.ctx) for _ in range(workers)]
        self.lock = threading.Lock()

    def run(
        self, tasks: Sequence[tuple], deadline_s: float, keys: Sequence[str] | None = None
    ) -> list[tuple[str, Any]]:
        """compare(*task) for each task; results in task order: ("ok", (equal, decided_by)),
        ("timeout", None) or ("error", why). Tasks with equal `keys` prefer the same worker."""
        with self.lock:
            return self._run(tasks, deadline_s, keys)

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self.workers[self.workers.index(w)] = _Worker(self.ctx)

    def _run(self, tasks: Sequence[tuple], deadline_s: float, keys: Sequence[str] | None) -> list[tuple[str, Any]]:
        results: list[tuple[str, Any] | None] = [None] * len(tasks)
        pending = _Queues(len(tasks), self.size, keys if self.affinity else None)
        failed_starts = 0
        while pending or any(w.task is not None for w in self.workers):
            for slot, w in enumerate(self.workers):
                if w.ready and w.task is None and pending:
                    i = pending.take(slot)
                    try:
                        w.conn.send((i, tasks[i]))
                    except (OSError, ValueError):  # died while idle: retry the task on a fresh worker
                        pending.put_back(slot, i)
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
                    results[pending.take(0)] = ("error", "grader workers failed to start")
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
