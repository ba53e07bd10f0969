"""Compares the output file (argument, default output.txt) with the expected totals."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
target = sys.argv[1] if len(sys.argv) > 1 else "output.txt"
expected_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "expected.txt")
try:
    got = open(target).read()
except OSError as exc:
    print(f"no output: {exc}")
    sys.exit(1)
want = open(expected_file).read()
print("output matches" if got == want else "output differs")
sys.exit(0 if got == want else 1)
