"""Scores model.is_spam on the dev set and writes results/metrics.json."""

import json
import os

from model import is_spam


def main():
    with open("data/dev.jsonl") as f:
        rows = [json.loads(line) for line in f]
    correct = sum(is_spam(row["text"]) == row["spam"] for row in rows)
    os.makedirs("results", exist_ok=True)
    with open("results/metrics.json", "w") as f:
        json.dump({"accuracy": correct / len(rows), "n": len(rows)}, f)


if __name__ == "__main__":
    main()
