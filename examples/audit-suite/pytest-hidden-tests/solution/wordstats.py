"""Word statistics for the text report."""


def count_words(text: str) -> int:
    """Number of whitespace-separated words in `text`."""
    return len(text.split())


def longest_word(text: str) -> str:
    """The longest word (the first one on ties); "" when there is none."""
    best = ""
    for word in text.split():
        if len(word) > len(best):
            best = word
    return best
