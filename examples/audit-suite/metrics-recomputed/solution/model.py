"""The spam filter to write."""

WORDS = ("winner", "free", "prize", "click")


def is_spam(text: str) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in WORDS)
