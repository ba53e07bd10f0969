import pytest

from wordstats import count_words, longest_word


@pytest.mark.parametrize("text, n", [("one", 1), ("  spaced   out  words ", 3), ("a\nb\tc", 3)])
def test_count_words(text, n):
    result = count_words(text)
    assert type(result) is int and result == n


@pytest.mark.parametrize("text, word", [("hello wonderful world", "wonderful"), ("", ""), ("ab cd", "ab")])
def test_longest_word(text, word):
    result = longest_word(text)
    assert type(result) is str and result == word
