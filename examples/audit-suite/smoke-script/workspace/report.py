"""Builds the monthly sales report: one line per region with its total."""


def build_report(rows):
    """Lines "region: total", sorted by region."""
    raise NotImplementedError("TODO")


def main():
    rows = [("north", 10), ("south", 5), ("north", 7)]
    for line in build_report(rows):
        print(line)


if __name__ == "__main__":
    main()
