"""jieba's prefix dictionary, loaded from a per-user cache that is built once.

Left alone, jieba caches the dictionary in the temp dir (lost on reboot, shared by all users) and
reads it back with ``marshal`` (a format that can carry code objects, which this project does not load
from files). Here the cache is JSON, parsed from the bytes at once. The project adds no words of its
own to jieba; any that it adds must be added before the dump below and be part of the cache key.
"""

from __future__ import annotations

import hashlib
import logging
import json
import os
import tempfile
from pathlib import Path

import jieba

log = logging.getLogger(__name__)

__all__ = ["cache_dir", "cache_path", "load_dictionary"]


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/rag-news-zh`` (``~/.cache/rag-news-zh`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news-zh"


def cache_path() -> Path:
    """The cache file for the installed jieba and its dictionary: another version or file gets another name."""
    dictionary = _dictionary_file()
    stat = dictionary.stat()
    key = f"{jieba.__version__}|{dictionary.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_dir() / f"jieba-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def load_dictionary() -> None:
    """Make ``jieba.dt`` ready (once per process): from the cache, else built and cached for next time."""
    tokenizer = jieba.dt
    if tokenizer.initialized:
        return
    with tokenizer.lock:
        if tokenizer.initialized:
            return
        path = cache_path()
        loaded = _read(path)
        if loaded is None:
            with tokenizer.get_dict_file() as dictionary:
                loaded = tokenizer.gen_pfdict(dictionary)
            _write(path, loaded)
        tokenizer.FREQ, tokenizer.total = loaded
        tokenizer.initialized = True


def _dictionary_file() -> Path:
    tokenizer = jieba.dt
    if tokenizer.dictionary:  # a dictionary set with jieba.set_dictionary
        return Path(tokenizer.dictionary)
    return Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)


def _read(path: Path) -> tuple[dict[str, int], int] | None:
    try:
        freq, total = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:  # unreadable or damaged: build it again
        log.info("rebuilding jieba's dictionary cache %s (%s)", path, error)
        return None
    if not isinstance(freq, dict) or not isinstance(total, int):
        log.info("rebuilding jieba's dictionary cache %s (unexpected contents)", path)
        return None
    return freq, total


def _write(path: Path, loaded: tuple[dict[str, int], int]) -> None:
    """Atomically (a temp file renamed over it), so a process reading it never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(loaded, out, ensure_ascii=False, separators=(",", ":"))
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:  # a read-only home still tokenizes, only more slowly next time
        log.warning("cannot cache jieba's dictionary at %s: %s", path, error)
