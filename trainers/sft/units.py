"""Training units of a trajectory: the requests the trie rollout issues, cut through the format object.

    units = units_from_record(record)                            # a rollout's own record: exact
    units = cut_units(prompt_ids, text, "threadweaver", "model", tokenizer)   # a text-only trajectory

A unit is one (prompt, completion) request of the trie rollout (threadweaver.md section 2, formats.md
section 1), or the whole trajectory (which keeps the autoregressive mode, threadweaver.md section 3).

A record written by the rollout carries its units (prompt = shared context + inserted ids, completion =
the ids the engine returned): they are used as they are. A text-only trajectory (toy data, generated
data) is replayed: the format's runtime loop is run over the finished text, which yields the pieces the
text is made of (what each request wrote, what the runtime inserted) and the requests. Every piece is
encoded on its own, as the rollout does, so a BPE tokenizer never merges characters across a join
("\\n1:" then "\\n..." stays ":" + "\\n", never ":\\n"), and each unit sees exactly the ids it sees at
inference. At the first place where the text is not what the runtime would have built (a header, a
close, the after-join text), cutting stops: the units before it are kept, the rest of the trajectory is
trained through the whole-trajectory unit only.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.formats import ParallelFormat, get_format
from harness.records import SampleRecord


@dataclass(frozen=True)
class Unit:
    """One request of the trie rollout (or the whole trajectory): what the model sees and what it writes."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        return self.prompt_ids + self.completion_ids


@dataclass(frozen=True)
class _Request:
    """A replayed request: context = pieces[:prefix] + `inserted` (text, or piece indices), completion =
    pieces[completion]."""

    prefix: int
    inserted: tuple[str | int, ...]
    completion: int


def _first(text: str, pos: int, tags: list[str]) -> tuple[int, str | None]:
    """End (after the tag) of the first of `tags` in text[pos:], and the tag; (len(text), None) if none."""
    found = [(j, t) for t in tags if (j := text.find(t, pos)) >= 0]
    if not found:
        return len(text), None
    j, tag = min(found)
    return j + len(tag), tag


class _Replay:
    """The rollout's loop over a finished text (harness/formats/base.py); fills `pieces` and `requests`."""

    def __init__(self, text: str, fmt: ParallelFormat, join: str) -> None:
        self.text, self.fmt, self.join = text, fmt, fmt.check_join(join)
        self.pieces: list[str] = []
        self.requests: list[_Request] = []
        self.blocks = 0

    def emit(self, piece: str) -> int:
        self.pieces.append(piece)
        return len(self.pieces) - 1

    def request(self, pos: int, end: int, ctx: tuple[int, tuple] | None, start: int) -> None:
        """Record a request that wrote text[pos:end]; `ctx` is a branch's (prefix, inserted), None = trunk."""
        k = self.emit(self.text[pos:end])
        if ctx is None:
            self.requests.append(_Request(k, (), k))
        else:
            self.requests.append(_Request(ctx[0], ctx[1] + tuple(range(start, k)), k))

    def span(self, pos: int, depth: int, close: str | None, ctx: tuple[int, tuple] | None) -> tuple[int, str]:
        """Replay a trunk (close None) or a branch from text[pos:]; (new pos, "end" | "closed" | "irregular")."""
        fmt, text = self.fmt, self.text
        start = len(self.pieces)
        while True:
            if close is None and pos == len(text):
                return pos, "end"
            tags = [close] if close else []
            if depth < fmt.max_depth and (fmt.max_blocks is None or self.blocks < fmt.max_blocks):
                tags.append(fmt.fork_trigger)
            end, tag = _first(text, pos, tags)
            if tag is None and close is not None:
                return pos, "irregular"  # an unclosed branch: the runtime would have inserted the close
            self.request(pos, end, ctx, start)
            step_text, pos = text[pos:end], end
            if tag is None:
                return pos, "end"
            if tag == close:
                return pos, "closed"
            plan = fmt.plan_fork(step_text)
            if not plan.branch_ids:
                if plan.close_as_join:
                    pos = self.expect(pos, fmt.after_join(self.join))
                    if pos < 0:
                        return -pos, "irregular"
                continue
            pos, how = self.fork(pos, depth, ctx, start, plan.branch_ids)
            if how != "joined":
                return pos, how
            if fmt.max_blocks is not None and self.blocks >= fmt.max_blocks and depth == 0:
                return pos, ("end" if pos == len(text) else "irregular")

    def expect(self, pos: int, piece: str) -> int:
        """Emit the runtime's `piece` if the text holds it at `pos`: the new pos, or -pos if it does not."""
        if not piece:
            return pos
        if not self.text.startswith(piece, pos):
            return -pos
        self.emit(piece)
        return pos + len(piece)

    def fork(self, pos: int, depth: int, ctx, start: int, ids: tuple[str, ...]) -> tuple[int, str]:
        fmt = self.fmt
        self.blocks += 1
        fork_ctx = (len(self.pieces), ()) if ctx is None else (ctx[0], ctx[1] + tuple(range(start, len(self.pieces))))
        for k, bid in enumerate(ids):
            wrapper, inside = fmt.branch_header(bid, k, joined=True)
            request_wrapper, _ = fmt.branch_header(bid, k, joined=False)
            for piece in (wrapper, inside):
                new = self.expect(pos, piece)
                if new < 0:
                    return -new, "irregular"
                pos = new
            branch_ctx = (fork_ctx[0], fork_ctx[1] + tuple(p for p in (request_wrapper, inside) if p))
            pos, how = self.span(pos, depth + 1, fmt.branch_close, branch_ctx)
            if how != "closed":
                return pos, "irregular"
        pos = self.expect(pos, fmt.after_join(self.join))
        if pos < 0:
            return -pos, "irregular"
        if fmt.summary_close is not None:
            end, tag = _first(self.text, pos, [fmt.summary_close])
            if tag is None:
                return pos, "irregular"
            self.request(pos, end, ctx, start)
            pos = end
        return pos, "joined"


