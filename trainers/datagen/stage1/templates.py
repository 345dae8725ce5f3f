"""The stage-1 prompts: versioned text files in trainers/datagen/prompts/ (written for this project).

A file opens with `version: N`, then `=== system` and `=== user` sections; `$name` fields are filled with
string.Template. A journal entry records the version it was made with, so changing a prompt (and bumping
its version) re-asks exactly the calls made with the old one.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
STEPS = {1: "step1_structure", 3: "step3_decouple", 4: "step4_outlines"}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    system: str
    user: str

    @property
    def tag(self) -> str:
        """`name@version`, stamped on every journal entry."""
        return f"{self.name}@{self.version}"

    def messages(self, **fields: str) -> list[dict]:
        return [{"role": "system", "content": string.Template(self.system).substitute(fields)},
                {"role": "user", "content": string.Template(self.user).substitute(fields)}]  # fmt: skip


def load_template(name: str, folder: Path = PROMPT_DIR) -> PromptTemplate:
    path = folder / f"{name}.txt"
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n")
    if not head.startswith("version:"):
        raise ValueError(f"{path}: first line must be `version: N`")
    sections: dict[str, list[str]] = {}
    current = None
    for line in rest.split("\n"):
        if line.startswith("=== "):
            current = line[4:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    if set(sections) != {"system", "user"}:
        raise ValueError(f"{path}: needs exactly the sections `=== system` and `=== user`")
    body = {k: "\n".join(v).strip("\n") for k, v in sections.items()}
    return PromptTemplate(name, int(head.split(":", 1)[1]), body["system"], body["user"])


def load_templates(folder: Path = PROMPT_DIR) -> dict[int, PromptTemplate]:
    """Step number -> its template."""
    return {step: load_template(name, folder) for step, name in STEPS.items()}
