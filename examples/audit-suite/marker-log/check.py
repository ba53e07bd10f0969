import sys

sys.path.insert(0, ".")
from duration import parse_duration  # noqa: E402

CASES = {"1h": 3600, "90s": 90, "1h30m": 5400, "2m5s": 125}
failed = [text for text, want in CASES.items() if parse_duration(text) != want]
if failed:
    print("FAILED:", ", ".join(failed))
    sys.exit(1)
print("ALL CHECKS PASSED")
