"""Word statistics for the text report."""


def count_words(text: str) -> int:
    """Number of whitespace-separated words in `text`."""
    raise NotImplementedError


def longest_word(text: str) -> str:
    """The longest word (the first one on ties); "" when there is none."""
    raise NotImplementedError
