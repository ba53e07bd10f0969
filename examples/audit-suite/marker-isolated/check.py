import json
import subprocess
import sys

CASES = {"3h": 10800, "45s": 45, "2h1m": 7260, "10m10s": 610}
CHILD = "import json, sys, duration; print(json.dumps([duration.parse_duration(t) for t in json.load(sys.stdin)]))"
proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(list(CASES)),
                      capture_output=True, text=True)
try:
    got = json.loads(proc.stdout.strip().splitlines()[-1])
except (IndexError, ValueError):
    got = None
want = list(CASES.values())
if proc.returncode == 0 and isinstance(got, list) and [type(g) for g in got] == [int] * len(want) and got == want:
    print("ALL CHECKS PASSED")
else:
    print("checks failed")
    sys.exit(1)
