"""Trie packing for SFT (threadweaver.md section 3): prefix tree, depth-first flattening, labels, Euler tour.

    rows = pack([units_of_trajectory_1, ...], max_tokens=40960)   # units: trainers/sft/units.py

Definitions used throughout (and checked by tests/trainers/test_packing.py):
- A unit is one (prompt, completion) request of the trie rollout (threadweaver.md section 2), or the whole
  trajectory (trainers/sft/units.py cuts them). Training a unit on its own supervises the edges
  `seq[:j+1] -> seq[j+1]` for every completion index `j+1` (the last prompt token predicts the first
  completion token).
- A tree node stands for a token prefix `seq[:j+1]`; its label is the next token of the supervised edge that
  leaves it (-100 if none). Supervised tokens = the number of DISTINCT `(prefix, next token)` pairs over all
  units of the row: what training each unit alone would supervise, without duplicated prefixes.
  `supervised_pairs(units)` computes that set without a tree.
- Labels are already shifted: `labels[k]` is the next token of `k` along its own tree path, never the
  next token of the flat sequence. Pass them as `shift_labels`, never as HF `labels` (which shifts again).
- Euler tour: `tin[k]` = flat (pre-order) index of `k`, `tout[k]` = flat index of the last token in its
  subtree; `k` is an ancestor of `q` (or `q` itself) iff `tin[k] <= tin[q] and tout[q] <= tout[k]`.
  Trajectories in a row are separate trees, so they never see each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.errors import InputError
from trainers.sft.units import Unit

IGNORE_INDEX = -100  # label of a token that predicts nothing (HF convention)


@dataclass
class PackedRow:
    """One packed row; every list has one entry per token, in depth-first order."""

    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)  # depth in its trajectory's tree
    labels: list[int] = field(default_factory=list)  # next token along the tree path, or -100
    tin: list[int] = field(default_factory=list)  # Euler enter time (= flat index)
    tout: list[int] = field(default_factory=list)  # Euler exit time (= flat index of last descendant)
    num_supervised_tokens: int = 0
    num_trajectories: int = 0
    num_units: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    def extend(self, other: PackedRow) -> None:
        """Append another row's trees after this one's (times shifted, so the trees stay apart)."""
        offset = len(self.input_ids)
        self.input_ids += other.input_ids
        self.position_ids += other.position_ids
        self.labels += other.labels
        self.tin += [t + offset for t in other.tin]
        self.tout += [t + offset for t in other.tout]
        self.num_supervised_tokens += other.num_supervised_tokens
        self.num_trajectories += other.num_trajectories
        self.num_units += other.num_units


def supervised_pairs(units: Sequence[Unit]) -> set[tuple[tuple[int, ...], int]]:
    """The distinct `(prefix, next token)` edges that training each unit on its own supervises."""
    pairs = set()
    for unit in units:
        seq = unit.ids
        for j in range(len(unit.prompt_ids), len(seq)):
            pairs.add((seq[:j], seq[j]))
    return pairs


# ---------------------------------------------------------------- prefix tree and flattening


class _Tree:
    """Token prefix tree (a forest under a virtual root -1), one label per node."""

    def __init__(self) -> None:
        self.token: list[int] = []
        self.label: list[int] = []
        self.children: list[dict[int, list[int]]] = []
        self.roots: dict[int, list[int]] = {}

    def _child(self, parent: int, token: int, want_label: int) -> int:
        """The child of `parent` for `token` whose label can be `want_label` (a new copy if none can)."""
        variants = (self.roots if parent < 0 else self.children[parent]).setdefault(token, [])
        for node in variants:
            if want_label == IGNORE_INDEX or self.label[node] in (IGNORE_INDEX, want_label):
                break
        else:  # two different supervised next tokens after one prefix: a copy keeps both exact
            node = len(self.token)
            self.token.append(token)
            self.label.append(IGNORE_INDEX)
            self.children.append({})
            variants.append(node)
        if want_label != IGNORE_INDEX:
            self.label[node] = want_label
        return node

    def insert(self, unit: Unit) -> list[int]:
        """Insert the unit's path; returns its nodes (node k holds seq[:k+1], labelled seq[k+1] if trained)."""
        seq, first_supervised = unit.ids, len(unit.prompt_ids)
        node, path = -1, []
        for j, token in enumerate(seq):
            nxt = j + 1
            want = seq[nxt] if first_supervised <= nxt < len(seq) else IGNORE_INDEX
            node = self._child(node, token, want)
            path.append(node)
        return path

    def flatten(self) -> PackedRow:
        """Depth-first (pre-order, children in insertion order) flattening with Euler times."""
        row = PackedRow()
        stack = [(node, 0) for variants in reversed(self.roots.values()) for node in reversed(variants)]
        order_at: dict[int, int] = {}
        while stack:
            node, depth = stack.pop()
            if node < 0:  # exit marker ~node: its subtree is done
                row.tout[order_at[~node]] = len(row.input_ids) - 1
                continue
            order_at[node] = len(row.input_ids)
            row.input_ids.append(self.token[node])
            row.position_ids.append(depth)
            row.labels.append(self.label[node])
            row.tin.append(order_at[node])
            row.tout.append(order_at[node])
            stack.append((~node, depth))
            for variants in reversed(self.children[node].values()):
                stack.extend((child, depth + 1) for child in reversed(variants))
        row.num_supervised_tokens = sum(1 for label in row.labels if label != IGNORE_INDEX)
        self.flat_index = order_at  # node -> its flat position (pack_units_valued)
        return row


