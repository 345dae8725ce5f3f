"""Tokenizer helpers of the core (no transformers needed): tag ids, the count unit, a raw-tokenizer adapter.

Everything here takes either an HF tokenizer (transformers) or a raw `tokenizers.Tokenizer`, so the core
(formats, rollout, counting, grading) runs where transformers is absent or pinned to another version
(verl's environment, ../shared/spec/rl.md section 3).

The count unit names what a token is: `tokens:<12 hex>`, a hash of the tokenizer's vocabulary without its
special added tokens (so a ThreadWeaver checkpoint, which adds its tags to Qwen3's vocabulary, counts in
the same unit as Qwen3 itself), or `builtin-v1` for the built-in fallback counter (harness.counting).
Figures in different units are never compared (harness.metrics, harness.results).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

FALLBACK_UNIT = "builtin-v1"


class RawTokenizer:
    """The small HF-tokenizer surface the core uses, over a raw `tokenizers.Tokenizer`.

    `RawTokenizer.from_file("DIR/tokenizer.json")` loads without transformers; `eos_token` names the end of
    sequence token (tokenizer.json does not record it).
    """

    def __init__(self, tokenizer, eos_token: str | None = None, pad_token: str | None = None) -> None:
        self.backend_tokenizer = tokenizer
        self.eos_token, self.pad_token = eos_token, pad_token
        self.eos_token_id = None if eos_token is None else tokenizer.token_to_id(eos_token)
        self.pad_token_id = None if pad_token is None else tokenizer.token_to_id(pad_token)
        self.chat_template = None

    @classmethod
    def from_file(cls, path: str, eos_token: str | None = None, pad_token: str | None = None) -> RawTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)), eos_token, pad_token)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.backend_tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def __call__(self, texts, add_special_tokens: bool = False) -> dict:
        batch = [texts] if isinstance(texts, str) else list(texts)
        ids = [e.ids for e in self.backend_tokenizer.encode_batch(batch, add_special_tokens=add_special_tokens)]
        return {"input_ids": ids[0] if isinstance(texts, str) else ids}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        return self.backend_tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, i: int) -> str | None:
        return self.backend_tokenizer.id_to_token(i)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.backend_tokenizer.token_to_id(token)

    @property
    def all_special_ids(self) -> list[int]:
        return [i for i, t in self.backend_tokenizer.get_added_tokens_decoder().items() if t.special]

    def __len__(self) -> int:
        return self.backend_tokenizer.get_vocab_size(with_added_tokens=True)


def _backend(tokenizer):
    """The raw `tokenizers.Tokenizer` behind an HF fast tokenizer, a RawTokenizer, or itself."""
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def encode_batch(tokenizer, texts: list[str]) -> list[list[int]]:
    """Ids of each text, no special tokens added (one batch call)."""
    backend = _backend(tokenizer)
    if hasattr(backend, "encode_batch"):
        return [e.ids for e in backend.encode_batch(list(texts), add_special_tokens=False)]
    return [list(tokenizer.encode(t, add_special_tokens=False)) for t in texts]


def single_token_ids(tokenizer, tags: Iterable[str]) -> dict[str, int]:
    """tag -> id; ValueError unless every tag is one token of `tokenizer`."""
    backend = _backend(tokenizer)
    out = {}
    for tag, ids in zip(tags, encode_batch(tokenizer, list(tags)), strict=True):
        if len(ids) != 1 or backend.id_to_token(ids[0]) != tag:
            raise ValueError(f"tokenizer does not hold {tag} as one token; add the tags as special tokens "
                             "(harness.tokenizer.add_format_tokens)")  # fmt: skip
        out[tag] = ids[0]
    return out


_UNITS: dict[int, tuple[object, str]] = {}


def count_unit(tokenizer) -> str:
    """`tokens:<hash>` of the vocabulary without special added tokens (cached per tokenizer object)."""
    if tokenizer is None:
        return FALLBACK_UNIT
    cached = _UNITS.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1]
    backend = _backend(tokenizer)
    vocab = backend.get_vocab(with_added_tokens=False)
    plain_added = sorted(t.content for t in backend.get_added_tokens_decoder().values() if not t.special)
    blob = json.dumps([sorted(vocab.items()), plain_added], ensure_ascii=False)
    unit = "tokens:" + hashlib.sha256(blob.encode()).hexdigest()[:12]
    _UNITS[id(tokenizer)] = (tokenizer, unit)
    return unit
