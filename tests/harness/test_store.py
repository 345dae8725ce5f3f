"""The append-only sample store: round trip, torn last line, keys."""

from __future__ import annotations

import json

import pytest

from harness.store import SampleStore, default_store_path, sample_key

pytestmark = pytest.mark.core


def _key(i: int, **over) -> str:
    parts = dict(model={"pretrained": "m"}, prompt="p", sample_index=i, sampling={"temperature": 1.0})
    parts.update(over)
    return sample_key(**parts)


def test_put_get_survives_reopen(tmp_path):
    path = tmp_path / "s" / "store.jsonl"
    store = SampleStore(path)
    store.put(_key(0), {"text": "a"})
    store.put(_key(1), {"text": "b"})
    store.close()
    again = SampleStore(path)
    assert len(again) == 2
    assert again.get(_key(1)) == {"text": "b"}
    assert again.get(_key(2)) is None


def test_each_put_is_on_disk_before_close(tmp_path):
    store = SampleStore(tmp_path / "store.jsonl")
    store.put(_key(0), {"text": "a"})
    # another reader sees it while the writer is still open (flushed, as after a SIGKILL)
    assert SampleStore(tmp_path / "store.jsonl").get(_key(0)) == {"text": "a"}
    store.close()


def test_torn_last_line_is_ignored_and_next_append_is_clean(tmp_path):
    path = tmp_path / "store.jsonl"
    good = json.dumps({"key": _key(0), "record": {"text": "a"}})
    path.write_text(good + "\n" + good[: len(good) // 2])  # killed mid-write
    store = SampleStore(path)
    assert len(store) == 1 and store.skipped_lines == 1
    store.put(_key(1), {"text": "b"})
    store.close()
    again = SampleStore(path)
    assert again.get(_key(0)) == {"text": "a"} and again.get(_key(1)) == {"text": "b"}
    assert again.skipped_lines == 1


def test_key_depends_on_what_decides_generation():
    base = _key(0)
    assert base == _key(0)
    assert base != _key(1)
    assert base != _key(0, prompt="q")
    assert base != _key(0, sampling={"temperature": 0.0})
    assert base != _key(0, model={"pretrained": "other"})


def test_default_store_path_is_per_model(tmp_path):
    a = default_store_path({"pretrained": "a"}, tmp_path)
    b = default_store_path({"pretrained": "b"}, tmp_path)
    assert a.parent == tmp_path and a != b and a == default_store_path({"pretrained": "a"}, tmp_path)


def test_checkpoint_fingerprint_changes_when_weights_change(tmp_path):
    from harness.store import checkpoint_fingerprint

    assert checkpoint_fingerprint("Qwen/Qwen3-8B") is None  # a hub id: no local folder
    (tmp_path / "config.json").write_text('{"hidden_size": 64}')
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(bytes(range(256)) * 4096)
    first = checkpoint_fingerprint(str(tmp_path))
    assert first == checkpoint_fingerprint(str(tmp_path))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # retrained in place: same size, different bytes
    weights.write_bytes(bytes(data))
    assert checkpoint_fingerprint(str(tmp_path)) != first


def test_store_command_lists_and_clears(tmp_path, monkeypatch, capsys):
    from threadweaver.cli import main

    monkeypatch.setenv("THREADWEAVER_STORE_DIR", str(tmp_path))
    path = default_store_path({"pretrained": "m"})
    store = SampleStore(path)
    store.put("k1", {"run": {"model": "/models/m"}, "response": "a"})
    store.put("k2", {"run": {"model": "/models/m"}, "response": "b"})
    store.close()
    assert main(["store", "list", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["name"], row["samples"], row["model"]) == (path.stem, 2, "/models/m")
    assert main(["store", "clear", "nope"]) == 2
    assert main(["store", "clear"]) == 0 and path.exists()  # without --yes nothing goes
    assert main(["store", "clear", path.stem, "--yes"]) == 0 and not path.exists()
