"""Parses durations such as "1h30m" or "90s" into seconds."""


def parse_duration(text: str) -> int:
    raise NotImplementedError
