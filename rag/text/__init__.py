"""Text handling: cleaning with an offset map, script conversion, sentences, tokens."""

from .clean import Block, CleanText, clean
from .convert import is_traditional, normalize, to_simplified, to_traditional
from .sentences import sentences, split_sentences
from .tokenize import STOPWORDS, pos_cut, tokenize, words

__all__ = [
    "Block",
    "CleanText",
    "STOPWORDS",
    "clean",
    "is_traditional",
    "normalize",
    "pos_cut",
    "sentences",
    "split_sentences",
    "to_simplified",
    "to_traditional",
    "tokenize",
    "words",
]
