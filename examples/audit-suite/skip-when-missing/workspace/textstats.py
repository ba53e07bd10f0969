"""Sentence and word statistics."""


def sentence_count(text: str) -> int:
    raise NotImplementedError


def average_word_length(text: str) -> float:
    raise NotImplementedError
