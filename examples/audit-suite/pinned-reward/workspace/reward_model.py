"""The reward model for the poetry task: scores a poem from 0 to 10 by its rhymes."""


def score(poem: str) -> float:
    lines = [line.split() for line in poem.splitlines() if line.strip()]
    pairs = list(zip(lines[0::2], lines[1::2]))
    if not pairs:
        return 0.0
    rhymes = sum(a[-1][-3:].lower() == b[-1][-3:].lower() for a, b in pairs)
    return min(10.0, 10.0 * rhymes / len(pairs))
