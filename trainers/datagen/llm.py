"""A small client for any OpenAI-compatible chat completions endpoint (`POST {base_url}/chat/completions`).

    client = ChatClient(ChatConfig(base_url="http://127.0.0.1:8000/v1", model="m"), api_key=os.environ[...])
    reply = await client.chat([{"role": "user", "content": "..."}])
    reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens, reply.error

At most `concurrency` requests are in flight; each has a timeout; a timeout, a connection error, HTTP 429
or 5xx is retried `retries` times with exponential backoff (`backoff_s * 2**attempt`, or the server's
Retry-After when it sends one, capped at `max_backoff_s`). Whatever still fails comes back as a ChatReply
with `error` set: a reply is data, never an exception. The API key goes into the Authorization header only;
it is never logged or written anywhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class ChatConfig:
    base_url: str
    """Endpoint root, e.g. http://127.0.0.1:8000/v1 (`/chat/completions` is appended)."""
    model: str
    """The `model` field sent with every request."""
    temperature: float = 0.0
    max_tokens: int = 4096
    """Completion tokens per reply; a reply cut there has finish_reason "length" (a truncated reply)."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout_s: float = 300.0
    retries: int = 4
    """Extra attempts after a timeout, connection error, HTTP 429 or 5xx."""
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("concurrency", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("timeout_s",):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("retries", "backoff_s", "max_backoff_s", "temperature"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class ChatReply:
    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    error: str | None = None
    """Why no usable reply came back (after the retries); None on success."""
    http_statuses: list[int] = field(default_factory=list)
    """Status of every attempt (0: no response: timeout or connection error)."""
    response_id: str | None = None
    """The completion's `id` as the server gave it."""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)


class ChatClient:
    """Use inside one event loop: `async with ChatClient(config, api_key) as client: ...`."""

    def __init__(self, config: ChatConfig, api_key: str | None = None) -> None:
        self.config = config
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        self._client = None
        self._sem: asyncio.Semaphore | None = None

    async def __aenter__(self) -> ChatClient:
        import httpx

        self._client = httpx.AsyncClient(headers=self._headers, timeout=httpx.Timeout(self.config.timeout_s))
        self._sem = asyncio.Semaphore(self.config.concurrency)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.aclose()

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient(url={self._url!r}, model={self.config.model!r})"

    async def chat(self, messages: list[dict]) -> ChatReply:
        import httpx

        cfg = self.config
        body = {
            "model": cfg.model,
            "messages": messages,
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
        }
        statuses: list[int] = []
        error = "no attempt"
        for attempt in range(cfg.retries + 1):
            wait = None
            async with self._sem:
                try:
                    resp = await self._client.post(self._url, json=body)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    statuses.append(0)
                    error = f"{type(exc).__name__}: {str(exc)[:200]}"
                else:
                    statuses.append(resp.status_code)
                    if resp.status_code == 200:
                        return _parse(resp, attempt + 1, statuses)
                    error = f"HTTP {resp.status_code}: {resp.text[:200]}"
                    if resp.status_code not in RETRY_STATUSES:
                        break
                    wait = _retry_after(resp.headers.get("retry-after"))
            if attempt < cfg.retries:
                delay = wait if wait is not None else cfg.backoff_s * 2**attempt
                await asyncio.sleep(min(delay, cfg.max_backoff_s))
        return ChatReply(None, attempts=len(statuses), error=error, http_statuses=statuses)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _parse(resp, attempts: int, statuses: list[int]) -> ChatReply:
    """The reply of a 200 response; a body that is not a chat completion is an error reply."""
    try:
        data = resp.json()
        choice = data["choices"][0]
        text = choice["message"]["content"]
        if not isinstance(text, str):
            raise TypeError(f"message.content is {type(text).__name__}")
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return ChatReply(None, attempts=attempts, error=f"malformed response body ({type(exc).__name__}: {exc})"[:300],
                         http_statuses=statuses)  # fmt: skip
    usage = data.get("usage") or {}
    return ChatReply(text, choice.get("finish_reason"), int(usage.get("prompt_tokens") or 0),
                     int(usage.get("completion_tokens") or 0), attempts, None, statuses,
                     str(data["id"]) if data.get("id") is not None else None)  # fmt: skip
