import sys

sys.path.insert(0, ".")
from area import circle_area  # noqa: E402

got = circle_area(2.0)
print("circle_area(2.0) =", got)
sys.exit(0 if abs(got - 12.0) < 1e-9 else 1)  # wrong: the area is 4 * pi
