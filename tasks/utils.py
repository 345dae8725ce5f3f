"""Thin hooks of the tw_* tasks; the work lives in harness (datasets, prompts, samplestats).

Per-sample rollout statistics reach `process_results` through harness.samplestats (lm-eval passes only
response strings from the model to the task).
"""

from harness.datasets import load_dataset_dict
from harness.prompts import doc_to_text
from harness.samplestats import score_doc


def load_dataset(**kwargs):
    """custom_dataset: `dataset_kwargs.benchmark` picks the benchmark; $THREADWEAVER_DATA_DIR or the hub."""
    return load_dataset_dict(**kwargs)


def load_toy(**kwargs):
    """tw_toy's custom_dataset: the toy task's split (tasks/toy.py, imported as the installed package:
    lm-eval loads this file by path, which a module with dataclasses cannot be)."""
    from threadweaver_tasks.toy import load_dataset as load_toy_dataset

    return load_toy_dataset(**kwargs)


def keep_all_samples(resps, docs):
    """Filter: keep all `repeats` responses of each doc (lm-eval's default keeps the first)."""
    return resps


def process_results(doc, results):
    """results = [the doc's k responses] (one instance per doc, all samples kept by the filter)."""
    responses = results[0] if results and isinstance(results[0], list) else list(results)
    return score_doc(doc, responses)


__all__ = ["doc_to_text", "keep_all_samples", "load_dataset", "load_toy", "process_results"]
