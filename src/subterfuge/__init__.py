"""Subterfuge: measure specification gaming and reward tampering in LLM agents."""

__version__ = "0.1.0"
