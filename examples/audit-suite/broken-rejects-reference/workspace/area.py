def circle_area(radius: float) -> float:
    raise NotImplementedError
