"""Answer script: traditional questions get traditional answers, simplified get simplified.

Only the assistant's own words are converted; quotes and passages stay as the source has them.
"""

from __future__ import annotations

from ..settings import AnswerScript
from ..text import is_traditional, to_simplified, to_traditional

#: The one refusal message (simplified; converted like any other answer).
REFUSAL = "根据现有资料无法回答该问题。"


def target_script(question: str, setting: AnswerScript = "auto") -> str:
    """'traditional' or 'simplified': the setting, or the question's own script when 'auto'."""
    if setting != "auto":
        return setting
    return "traditional" if is_traditional(question) else "simplified"


def in_script(text: str, script: str) -> str:
    return to_traditional(text) if script == "traditional" else to_simplified(text)


def refusal(script: str) -> str:
    return in_script(REFUSAL, script)
