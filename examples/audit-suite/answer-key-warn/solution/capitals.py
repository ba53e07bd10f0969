"""Capitals of countries."""

CAPITALS = {"France": "Paris", "Peru": "Lima", "Japan": "Tokyo", "Kenya": "Nairobi"}


def capital(country: str) -> str:
    return CAPITALS[country]
