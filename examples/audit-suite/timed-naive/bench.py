import sys
import time

sys.path.insert(0, ".")
import fib  # noqa: E402

start = time.perf_counter()
result = fib.fib(28)
elapsed = time.perf_counter() - start
print(f"fib(28) = {result} in {elapsed * 1000:.1f} ms")
sys.exit(0 if result == 317811 and elapsed < 0.01 else 1)
