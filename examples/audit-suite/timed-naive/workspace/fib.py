"""Fibonacci numbers. Too slow: fib(28) must take under 10 ms."""


def fib(n: int) -> int:
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)
