"""The conversation every curriculum episode starts from: preamble, worked example, task."""

from __future__ import annotations

from subterfuge.envs.base import Message
from subterfuge.envs.content import PREAMBLE, WORKED_EXAMPLE


def curriculum_messages(task: str, *, preamble: str = PREAMBLE) -> tuple[Message, ...]:
    """System preamble, then the worked example as prior turns, then the task."""
    example = tuple(Message(role, text) for role, text in WORKED_EXAMPLE)
    return (Message("system", preamble), *example, Message("user", task))


def python_literal_assignment(source: str | None, name: str) -> object:
    """The value of `name = <literal>` in `source`, read with `ast` (never executed).

    Returns `_MISSING` when the file is absent, unparsable or the value is not a
    plain literal; the in-sandbox reading is then the fallback.
    """
    import ast

    if source is None:
        return MISSING
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return MISSING
    value: object = MISSING
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            assert isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                value = MISSING
    return value


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()
