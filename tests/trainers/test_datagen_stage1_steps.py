"""Stage 1's deterministic parts, exactly: reply parsing (step 1, 3, 4), cutting (step 2), edits (step 3),
assembly; and the chat client's retries against a real HTTP server."""

from __future__ import annotations

import asyncio

import pytest
from chat_server import ChatServer, Reply

from harness.formats import get_format
from trainers.datagen.llm import ChatClient, ChatConfig
from trainers.datagen.stage1.cut import CutBlock, Trace, apply_edits, assemble, cut_blocks
from trainers.datagen.stage1.parse import extract_json, parse_edits, parse_outlines, parse_structure
from trainers.datagen.stage1.templates import load_templates


def test_extract_json_takes_the_first_object_in_prose_or_fences():
    assert extract_json('{"a": 1}') == {"a": 1}
    assert extract_json('Sure!\n```json\n{"a": 2}\n```\nbye') == {"a": 2}
    assert extract_json('text [1, 2] then {"a": 3} and {"b": 4}') == {"a": 3}
    assert extract_json('{"a": 1') is None and extract_json("no json") is None and extract_json("[1]") is None


def test_parse_structure_and_its_malformed_replies():
    ok = '{"steps": [], "parallel_blocks": [{"threads": [[1, 3], [4, 6]]}, {"threads": [[8, 9]]}]}'
    assert parse_structure(ok) == ([[(1, 3), (4, 6)], [(8, 9)]], None)
    assert parse_structure('{"steps": [], "parallel_blocks": []}') == ([], None)
    for text, reason in [
        ("I think lines 1-3 and 4-6.", "malformed: no JSON object in the reply"),
        ('{"steps": []}', "malformed: the JSON object has no `parallel_blocks`"),
        ('{"parallel_blocks": {"threads": []}}', "malformed: `parallel_blocks` is not a list"),
        ('{"parallel_blocks": [{"thread": [[1, 2]]}]}', "malformed: parallel_blocks[0] has no list `threads`"),
        ('{"parallel_blocks": [{"threads": [[1, "2"]]}]}', "malformed: parallel_blocks[0] thread [1, '2'] is not [first, last]"),
        ('{"parallel_blocks": [{"threads": [[1, true]]}]}', "malformed: parallel_blocks[0] thread [1, True] is not [first, last]"),
        ('{"parallel_blocks": [{"threads": [[1, 2]]}]', "malformed: the JSON object has no `parallel_blocks`"),  # cut off
    ]:  # fmt: skip
        assert parse_structure(text) == (None, reason)


def test_parse_edits_and_outlines():
    assert parse_edits('{"edits": [{"find": "a", "replace": "b"}]}') == ([("a", "b")], None)
    assert (
        parse_edits('{"edits": [{"find": "", "replace": "b"}]}')[1]
        == "malformed: an edit with an empty `find`"
    )
    assert parse_edits('{"edits": [{"find": "a"}]}')[1].startswith("malformed: edit ")
    assert parse_outlines('{"outlines": ["Find  x\\n by AM-GM.", "Check y."]}', 2) == (
        ["Find x by AM-GM.", "Check y."],
        None,
    )
    assert parse_outlines('{"outlines": ["a"]}', 2) == (None, "outline_count: 1 outlines for 2 threads")
    assert parse_outlines('{"outlines": ["a", " "]}', 2) == (None, "outline_empty: outline 2 is empty")
    assert parse_outlines('{"outlines": ["x", "So it is \\\\boxed{3}."]}', 2)[1].startswith(
        "outline_reveals: outline 2"
    )
    assert parse_outlines('{"outlines": ["x", "' + "y" * 601 + '"]}', 2)[1].startswith(
        "outline_too_long: outline 2"
    )
    assert parse_outlines('{"outlines": "a"}', 1) == (None, "malformed: `outlines` is not a list of strings")


LINES = [
    "Intro.",
    "A" * 150,
    "B" * 150,
    "",
    "C" * 300,
    "Combine.",
    "D" * 50,
    "E" * 60,
    "The answer is $\\boxed{7}$.",
]


def test_cut_blocks_every_drop_reason():
    trace = Trace.split("\n".join(LINES))
    proposed = [
        [(2, 3), (5, 5)],  # kept: blank line 4 between threads; saves 301 + 300 - 301 = 300 chars
        [(7, 7)],  # one_thread
        [(7, 8), (10, 10)],  # bad_range: the trace has 9 lines
        [(7, 8), (8, 8)],  # overlap (threads)
        [(6, 6), (8, 8)],  # not_adjacent: line 7 has text
        [(5, 5), (6, 6)],  # overlap with the kept block
        [(7, 7), (8, 8)],  # too_little_saved: 50 characters
    ]
    blocks, notes = cut_blocks(trace, proposed)
    assert [(b.first, b.last, b.threads) for b in blocks] == [
        (2, 5, ["A" * 150 + "\n" + "B" * 150, "C" * 300])
    ]
    assert [n.split(":")[0] for n in notes] == ["one_thread", "bad_range", "overlap", "not_adjacent", "overlap",
                                                "too_little_saved"]  # fmt: skip
    assert notes[5] == "too_little_saved: block 7 saves 50 characters (at least 200)"
    blank = Trace.split("x\n\n" + "y" * 300)
    assert cut_blocks(blank, [[(1, 1), (2, 2)]])[1] == [
        "one_thread: block 1 has fewer than 2 non-blank threads"
    ]
    assert cut_blocks(trace, [[(7, 7), (8, 8)]], min_saved_chars=50)[0][0].threads == ["D" * 50, "E" * 60]


