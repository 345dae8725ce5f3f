"""harness/counting.py and the ThreadWeaver format: golden hand-counted cases, structure, validation,
tokenizers, embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.counting import (
    TrajectoryMetrics,
    count_ids,
    fallback_encode,
    fallback_tag_ids,
    measure_many,
    measure_text,
    tag_ids_of,
)
from harness.formats.threadweaver import (
    FORMAT_TAGS,
    SPECIAL_TOKENS,
    Block,
    Outline,
    Segment,
    Thread,
    Trajectory,
    outline_numbers,
    parse_trajectory,
    serialize_trajectory,
    validate_trajectory,
)
from harness.tokens import count_unit

FALLBACK_TAG_IDS = fallback_tag_ids()

pytestmark = pytest.mark.core

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "trace"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())
CASES = sorted(k for k in EXPECTED if not k.startswith("_"))
SPEC_EXAMPLE = REPO / "harness" / "examples" / "spec_example.txt"


def golden_text(name: str) -> str:
    return (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")


def test_tag_constants():
    assert len(FORMAT_TAGS) == 8 and len(SPECIAL_TOKENS) == 12
    assert SPECIAL_TOKENS[:8] == FORMAT_TAGS
    assert {"<Think>", "</Think>", "<Conclusion>", "</Conclusion>"} == set(SPECIAL_TOKENS[8:])


def test_enough_golden_cases():
    assert len(CASES) >= 11 and "02_spec_example" in CASES


@pytest.mark.parametrize("name", CASES)
def test_golden_counts(name):
    text, want = golden_text(name), EXPECTED[name]
    m = measure_text(text)
    assert (m.total_tokens, m.critical_path_tokens) == (want["total_tokens"], want["critical_path_tokens"])
    assert (m.num_blocks, m.threads_per_block) == (want["num_blocks"], want["threads_per_block"])
    assert m.is_parallel == (want["num_blocks"] > 0)
    assert m.self_parallelism == pytest.approx(want["total_tokens"] / want["critical_path_tokens"])
    codes = [v.code for v in validate_trajectory(parse_trajectory(text))]
    assert codes == want["codes"]
    assert m.valid == (not want["codes"]) and len(m.violations) == len(codes)
    # the same numbers from ids, in one pass
    assert count_ids(fallback_encode(text), FALLBACK_TAG_IDS, text=text, unit=m.count_unit) == m
    assert serialize_trajectory(parse_trajectory(text)) == text
    if "outline_numbers" in want:
        assert outline_numbers(text) == want["outline_numbers"]


def test_shipped_spec_example_is_the_golden_one():
    assert SPEC_EXAMPLE.read_text() == golden_text("02_spec_example")


def test_spec_example_structure():
    t = parse_trajectory(golden_text("02_spec_example"))
    assert [type(x).__name__ for x in t.items] == ["Segment", "Block", "Segment"]
    (b,) = t.blocks
    assert [(o.number, o.text) for o in b.outlines] == [("1", "Compute 12 * 7."), ("2", "Compute 5 * 9.")]
    assert [(x.number, x.text) for x in b.threads] == [("1", "12 * 7 = 84."), ("2", "5 * 9 = 45.")]
    assert b.threads[0].raw == "\n1: 12 * 7 = 84." and b.closed


def test_canonical_block_renders_spec_layout_and_is_valid():
    b = Block([Outline("1", "plan for sub-task 1"), Outline("2", "plan for sub-task 2")],
              [Thread("1", "work for sub-task 1"), Thread("2", "work for sub-task 2")])  # fmt: skip
    text = serialize_trajectory(Trajectory([Segment("before\n"), b, Segment("\nafter")]))
    assert text == (
        "before\n<Parallel>\n<Outlines>\n<Outline>1: plan for sub-task 1</Outline>\n"
        "<Outline>2: plan for sub-task 2</Outline>\n</Outlines>\n<Thread>\n1: work for sub-task 1</Thread>"
        "<Thread>\n2: work for sub-task 2</Thread>\n</Parallel>\nafter"
    )
    assert validate_trajectory(parse_trajectory(text)) == []
    assert validate_trajectory(Trajectory([b])) == []


def test_too_many_outlines():
    n = 51
    b = Block([Outline(str(i), "p") for i in range(1, n + 1)], [Thread(str(i), "w") for i in range(1, n + 1)])
    assert [v.code for v in validate_trajectory(Trajectory([b]))] == ["too_many_outlines"]
    b50 = Block(b.outlines[:50], b.threads[:50])
    assert validate_trajectory(Trajectory([b50])) == []


def test_violations_name_the_block():
    text = golden_text("04_several_blocks").replace("<Outline>3: c</Outline>", "")
    (v,) = validate_trajectory(parse_trajectory(text))
    assert (v.code, v.block) == ("thread_count", 2)
    assert str(v) == "block 2: 3 threads for 2 outlines"


def test_outline_numbers():
    text = (
        "<Outlines><Outline>9: old</Outline></Outlines> ... <Outlines>\n<Outline>1: a</Outline>\n"
        "<Outline>1.2: b</Outline><Outline>no number</Outline><Outline> 3 : c</Outline><Outline>1: dup</Outline>"
        "</Outlines><Outline>7: after the group</Outline>"
    )
    assert outline_numbers(text) == ["1", "1.2", "3"]
    assert outline_numbers("<Outlines><Outline>1: a</Outline><Outline>2: b") == ["1", "2"]  # cut off
    assert outline_numbers("no outlines here") == []


def test_count_without_text_leaves_validity_unchecked():
    text = golden_text("03_uneven_threads")
    m = count_ids(tuple(fallback_encode(text)), FALLBACK_TAG_IDS)
    assert (m.valid, m.violations, m.total_tokens, m.critical_path_tokens) == (None, [], 32, 28)


def test_empty_text():
    m = measure_text("")
    assert (m.total_tokens, m.critical_path_tokens, m.self_parallelism, m.valid) == (0, 0, 1.0, True)


def test_metrics_dict_has_exactly_the_result_keys():
    d = measure_text(golden_text("02_spec_example")).to_dict()
    assert list(d) == [
        "total_tokens", "critical_path_tokens", "num_blocks", "threads_per_block",
        "self_parallelism", "is_parallel", "valid", "violations", "count_unit",
    ]  # fmt: skip
    assert json.loads(json.dumps(d)) == d
    assert list(d) == list(TrajectoryMetrics.__dataclass_fields__)


# ---------------------------------------------------------------- with an HF tokenizer


@pytest.fixture(scope="module")
def char_tokenizer():
    pytest.importorskip("transformers")
    from harness.tokenizer import build_char_tokenizer

    return build_char_tokenizer()


def char_count(text: str) -> int:
    """Tokens of `text` under the project's char tokenizer: one per character, one per tag (its
    `<think>`/`</think>` are single tokens too)."""
    return len(text) - sum((len(t) - 1) * text.count(t) for t in (*SPECIAL_TOKENS, "<think>", "</think>"))


@pytest.mark.parametrize("name", ["02_spec_example", "03_uneven_threads", "08_unclosed_last_thread"])
def test_char_tokenizer_counts(char_tokenizer, name):
    text = golden_text(name)
    m = measure_text(text, char_tokenizer)
    assert m.total_tokens == char_count(text)
    t = parse_trajectory(text)
    # critical path = total - every thread but the longest (per block), in characters here
    saved = sum(
        sum(char_count(x.content()) for x in b.threads) - max(char_count(x.content()) for x in b.threads)
        for b in t.blocks
    )
    assert m.critical_path_tokens == m.total_tokens - saved
    assert (m.num_blocks, m.threads_per_block) == (
        EXPECTED[name]["num_blocks"],
        EXPECTED[name]["threads_per_block"],
    )
    assert m.valid == (not EXPECTED[name]["codes"])


def test_tokenizer_paths_agree(char_tokenizer):
    texts = [golden_text(n) for n in CASES]
    many = measure_many(texts, char_tokenizer)
    assert many == [measure_text(t, char_tokenizer) for t in texts]
    assert measure_many(texts, char_tokenizer.backend_tokenizer) == many
    for text, m in zip(texts, many, strict=True):
        ids = char_tokenizer.encode(text, add_special_tokens=False)
        assert count_ids(ids, tag_ids_of(char_tokenizer), text=text, unit=count_unit(char_tokenizer)) == m
        # a raw `tokenizers.Tokenizer` (what the CLI loads) gives the same numbers and unit
        assert count_unit(char_tokenizer.backend_tokenizer) == m.count_unit
        # pieces between tags tokenised on their own equal tokenising the whole
        assert sum(
            len(char_tokenizer.encode(p, add_special_tokens=False)) for p in fallback_split(text)
        ) == len(ids)


def fallback_split(text: str) -> list[str]:
    import re

    tags = (*SPECIAL_TOKENS, "<think>", "</think>")
    return [p for p in re.split("(" + "|".join(map(re.escape, tags)) + ")", text) if p]


def test_tokenizer_without_tags_is_refused():
    pytest.importorskip("transformers")
    tok = tiny_word_tokenizer()
    with pytest.raises(ValueError, match="add_format_tokens"):
        tag_ids_of(tok)


# ---------------------------------------------------------------- add_format_tokens


def tiny_word_tokenizer():
    """A character-level tokenizer without the format tags, built here with `tokenizers`."""
    import string

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {
        t: i
        for i, t in enumerate(["<unk>", *string.ascii_letters, *string.digits, " ", "\n", ":", "<", ">", "/"])
    }
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", clean_up_tokenization_spaces=False
    )


@pytest.mark.parametrize("tie", [True, False])
def test_add_format_tokens_inits_rows_as_word_mean(tie):
    torch = pytest.importorskip("torch")
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from harness.tokenizer import add_format_tokens

    tok = tiny_word_tokenizer()
    old_vocab = len(tok)
    config = Qwen3Config(
        vocab_size=old_vocab, hidden_size=64, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=1, num_key_value_heads=1, head_dim=64, tie_word_embeddings=tie,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(config)
    emb_before = model.get_input_embeddings().weight.detach().clone()
    out_before = model.get_output_embeddings().weight.detach().clone()

    ids = add_format_tokens(tok, model)

    assert list(ids) == list(SPECIAL_TOKENS)
    assert sorted(ids.values()) == list(range(old_vocab, old_vocab + 12))
    text = "a<Parallel>\n<Thread>1: b</Thread></Parallel>"
    enc = tok.encode(text, add_special_tokens=False)
    assert ids["<Parallel>"] in enc and len(enc) == 1 + 1 + 1 + 1 + 4 + 1 + 1
    assert tok.decode(enc, skip_special_tokens=False) == text
    emb = model.get_input_embeddings().weight.detach()
    out = model.get_output_embeddings().weight.detach()
    assert emb.shape[0] >= old_vocab + 12
    assert torch.equal(emb[:old_vocab], emb_before)
    for tag, word in [("<Parallel>", "Parallel"), ("</Outlines>", "Outlines"), ("<Think>", "Think")]:
        pieces = tok.encode(word, add_special_tokens=False)
        assert len(pieces) == len(word)  # char-level: the mean is over several rows
        assert torch.allclose(emb[ids[tag]], emb_before[pieces].mean(0))
        assert torch.allclose(out[ids[tag]], out_before[pieces].mean(0))
    assert (out.data_ptr() == emb.data_ptr()) == tie
    # adding again changes nothing
    assert add_format_tokens(tok, model) == ids
    assert torch.equal(model.get_input_embeddings().weight.detach(), emb)


def test_measure_blocks_splits_the_counts_of_measure_many():
    """Per block, total and critical tokens: outside the blocks, total and critical path agree (depth 1)."""
    from harness.counting import BlockCounts, measure_blocks, measure_many

    texts = [
        "x y",
        "a <Parallel><Outlines><Outline>1: p</Outline><Outline>2: q</Outline></Outlines>"
        "<Thread>1: bb</Thread><Thread>2: c d</Thread></Parallel> b <Parallel><Thread>1: e</Thread>",
    ]
    blocks = measure_blocks(texts)
    # hand count (fallback counter): block 1 own 20, threads 4 and 6; block 2 (closed at the end) own 3, thread "1: e" 4
    assert blocks == [[], [BlockCounts(30, 26, 2), BlockCounts(7, 7, 1)]]
    for m, bs in zip(measure_many(texts), blocks, strict=True):
        assert m.total_tokens - sum(b.total_tokens for b in bs) == m.critical_path_tokens - sum(
            b.critical_path_tokens for b in bs
        )
