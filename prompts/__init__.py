"""Prompt templates (package data ``rag.prompts``, read by :mod:`rag.resources`)."""
