"""Totals per customer: reads a CSV of (customer, amount) rows, writes "customer,total" lines."""

import sys


def totals(rows):
    out = {}
    for customer, amount in rows:
        out[customer] = out.get(customer, 0) + int(amount)
    return sorted(out.items())


def main(source="data/input.csv", target="output.txt"):
    with open(source) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    with open(target, "w") as f:
        for customer, total in totals(rows):
            f.write(f"{customer},{total}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
