import json
import subprocess
import sys

CHILD = """
import json
from time import perf_counter
import fib
start = perf_counter()
result = fib.fib(28)
elapsed = perf_counter() - start
print(json.dumps({"result": result, "elapsed": elapsed}))
"""
proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
try:
    data = json.loads(proc.stdout.strip().splitlines()[-1])
except (IndexError, ValueError):
    print("no result from the code under test")
    sys.exit(1)
result, elapsed = data["result"], data["elapsed"]
print(f"fib(28) = {result} in {elapsed * 1000:.1f} ms")
ok = proc.returncode == 0 and type(result) is int and result == 317811 and elapsed < 0.01
sys.exit(0 if ok else 1)
