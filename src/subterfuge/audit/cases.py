"""Literal cases in visible tests: `target(*args, **kwargs) == expected` pairs a test
checks, read from asserts, unittest equality asserts and `pytest.mark.parametrize` rows,
so the special-case attack can answer exactly those and nothing else."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

from subterfuge.audit.modules import Case, FunctionNode, Imports, Module, Target

_EQUAL_ASSERTS = frozenset({"assertEqual", "assertEquals", "assertIs"})


class _Bind(ast.NodeTransformer):
    def __init__(self, binding: dict[str, ast.expr]) -> None:
        self.binding = binding

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.binding.get(node.id, node)


def _literal(node: ast.expr, binding: dict[str, ast.expr]) -> str | None:
    bound = _Bind(binding).visit(copy.deepcopy(node))
    try:
        ast.literal_eval(bound)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return ast.unparse(bound)


def _parametrize(func: FunctionNode) -> list[dict[str, ast.expr]]:
    """One binding per parameter row of `@pytest.mark.parametrize` (literal rows only)."""
    rows: list[dict[str, ast.expr]] = [{}]
    for dec in func.decorator_list:
        if not (isinstance(dec, ast.Call) and ast.unparse(dec.func).endswith("parametrize")):
            continue
        if len(dec.args) < 2 or not isinstance(dec.args[1], ast.List | ast.Tuple):
            continue
        names_node = dec.args[0]
        if isinstance(names_node, ast.Constant) and isinstance(names_node.value, str):
            names = [n.strip() for n in names_node.value.split(",") if n.strip()]
        elif isinstance(names_node, ast.List | ast.Tuple):
            names = [
                e.value
                for e in names_node.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
        else:
            continue
        values: list[dict[str, ast.expr]] = []
        for row in dec.args[1].elts:
            elts = row.elts if isinstance(row, ast.Tuple) and len(names) > 1 else [row]
            if len(elts) == len(names):
                values.append(dict(zip(names, elts, strict=True)))
        rows = [r | v for r in rows for v in values] if values else rows
    return rows


def _checks(body: list[ast.stmt]) -> Iterator[tuple[ast.expr, ast.expr]]:
    """(call-or-name, expected) pairs from asserts and unittest equality asserts."""
    true, false = ast.Constant(True), ast.Constant(False)
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assert):
                test = node.test
                if isinstance(test, ast.Compare) and len(test.ops) == 1:
                    if isinstance(test.ops[0], ast.Eq | ast.Is):
                        yield test.left, test.comparators[0]
                        yield test.comparators[0], test.left
                elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                    yield test.operand, false
                else:
                    yield test, true
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                if name in _EQUAL_ASSERTS and len(node.args) >= 2:
                    yield node.args[0], node.args[1]
                    yield node.args[1], node.args[0]
                elif name == "assertTrue" and node.args:
                    yield node.args[0], true
                elif name == "assertFalse" and node.args:
                    yield node.args[0], false


def _scopes(tree: ast.Module) -> Iterator[tuple[list[ast.stmt], list[dict[str, ast.expr]]]]:
    top = [s for s in tree.body if not isinstance(s, ast.FunctionDef | ast.ClassDef)]
    yield top, [{}]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.body, _parametrize(node)


def literal_cases(module: Module, imports: Imports, targets: set[Target]) -> list[Case]:
    """Every literal check `module` makes on one of `targets`."""
    found: list[Case] = []
    for body, bindings in _scopes(module.tree):
        assigned: dict[str, ast.Call] = {}
        for stmt in body:
            if (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Call)
            ):
                assigned[stmt.targets[0].id] = stmt.value
        instances = {
            name: call.func.id
            for name, call in assigned.items()
            if isinstance(call.func, ast.Name) and call.func.id in imports.classes
        }
        for binding in bindings:
            for subject, expected in _checks(body):
                if isinstance(subject, ast.Name) and subject.id in assigned:
                    subject = assigned[subject.id]
                if not isinstance(subject, ast.Call):
                    continue
                target = imports.resolve(subject.func, instances)
                if target is None or target not in targets:
                    continue
                case = _case(target, subject, expected, binding)
                if case is not None:
                    found.append(case)
    return list(dict.fromkeys(found))


def _case(
    target: Target, call: ast.Call, expected: ast.expr, binding: dict[str, ast.expr]
) -> Case | None:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    args = [_literal(a, binding) for a in call.args]
    kwargs = [(k.arg or "", _literal(k.value, binding)) for k in call.keywords]
    want = _literal(expected, binding)
    if want is None or any(a is None for a in args) or any(v is None for _, v in kwargs):
        return None
    return Case(
        target,
        tuple(a for a in args if a is not None),
        tuple((k, v) for k, v in kwargs if v is not None),
        want,
    )
