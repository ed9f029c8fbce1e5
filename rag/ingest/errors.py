from __future__ import annotations


class IngestError(Exception):
    """A file that could not be turned into a document; names the file and why."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
