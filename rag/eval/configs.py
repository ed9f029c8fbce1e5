"""Named configurations compared in one evaluation run: ``NAME [field=value ...]``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..settings import Settings

NAIVE = "naive"
#: Names that mean something without overrides.
PRESETS: dict[str, dict[str, str]] = {
    "bm25": {"mode": "bm25"},
    "dense": {"mode": "dense"},
    "hybrid": {"mode": "hybrid"},
    NAIVE: {},
}
DEFAULT_CONFIGS = ("bm25", "dense", "hybrid", NAIVE)


@dataclass(frozen=True)
class EvalConfig:
    name: str
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def naive(self) -> bool:
        return self.name == NAIVE

    def settings(self, base: Settings) -> Settings:
        try:
            return base.with_overrides(**self.overrides)
        except ValidationError as error:
            raise ValueError(f"config {self.name!r}: {error}") from error

    def label(self) -> str:
        return " ".join([self.name, *(f"{k}={v}" for k, v in self.overrides.items())])


def parse_config(spec: str) -> EvalConfig:
    """``"hybrid"``, ``"bm25 mode=bm25"``, ``"chunk300=chunk_size=300,chunk_overlap=30"``, ``"rerank:reranker=PATH"``.

    Known names (bm25, dense, hybrid, naive) need no overrides; others are labels for theirs."""
    match = re.fullmatch(r"\s*([^\s:=,]+)(?:[\s:=]+(.*))?", spec, re.DOTALL)
    if match is None:
        raise ValueError(f"a config starts with its name, e.g. 'bm25 mode=bm25' (got {spec!r})")
    name, rest = match.group(1), match.group(2) or ""
    overrides = dict(PRESETS.get(name, {}))
    for part in (p for p in re.split(r"[\s,]+", rest) if p):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"config {name!r}: expected field=value, got {part!r}")
        key = key.replace("-", "_")
        if key not in Settings.model_fields:
            raise ValueError(f"config {name!r}: unknown setting {key!r}")
        overrides[key] = value
    return EvalConfig(name, overrides)


def parse_configs(specs: list[str] | None) -> list[EvalConfig]:
    configs = [parse_config(spec) for spec in (specs or DEFAULT_CONFIGS)]
    names = [c.name for c in configs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"config names must be unique: {', '.join(sorted(duplicates))}")
    return configs
