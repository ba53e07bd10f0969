import json
import subprocess
import sys

CHILD = "import json, capitals; print(json.dumps([capitals.capital(c) for c in ['Japan', 'Kenya']]))"
proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
try:
    got = json.loads(proc.stdout.strip().splitlines()[-1])
except (IndexError, ValueError):
    print("no answers")
    sys.exit(1)
print("answers:", got)
sys.exit(0 if got == ["Tokyo", "Nairobi"] else 1)