def cut_units(prompt_ids, text: str, fmt: ParallelFormat | str, join: str | None, tokenizer,
              eos_id: int | None = None) -> tuple[list[int], list[Unit]]:  # fmt: skip
    """(completion ids, units) of a text-only trajectory: every request the rollout would issue for it,
    then the whole trajectory. Each piece is encoded on its own; `eos_id` (if given) ends the last piece.
    Identical units appear once."""
    fmt = get_format(fmt)
    replay = _Replay(text, fmt, join or fmt.default_join())
    pos, _ = replay.span(0, 0, None, None)
    if pos < len(text):  # irregular from here: trained through the whole-trajectory unit only
        replay.emit(text[pos:])
    enc = [list(tokenizer.encode(p, add_special_tokens=False)) for p in replay.pieces]
    if eos_id is not None:
        if not enc:
            enc.append([])
        enc[-1] = [*enc[-1], eos_id]
    prompt = tuple(prompt_ids)
    flat: list[int] = []
    offsets = [0]
    for ids in enc:
        flat.extend(ids)
        offsets.append(len(flat))
    units = []
    for r in replay.requests:
        inserted = [i for x in r.inserted for i in (enc[x] if isinstance(x, int) else tokenizer.encode(x, add_special_tokens=False))]
        completion = tuple(enc[r.completion])
        if completion:
            units.append(Unit(prompt + tuple(flat[: offsets[r.prefix]]) + tuple(inserted), completion))
    units.append(Unit(prompt, tuple(flat)))
    seen: set[Unit] = set()
    return flat, [u for u in units if not (u in seen or seen.add(u))]


def units_from_record(record: SampleRecord, eos_id: int | None = None) -> list[Unit]:
    """The units a rollout record carries (exactly what the engine saw), then the whole trajectory.

    `eos_id` is appended to the last trunk unit and the whole trajectory when the trajectory ended on its
    own end-of-sequence (the engine drops the EOS token from the returned ids)."""
    if record.prompt_ids is None or record.response_ids is None:
        raise ValueError(f"record {record.problem_id}/{record.sample_index} has no prompt_ids/response_ids")
    full = tuple(record.prompt_ids) + tuple(record.response_ids)
    ended = eos_id is not None and record.end_reason == "eos"
    last_trunk = max((i for i, u in enumerate(record.units) if u.kind == "trunk" and u.stop_reason == "eos"),
                     default=None)  # fmt: skip
    units = []
    for i, u in enumerate(record.units):
        completion = tuple(u.completion_ids) + ((eos_id,) if ended and i == last_trunk else ())
        if completion:
            units.append(Unit(full[: u.context_tokens] + tuple(u.inserted_ids), completion))
    whole = tuple(record.response_ids) + ((eos_id,) if ended else ())
    units.append(Unit(tuple(record.prompt_ids), whole))
    seen: set[Unit] = set()
    return [u for u in units if not (u in seen or seen.add(u))]
