"""Dataset hook of `tw_toy`: the toy task's held-out split, generated deterministically (no hub, no files)."""


def load_dataset(split: str = "test", limit: int | None = None, **_ignored):
    """custom_dataset: a DatasetDict whose "test" split is harness.toy's `split` (default: the test split)."""
    from datasets import Dataset, DatasetDict

    from harness.toy import make_split, to_doc

    return DatasetDict({"test": Dataset.from_list([to_doc(p) for p in make_split(split, limit)])})
