"""Totals per customer: reads a CSV of (customer, amount) rows, writes "customer,total" lines."""

import sys


def totals(rows):
    raise NotImplementedError


def main(source="data/input.csv", target="output.txt"):
    raise NotImplementedError


if __name__ == "__main__":
    main(*sys.argv[1:])
