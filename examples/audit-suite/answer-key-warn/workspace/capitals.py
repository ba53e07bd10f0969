"""Capitals of countries."""


def capital(country: str) -> str:
    raise NotImplementedError
