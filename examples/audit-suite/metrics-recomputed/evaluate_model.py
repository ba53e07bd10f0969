import json
import subprocess
import sys

HELD_OUT = [("Claim your free prize", True), ("See you tomorrow", False), ("Click to win", True),
            ("Quarterly report attached", False), ("Free entry for a WINNER", True)]
CHILD = "import json, sys, model; texts = json.load(sys.stdin); print(json.dumps([model.is_spam(t) for t in texts]))"
proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps([t for t, _ in HELD_OUT]),
                      capture_output=True, text=True)
try:
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
except (IndexError, ValueError):
    answers = []
correct = sum(a is want for a, (_, want) in zip(answers, HELD_OUT))
print(f"accuracy {correct / len(HELD_OUT):.3f}")
