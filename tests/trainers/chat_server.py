"""A real HTTP server speaking the OpenAI chat completions API on 127.0.0.1, with scripted replies.

    with ChatServer(script) as server:      # script(step, user_text, call_index) -> Reply | str
        server.url                           # http://127.0.0.1:PORT/v1
        server.calls                         # every request: {"step", "body", "hash", "status", "call_id"}

The step is read from the system prompt of our stage-1 templates. A Reply sets the HTTP status, body text,
finish_reason, usage, a Retry-After header, or a delay. Replies carry "call_id" (the server's call count)
in their `id` field, so a test can tell which calls a client finished.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STEP_OF_SYSTEM = {"find the parts of a solution": 1, "small, exact edits": 3, "short plans": 4}


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    finish_reason: str = "stop"
    raw_body: str | None = None
    """Sent as it is instead of a chat completion (a malformed body)."""
    retry_after: str | None = None
    delay_s: float = 0.0
    usage: tuple[int, int] = (100, 20)


def step_of(body: dict) -> int:
    system = body["messages"][0]["content"]
    return next(s for k, s in STEP_OF_SYSTEM.items() if k in system)


class ChatServer:
    def __init__(self, script, delay_s: float = 0.0, port: int = 0) -> None:
        self.script, self.delay_s = script, delay_s
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    call_id = len(server.calls)
                    step = step_of(body)
                    user = body["messages"][1]["content"]
                    entry = {
                        "step": step,
                        "body": body,
                        "hash": hashlib.sha256(user.encode()).hexdigest(),
                        "call_id": call_id,
                        "auth": self.headers.get("Authorization"),
                    }
                    server.calls.append(entry)
                    previous = sum(c["hash"] == entry["hash"] for c in server.calls) - 1
                reply = server.script(step, user, previous)
                reply = Reply(reply) if isinstance(reply, str) else reply
                entry["status"] = reply.status
                time.sleep(reply.delay_s or server.delay_s)
                if reply.raw_body is not None:
                    data = reply.raw_body.encode()
                elif reply.status != 200:
                    data = json.dumps({"error": {"message": "scripted failure"}}).encode()
                else:
                    data = json.dumps({
                        "id": f"call-{call_id}", "object": "chat.completion", "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                                     "finish_reason": reply.finish_reason}],
                        "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                                  "total_tokens": sum(reply.usage)},
                    }).encode()  # fmt: skip
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if reply.retry_after is not None:
                    self.send_header("Retry-After", reply.retry_after)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # a test's slow reply must not hold up the shutdown
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def steps(self) -> list[int]:
        return [c["step"] for c in self.calls]


# ------------------------------------------------------------------ a deterministic "LLM" for stage 1
NUMBERED = re.compile(r"^(\d+): (.*)$")


def numbered_lines(user: str) -> list[str]:
    """The trace lines of a step-1 prompt (after "numbered lines:", up to the instructions)."""
    part = user.split("with numbered lines:\n", 1)[1].split("\n\nPlease do two things.", 1)[0]
    return [m.group(2) if (m := NUMBERED.match(line)) else "" for line in part.split("\n")]


def halves(lines: list[str]) -> list[list[int]]:
    """Two threads: lines 1..k and k+1..n-1 (the last line, with the answer, stays sequential), split where
    the characters are most even."""
    n = len(lines)
    best, best_k = None, 1
    for k in range(1, n - 1):
        a, b = sum(map(len, lines[:k])), sum(map(len, lines[k : n - 1]))
        if best is None or abs(a - b) < best:
            best, best_k = abs(a - b), k
    return [[1, best_k], [best_k + 1, n - 1]]


def part_text(user: str, marker: str) -> str:
    return user.split(marker, 1)[1].split("\n>>>", 1)[0]


def good_llm(step: int, user: str, _previous: int) -> str:
    """Step 1: two halves; step 3: rewrite the thread's first line; step 4: neutral plans."""
    if step == 1:
        lines = numbered_lines(user)
        return json.dumps({"steps": [{"title": "all", "lines": [1, len(lines)], "substeps": []}],
                           "parallel_blocks": [{"why_independent": "x", "threads": halves(lines)}]})  # fmt: skip
    if step == 3:
        number = re.search(r"Here is part (\d+)", user).group(1)
        thread = part_text(user, f"Part {number}:\n<<<\n")
        first = thread.split("\n", 1)[0]
        edits = [] if thread.count(first) != 1 or 2 * len(first) > len(thread) else [
            {"find": first, "replace": "Separately, " + first}]  # fmt: skip
        return "Here are the edits:\n```json\n" + json.dumps({"edits": edits}) + "\n```"
    count = int(re.search(r"work on (\d+) parts", user).group(1))
    return json.dumps({"outlines": [f"Work out part {i} on its own." for i in range(1, count + 1)]})