def pack_units(units: Sequence[Unit]) -> PackedRow:
    """One trajectory's units as one tree, flattened (one packed segment)."""
    tree = _Tree()
    for unit in units:
        tree.insert(unit)
    row = tree.flatten()
    row.num_trajectories, row.num_units = 1, len(units)
    return row


def pack_units_valued(units: Sequence[Unit], values: Sequence[Sequence], empty=None) -> tuple[PackedRow, list]:
    """`pack_units` plus one value per trained edge, laid out like the labels: `values[u][j]` belongs to
    completion token j of unit u (an RL advantage, a stored log probability); `empty` where no edge is
    trained. An edge trained by two units is refused: per-unit training would count it twice."""
    tree = _Tree()
    at: dict[int, object] = {}
    for unit, vals in zip(units, values, strict=True):
        if len(vals) != len(unit.completion_ids):
            raise ValueError(f"values: {len(vals)} for a completion of {len(unit.completion_ids)} tokens")
        if not unit.prompt_ids:
            raise ValueError("a unit with values needs a non-empty prompt (its first token is predicted from it)")
        path = tree.insert(unit)
        for j, value in enumerate(vals):
            node = path[len(unit.prompt_ids) + j - 1]  # the prefix that predicts completion token j
            if node in at:
                raise ValueError("two units train the same (prefix, next token) edge")
            at[node] = value
    row = tree.flatten()
    row.num_trajectories, row.num_units = 1, len(units)
    flat = [empty] * len(row)
    for node, value in at.items():
        flat[tree.flat_index[node]] = value
    return row, flat


def pack(trajectories: Sequence[Sequence[Unit]], max_tokens: int) -> list[PackedRow]:
    """Pack whole trajectory trees (each trajectory's units) into rows of at most `max_tokens` tokens
    (first-fit, longest first).

    A trajectory whose tree alone exceeds `max_tokens` is refused (cutting a tree would change what its
    units see).
    """
    if max_tokens < 1:
        raise InputError(f"max_tokens must be >= 1, got {max_tokens}")
    segments = [pack_units(units) for units in trajectories]
    for i, seg in enumerate(segments):
        if len(seg) > max_tokens:
            raise InputError(
                f"trajectory {i} packs to {len(seg)} tokens > max_tokens {max_tokens}; "
                "raise max_tokens or drop the trajectory"
            )
    rows: list[PackedRow] = []
    for i in sorted(range(len(segments)), key=lambda i: -len(segments[i])):
        seg = segments[i]
        target = next((r for r in rows if len(r) + len(seg) <= max_tokens), None)
        if target is None:
            rows.append(seg)
        else:
            target.extend(seg)
    return rows
