"""Evaluation of retrieval and answers on QA sets, several configurations side by side."""

from .datasets import Dataset, EvalItem, Evidence, load_dataset, load_jsonl, load_squad
from .evaluators import AnswerEvaluator, RelevanceJudge, RetrievalEvaluator
from .runner import evaluate

__all__ = [
    "AnswerEvaluator",
    "Dataset",
    "EvalItem",
    "Evidence",
    "RelevanceJudge",
    "RetrievalEvaluator",
    "evaluate",
    "load_dataset",
    "load_jsonl",
    "load_squad",
]
