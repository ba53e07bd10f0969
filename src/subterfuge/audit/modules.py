"""The Python side of a workspace: parsed modules, the functions they define, and which
workspace functions a test module's names stand for (its imports, read with `ast`)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

TEST_NAME = re.compile(r"^(test_.*|.*_test)\.py$")


@dataclass(frozen=True)
class Target:
    """A function under test: `qualname` is `name` or `Class.name`."""

    path: str
    qualname: str

    @property
    def name(self) -> str:
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Case:
    """One literal check a visible test makes: target(*args, **kwargs) == expected."""

    target: Target
    args: tuple[str, ...]
    kwargs: tuple[tuple[str, str], ...]
    expected: str
    """Python source of the expected value (a literal)."""


@dataclass
class Module:
    """A parsed Python file of the workspace."""

    path: str
    source: bytes
    tree: ast.Module
    is_test: bool
    functions: dict[str, FunctionNode] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)

    @property
    def dotted(self) -> list[str]:
        """Every name this file could be imported as (`a/b/c.py`: a.b.c, b.c, c)."""
        parts = list(PurePosixPath(self.path).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


def parse_module(rel: str, data: bytes) -> Module | None:
    """Parse one file; None when it is not valid UTF-8 Python (offsets are UTF-8 bytes)."""
    try:
        tree = ast.parse(data, filename=rel)
        data.decode("utf-8")
    except (SyntaxError, ValueError, UnicodeDecodeError):
        return None
    module = Module(rel, data, tree, is_test=False)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            module.functions[node.name] = node
        elif isinstance(node, ast.ClassDef):
            module.classes[node.name] = node
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    module.functions[f"{node.name}.{item.name}"] = item
    module.is_test = bool(TEST_NAME.match(PurePosixPath(rel).name)) or _has_tests(tree)
    return module


def _has_tests(tree: ast.Module) -> bool:
    """Top-level `test*` functions or test classes (`Test*`, `*TestCase` bases).

    Not `monitor.python_ast.is_test_source`, on purpose: that one reads diff hunks, so it
    looks at every nested `def` and counts module-level asserts; here a test module is
    one pytest/unittest would collect tests from (the file name aside).
    """
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            return True
        if isinstance(node, ast.ClassDef) and (
            node.name.startswith("Test")
            or any(ast.unparse(b).endswith("TestCase") for b in node.bases)
        ):
            return True
    return False


def public(qualname: str) -> bool:
    """No part of the name starts with an underscore."""
    return not any(p.startswith("_") for p in qualname.split("."))


class Imports:
    """Which local names of a test module stand for which workspace modules/functions."""

    def __init__(self, by_dotted: dict[str, Module]) -> None:
        self.by_dotted = by_dotted
        self.modules: dict[str, Module] = {}
        self.functions: dict[str, Target] = {}
        self.classes: dict[str, tuple[Module, str]] = {}

    def read(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    mod = self.by_dotted.get(alias.name)
                    if mod is not None:
                        self.modules[alias.asname or alias.name.split(".")[0]] = mod
            elif isinstance(node, ast.ImportFrom) and node.module:
                mod = self.by_dotted.get(node.module)
                for alias in node.names:
                    local = alias.asname or alias.name
                    sub = self.by_dotted.get(f"{node.module}.{alias.name}")
                    if sub is not None:
                        self.modules[local] = sub
                    elif mod is not None and alias.name in mod.functions:
                        self.functions[local] = Target(mod.path, alias.name)
                    elif mod is not None and alias.name in mod.classes:
                        self.classes[local] = (mod, alias.name)

    def resolve(self, func: ast.expr, instances: dict[str, str] | None = None) -> Target | None:
        """The target a call's `func` names, if any: `f`, `module.f`, `Class(...).m`, or
        `obj.m` where `instances` says which imported class `obj` was made from."""
        if isinstance(func, ast.Name):
            return self.functions.get(func.id)
        if not isinstance(func, ast.Attribute):
            return None
        owner = func.value
        if isinstance(owner, ast.Name) and owner.id in self.modules:
            mod = self.modules[owner.id]
            return Target(mod.path, func.attr) if func.attr in mod.functions else None
        local = None
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name):
            local = owner.func.id
        elif isinstance(owner, ast.Name) and instances:
            local = instances.get(owner.id)
        if local in self.classes:
            mod, cls = self.classes[local]
            qualname = f"{cls}.{func.attr}"
            return Target(mod.path, qualname) if qualname in mod.functions else None
        return None


def targets_used(module: Module, imports: Imports) -> list[Target]:
    found: list[Target] = list(imports.functions.values())
    for mod, cls in imports.classes.values():
        found += [
            Target(mod.path, q)
            for q in mod.functions
            if q.startswith(cls + ".") and not q.split(".")[-1].startswith("__")
        ]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            target = imports.resolve(node)
            if target is not None:
                found.append(target)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Name)
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            named = imports.modules.get(node.args[0].id)
            if named is not None and node.args[1].value in named.functions:
                found.append(Target(named.path, node.args[1].value))
    return found
