"""What a generator hands to citation checking: text with [n] markers and, when known, the quotes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Draft:
    text: str  # answer text with [n] markers, already in the answer's script
    refused: bool = False
    quotes: dict[int, tuple[int, int]] = field(default_factory=dict)  # n -> supporting span in passage n's clean text
    generator: str = "extractive"
    note: str | None = None
    span: str | None = None  # the short answer leading the text, in the answer's script
    checked: bool = False  # True when every marker is known to be right (extractive drafts)
