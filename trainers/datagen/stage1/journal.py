"""One JSONL journal per LLM step, keyed by call: a killed run resumes without repeating a finished call.

A line: {"key": "TRACE_ID" or "TRACE_ID#b1t2", "trace_id", "prompt": "step1_structure@1",
"request_sha256" (of the model and messages sent: a changed trace or model asks again), "text",
"finish_reason", "prompt_tokens", "completion_tokens", "attempts", "error", "http_statuses",
"response_id"}. An entry counts only for
the prompt version it was made with. Calls that failed after their retries (`error` set) are journaled too,
so a rerun does not hammer a dead endpoint; `retry_errors=True` asks them again. A torn last line (a kill
mid-write) is cut before appending.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.jsonl import iter_jsonl
from harness.records import cut_torn_tail


class Journal:
    def __init__(self, path: Path, retry_errors: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries: dict[tuple[str, str], dict] = {}
        if self.path.exists():
            for _, obj in iter_jsonl(self.path, allow_torn_tail=True):
                if retry_errors and obj.get("error"):
                    continue
                self.entries[(obj.get("key"), obj.get("prompt"))] = obj
            cut_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends

    def get(self, key: str, prompt_tag: str) -> dict | None:
        return self.entries.get((key, prompt_tag))

    def add(self, entry: dict) -> None:
        self.entries[(entry["key"], entry["prompt"])] = entry
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
