import math


def circle_area(radius: float) -> float:
    return math.pi * radius**2
