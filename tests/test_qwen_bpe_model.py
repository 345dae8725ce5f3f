"""The Qwen BPE test vocabulary as a transformers tokenizer, saved and loaded, and the tiny model over it."""

from __future__ import annotations

import math

import pytest
from tokenizers_qwen import FORMAT_TAGS, build_qwen_bpe_tokenizer

pytest.importorskip("transformers")

TEXT = "<|im_start|>user\nQ: 2+3?<|im_end|>\n<think>\n<Parallel>\n<Outlines>\n<Outline>1: add</Outline>\n</Outlines>"


def test_transformers_tokenizer_matches_the_raw_one(qwen_bpe_tokenizer, qwen_bpe_raw_tokenizer):
    tok = qwen_bpe_tokenizer
    assert tok.encode(TEXT, add_special_tokens=False) == qwen_bpe_raw_tokenizer.encode(TEXT).ids
    assert tok.encode("Hello world") == [9707, 1879]  # no BOS, as in Qwen
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token, tok.pad_token_id) == ("<|im_end|>", 151645, "<|endoftext|>", 151643)  # fmt: skip
    assert tok.bos_token_id is None and len(tok) == 151_685
    assert all(len(tok.encode(t, add_special_tokens=False)) == 1 for t in FORMAT_TAGS)


def test_chat_template_is_qwen3_style(qwen_bpe_tokenizer):
    messages = [{"role": "user", "content": "Q: 2+3?"}]
    text = qwen_bpe_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nQ: 2+3?<|im_end|>\n<|im_start|>assistant\n"


def test_save_pretrained_and_auto_tokenizer_round_trip(qwen_bpe_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    build_qwen_bpe_tokenizer(tmp_path)  # the function outside pytest: builds and saves
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.is_fast
    assert loaded.encode(TEXT, add_special_tokens=False) == qwen_bpe_tokenizer.encode(TEXT, add_special_tokens=False)
    assert loaded.get_vocab() == qwen_bpe_tokenizer.get_vocab()
    assert loaded.chat_template == qwen_bpe_tokenizer.chat_template
    assert (loaded.eos_token_id, loaded.pad_token_id, loaded.bos_token_id) == (151645, 151643, None)
    added = {t.content: t.special for t in loaded.added_tokens_decoder.values()}
    assert all(added[t] for t in FORMAT_TAGS) and not added["<think>"]
    assert loaded.decode(loaded.encode("ünïcode ✓ 数学 <Thread>", add_special_tokens=False)) == "ünïcode ✓ 数学 <Thread>"


def test_tiny_model_dir_is_small_and_loads(qwen_bpe_model_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(qwen_bpe_model_dir)
    tok = AutoTokenizer.from_pretrained(qwen_bpe_model_dir)
    assert config.model_type == "qwen3" and config.tie_word_embeddings
    assert (config.hidden_size, config.head_dim, config.num_hidden_layers) == (64, 64, 2)
    assert config.vocab_size == 151_744 >= len(tok)  # len(tok) rounded up to 64
    size_mb = (qwen_bpe_model_dir / "model.safetensors").stat().st_size / 1e6
    assert size_mb < 45, f"{size_mb:.1f} MB: the embedding should be stored once (tied)"
    model = AutoModelForCausalLM.from_pretrained(qwen_bpe_model_dir, dtype=torch.float32)
    ids = torch.tensor([tok.encode(TEXT, add_special_tokens=False)])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False,
                             pad_token_id=tok.pad_token_id)  # fmt: skip
    assert out.shape[1] > ids.shape[1]


@pytest.mark.vllm
def test_tiny_model_loads_in_vllm_with_the_same_tokenizer_and_logprobs(qwen_bpe_model_dir):
    """vLLM reads the tokenizer and weights as transformers does: same prompt ids, same prompt logprobs."""
    pytest.importorskip("vllm")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    tok = AutoTokenizer.from_pretrained(qwen_bpe_model_dir)
    ids = tok.encode(TEXT, add_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(qwen_bpe_model_dir, dtype=torch.float32)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1], dim=-1)
    expected = logp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1).tolist()

    llm = LLM(model=str(qwen_bpe_model_dir), dtype="float32", enforce_eager=True, kv_cache_memory_bytes=1 << 28,
              max_model_len=2048)  # fmt: skip
    assert llm.get_tokenizer().encode(TEXT, add_special_tokens=False) == ids
    (out,) = llm.generate(TokensPrompt(prompt_token_ids=ids), SamplingParams(max_tokens=2, temperature=0, prompt_logprobs=0))  # fmt: skip
    got = [step[i].logprob for step, i in zip(out.prompt_logprobs[1:], ids[1:], strict=True)]
    assert all(math.isclose(g, e, abs_tol=1e-3) for g, e in zip(got, expected, strict=True)), (got, expected)
    assert len(out.outputs[0].token_ids) == 2
