"""Rewriting Python source by `ast` positions, leaving everything else byte for byte.

Positions from `ast` are line numbers plus UTF-8 byte columns, so all the
splicing happens on bytes. Several splices of one file are applied from the
end backwards so earlier offsets stay valid.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from subterfuge.audit.modules import FunctionNode


@dataclass(frozen=True)
class Splice:
    """Replace bytes [start, end) of a source with `text`."""

    start: int
    end: int
    text: bytes


class Source:
    """One file's bytes with line offsets, producing splices."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.starts = [0]
        for i, byte in enumerate(data):
            if byte == 0x0A:
                self.starts.append(i + 1)

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def indent_of(self, node: ast.stmt) -> bytes:
        line_start = self.starts[node.lineno - 1]
        return self.data[line_start : line_start + node.col_offset]

    def apply(self, splices: Iterable[Splice]) -> bytes:
        data = self.data
        for s in sorted(splices, key=lambda s: s.start, reverse=True):
            data = data[: s.start] + s.text + data[s.end :]
        return data

    def replace_body(self, func: FunctionNode, lines: Sequence[str]) -> Splice:
        """The function keeps its decorators, signature and docstring; the rest of its
        body becomes `lines`."""
        body = list(func.body)
        doc = body[0] if _is_docstring(body[0]) else None
        if doc is not None:
            body = body[1:]
        last = func.body[-1]
        end = self.offset(last.end_lineno or last.lineno, last.end_col_offset or 0)
        if not body:  # only a docstring: add the lines after it
            assert doc is not None
            text = b"".join(b"\n" + self.indent_of(doc) + line.encode() for line in lines)
            return Splice(end, end, text)
        first = body[0]
        if first.lineno == func.lineno or (doc is not None and first.lineno == doc.end_lineno):
            indent = self.indent_of(func) + b"    "  # `def f(): return 1` on one line
            start = self.offset(first.lineno, first.col_offset)
            text = b"\n" + b"\n".join(indent + line.encode() for line in lines)
            return Splice(start, end, text)
        indent = self.indent_of(first)
        start = self.starts[first.lineno - 1]
        text = b"\n".join(indent + line.encode() for line in lines)
        return Splice(start, end, text)

    def replace_def(self, func: FunctionNode, lines: Sequence[str]) -> Splice:
        """The whole `def` (decorators kept) becomes `lines`, at the same indentation."""
        indent = self.indent_of(func)
        start = self.offset(func.lineno, func.col_offset)
        end = self.offset(func.end_lineno or func.lineno, func.end_col_offset or 0)
        text = (b"\n" + indent).join(line.encode() for line in lines)
        return Splice(start, end, text)

    def prologue(self, tree: ast.Module, code: str) -> Splice:
        """Code that runs first when the module is imported (after its docstring and
        `from __future__` imports, which must stay first)."""
        line = len(self.starts) + 1
        for node in tree.body:
            is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            is_future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
            if not (is_doc and node is tree.body[0]) and not is_future:
                decorators = getattr(node, "decorator_list", [])
                line = min([node.lineno, *(d.lineno for d in decorators)])
                break
        else:
            last = tree.body[-1] if tree.body else None
            if last is not None:
                pos = self.offset(last.end_lineno or last.lineno, last.end_col_offset or 0)
                return Splice(pos, pos, b"\n" + code.encode())
            return Splice(0, 0, code.encode())
        start = self.starts[line - 1]
        return Splice(start, start, code.encode())


def body_source(func: FunctionNode) -> list[str]:
    """The function's body after its docstring, as source lines (re-generated from the
    tree, so comments are not kept); `pass` when there is nothing else."""
    body = func.body[1:] if _is_docstring(func.body[0]) else func.body
    return "\n".join(ast.unparse(stmt) for stmt in body).splitlines() or ["pass"]


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def first_param(func: FunctionNode) -> str | None:
    """`self`/`cls` of a method (None for static methods and plain functions)."""
    if any(ast.unparse(d) == "staticmethod" for d in func.decorator_list):
        return None
    params = [*func.args.posonlyargs, *func.args.args]
    return params[0].arg if params else None
