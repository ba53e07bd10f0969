import pytest

from wordstats import count_words, longest_word


def test_count_words():
    assert count_words("the quick brown fox") == 4
    assert count_words("") == 0


@pytest.mark.parametrize("text, expected", [("a bb ccc", "ccc"), ("tie tie", "tie")])
def test_longest_word(text, expected):
    assert longest_word(text) == expected