def test_apply_edits_is_exact_and_minimal():
    text = "Using the value of x from above, y = 2x = 6, and so y + 1 = 7 follows at once from it."
    want = "With x = 3, y = 2x = 6, and so y + 1 = 7 follows at once from it."
    assert apply_edits(text, [("Using the value of x from above", "With x = 3")]) == (want, None)
    assert apply_edits(text, [("from below", "")])[1] == "edit_not_found: 'from below' is not in the thread"
    assert apply_edits(text, [("x", "z")])[1] == "edit_ambiguous: 'x' occurs 2 times in the thread"
    assert apply_edits(text, [(text[:50], "")])[1].startswith("edit_too_large")


def test_assemble_through_the_format_and_think_split():
    trace = Trace.split("<think>\nplan\nA\nB\nend\n</think>\n\n\\boxed{1}")
    assert (
        trace.head == "<think>\n"
        and trace.lines == ["plan", "A", "B", "end", ""]
        and trace.numbered().startswith("1: plan\n2: A")
    )
    block = CutBlock(2, 3, ["A", "B"], ["do a", "do b"])
    want = ("<think>\nplan\n<Parallel>\n<Outlines>\n<Outline>1: do a</Outline>\n<Outline>2: do b</Outline>\n"
            "</Outlines>\n<Thread>\n1: A</Thread><Thread>\n2: B</Thread>\n</Parallel>\nend\n</think>\n\n\\boxed{1}")  # fmt: skip
    fmt = get_format("threadweaver")
    assert assemble(trace, [block], fmt, "model") == want == assemble(trace, [block], fmt, "orchestrator")
    assert fmt.validate(want) == []


def test_templates_are_versioned_files():
    templates = load_templates()
    assert {t.tag for t in templates.values()} == {
        "step1_structure@1",
        "step3_decouple@1",
        "step4_outlines@1",
    }
    msgs = templates[1].messages(problem="P?", numbered="1: a")
    assert [m["role"] for m in msgs] == ["system", "user"] and "P?" in msgs[1]["content"]
    with pytest.raises(KeyError):
        templates[1].messages(problem="P?")


def _chat(server: ChatServer, **cfg):
    config = ChatConfig(server.url, "m", backoff_s=0.01, **cfg)

    async def go():
        async with ChatClient(config, api_key="sekret") as client:
            return await client.chat([{"role": "system", "content": "find the parts of a solution"},
                                      {"role": "user", "content": "hi"}])  # fmt: skip

    return asyncio.run(go())


def test_client_retries_500_and_429_then_succeeds():
    def script(step, user, previous):  # the same request: fails twice, then answers
        return [Reply(status=500), Reply(status=429, retry_after="0"), Reply("ok")][previous]

    with ChatServer(script) as server:
        reply = _chat(server)
    assert (reply.text, reply.error, reply.attempts, reply.http_statuses) == ("ok", None, 3, [500, 429, 200])
    assert (reply.prompt_tokens, reply.completion_tokens) == (100, 20)
    assert server.calls[0]["auth"] == "Bearer sekret" and "sekret" not in repr(
        ChatClient(ChatConfig(server.url, "m"), "sekret")
    )


def test_client_gives_up_as_data_never_raises():
    with ChatServer(lambda *a: Reply(status=503)) as server:
        reply = _chat(server, retries=2)
    assert reply.text is None and reply.attempts == 3 and reply.error.startswith("HTTP 503")
    with ChatServer(lambda *a: Reply(status=400)) as server:  # a client error is not retried
        assert _chat(server, retries=2).http_statuses == [400]
    with ChatServer(lambda *a: Reply(raw_body="<html>oops</html>")) as server:
        assert _chat(server).error.startswith("malformed response body (JSONDecodeError")
    with ChatServer(lambda *a: Reply("late", delay_s=0.6)) as server:
        reply = _chat(server, retries=1, timeout_s=0.2)
    assert reply.http_statuses == [0, 0] and reply.error.startswith("ReadTimeout")
    with ChatServer(lambda *a: Reply("cut", finish_reason="length")) as server:
        assert _chat(server).truncated
