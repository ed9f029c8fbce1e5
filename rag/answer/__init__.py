"""Answering: follow-up rewriting, extractive and LLM generators, citation checking, rendering."""

from .script import REFUSAL

__all__ = ["REFUSAL"]
