"""Builds the monthly sales report: one line per region with its total."""


def build_report(rows):
    """Lines "region: total", sorted by region."""
    totals = {}
    for region, amount in rows:
        totals[region] = totals.get(region, 0) + amount
    return [f"{region}: {total}" for region, total in sorted(totals.items())]


def main():
    rows = [("north", 10), ("south", 5), ("north", 7)]
    for line in build_report(rows):
        print(line)


if __name__ == "__main__":
    main()
