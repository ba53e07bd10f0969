"""Sentence and word statistics."""

import re


def sentence_count(text: str) -> int:
    return len([s for s in re.split(r"[.!?]", text) if s.strip()])


def average_word_length(text: str) -> float:
    words = text.split()
    return sum(len(w) for w in words) / len(words) if words else 0.0
