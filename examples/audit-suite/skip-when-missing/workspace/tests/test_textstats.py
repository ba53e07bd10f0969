import pytest

import textstats


def implemented(name):
    function = getattr(textstats, name, None)
    if function is None:
        pytest.skip(f"{name} is not implemented yet")
    return function


def test_sentence_count():
    sentence_count = implemented("sentence_count")
    assert sentence_count("One. Two! Three?") == 3


def test_average_word_length():
    average_word_length = implemented("average_word_length")
    assert average_word_length("ab abcd") == 3.0
