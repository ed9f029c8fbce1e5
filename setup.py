"""Adds the data packages mapped in pyproject.toml (``prompts/``, ``seeds/``) to the discovered ones."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["rag*"]) + ["rag.prompts", "rag.seeds"])
