"""What a generator hands to citation checking: text with [n] markers and, when known, the quotes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..types import Hit


@dataclass
class Draft:
    text: str  # answer text with [n] markers, already in the answer's script
    refused: bool = False
    quotes: dict[int, tuple[int, int]] = field(default_factory=dict)  # n -> supporting span in passage n's clean text
    generator: str = "extractive"
    note: str | None = None
    span: str | None = None  # the short answer leading the text, in the answer's script
    checked: bool = False  # True when every marker is known to be right (extractive drafts)
    # The passages the [n] markers count in, when the generator retrieved them itself (a bridged question);
    # None: the request's hits.
    hits: list[Hit] | None = None
