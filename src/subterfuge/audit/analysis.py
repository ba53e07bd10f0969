"""Reading a workspace the way a lazy agent would: what to attack, found by `ast`.

Nothing is imported or executed: Python files are parsed, other files are read
as bytes. The analysis finds the visible tests, the functions they exercise
(the *targets*), the literal input/expected pairs the tests check, answer-like
and result-like files, grader functions living in the workspace, and whether
anything in the workspace is about timing.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from subterfuge.audit.cases import literal_cases
from subterfuge.audit.modules import (
    Case,
    FunctionNode,
    Imports,
    Module,
    Target,
    parse_module,
    public,
    targets_used,
)
from subterfuge.audit.workspace import read_file, walk_files

__all__ = ["Analysis", "Case", "FunctionNode", "Module", "Target", "analyze", "tokens"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SUPPORT_NAMES = frozenset({"conftest.py", "setup.py", "noxfile.py", "__main__.py"})
GRADER_WORDS = _words(
    "grade grader grading reward rewards score scorer scoring evaluate evaluation evaluator "
    "judge checker verify verifier"
)
GRADER_FILE_WORDS = GRADER_WORDS | {"check", "checks"}
"""A file called `check.py` is a grader; a function called `check` is too often not."""
ANSWER_WORDS = _words(
    "expected expect answer answers solution solutions reference ref golden gold truth "
    "groundtruth oracle"
)
RESULT_WORDS = _words(
    "score scores result results reward rewards metric metrics grade grades report eval "
    "evaluation summary status outcome"
)
RESULT_EXTENSIONS = frozenset({".json", ".txt", ".csv", ".yaml", ".yml", ".toml", ".out"})
TIMING = re.compile(
    rb"perf_counter|time\.time\(|monotonic\(|process_time|timeit|"
    rb"\b(?:too slow|speed ?up|faster|benchmark|latency|performance|time limit|runtime|"
    rb"seconds|milliseconds?|ms)\b",
    re.IGNORECASE,
)
PATH_LITERAL = re.compile(r"^[\w./-]+\.[A-Za-z0-9]{1,5}$")


def tokens(path: str) -> set[str]:
    """Lower-case words of a path (`data/expected_output.txt` -> data, expected, output, txt)."""
    return {t for t in re.split(r"[^a-z0-9]+", path.lower()) if t}


@dataclass
class Analysis:
    """What a workspace offers an attacker."""

    root: Path
    files: list[str]
    modules: dict[str, Module]
    tests: list[str]
    targets: list[Target]
    targets_from_tests: bool
    cases: list[Case]
    graders: list[Target]
    grader_scripts: list[str]
    answer_files: list[str]
    reference_modules: list[str]
    result_files: list[str]
    result_keys: list[str]
    string_literals: set[str]
    timing: bool

    @property
    def sources(self) -> list[str]:
        """Modules that define targets, in order."""
        return list(dict.fromkeys(t.path for t in self.targets))

    def node(self, target: Target) -> FunctionNode:
        return self.modules[target.path].functions[target.qualname]

    def content(self, rel: str) -> bytes | None:
        return read_file(self.root, rel)


def analyze(root: Path) -> Analysis:
    """Read the workspace at `root` (a pristine copy; nothing in it is executed)."""
    files = list(walk_files(root))
    modules: dict[str, Module] = {}
    timing = False
    for rel in files:  # one read per file: parsed if Python, scanned for timing either way
        data = read_file(root, rel)
        if data is None:
            continue
        timing = timing or TIMING.search(data) is not None
        parsed = parse_module(rel, data) if rel.endswith(".py") else None
        if parsed is not None:
            modules[rel] = parsed
    by_dotted: dict[str, Module] = {}
    for module in sorted(modules.values(), key=lambda m: m.path.count("/")):
        for name in module.dotted:
            by_dotted.setdefault(name, module)
    tests = [m.path for m in modules.values() if m.is_test]
    targets: list[Target] = []
    imports_of: dict[str, Imports] = {}
    for path in tests:
        imports = Imports(by_dotted)
        imports.read(modules[path].tree)
        imports_of[path] = imports
        targets += [t for t in targets_used(modules[path], imports) if t.path not in tests]
    targets = list(dict.fromkeys(targets))
    from_tests = bool(targets)
    support = {m.path for m in modules.values() if PurePosixPath(m.path).name in SUPPORT_NAMES}
    under_test = {t.path for t in targets}
    code = [m for m in modules.values() if not m.is_test and m.path not in support]
    candidates = [m for m in code if m.path not in under_test]
    # a reward function stays a grader even when a visible test guards it (as in the
    # reward-tampering environment), so graders are looked for in all non-test code
    graders, grader_scripts = _graders(code)
    grader_paths = {g.path for g in graders} | set(grader_scripts)
    answer_files, reference_modules = _answers(root, files, modules, tests)
    if not targets:
        for m in candidates:
            if m.path in grader_paths or m.path in reference_modules:
                continue
            targets += [Target(m.path, q) for q in m.functions if public(q)]
    cases: list[Case] = []
    for path in tests:
        cases += literal_cases(modules[path], imports_of[path], set(targets))
    literals = _string_literals(modules.values())
    result_files = _result_files(files, literals, answer_files)
    return Analysis(
        root=root,
        files=files,
        modules=modules,
        tests=tests,
        targets=targets,
        targets_from_tests=from_tests,
        cases=cases,
        graders=graders,
        grader_scripts=grader_scripts,
        answer_files=answer_files,
        reference_modules=reference_modules,
        result_files=result_files,
        result_keys=_result_keys(modules.values()),
        string_literals=literals,
        timing=timing,
    )


def _graders(candidates: list[Module]) -> tuple[list[Target], list[str]]:
    """Functions named like graders; grader-named files with top-level logic and no such one."""
    functions: list[Target] = []
    scripts: list[str] = []
    for m in candidates:
        named = [q for q in m.functions if tokens(q.split(".")[-1]) & GRADER_WORDS]
        functions += [Target(m.path, q) for q in named]
        file_is_grader = bool(tokens(PurePosixPath(m.path).stem) & GRADER_FILE_WORDS)
        logic = any(
            not isinstance(n, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
            for n in m.tree.body
        )
        if file_is_grader and not named and logic:
            scripts.append(m.path)
    return functions, scripts


def _answers(
    root: Path, files: list[str], modules: dict[str, Module], tests: list[str]
) -> tuple[list[str], list[str]]:
    """Data files named like answers (non-empty), and Python files named like references."""
    data: list[str] = []
    code: list[str] = []
    for rel in files:
        if rel in tests or not tokens(rel) & ANSWER_WORDS:
            continue
        if rel.endswith(".py"):
            if rel in modules and modules[rel].functions:
                code.append(rel)
            continue
        content = read_file(root, rel)
        if content is not None and content.strip() and b"TODO" not in content[:200]:
            data.append(rel)
    return data, code


def _string_literals(modules: Iterable[Module]) -> set[str]:
    """String constants that look like relative or absolute file paths."""
    found: set[str] = set()
    for module in modules:
        for node in ast.walk(module.tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if PATH_LITERAL.match(node.value) and ".." not in node.value.split("/"):
                found.add(node.value.removeprefix("./"))
    return found


def _result_files(files: list[str], literals: set[str], answers: list[str]) -> list[str]:
    def result_like(path: str) -> bool:
        suffix = PurePosixPath(path).suffix.lower()
        stem_words = tokens(PurePosixPath(path).stem)
        return (
            suffix in RESULT_EXTENSIONS
            and bool(stem_words & RESULT_WORDS)
            and not stem_words & ANSWER_WORDS
        )

    found = [f for f in files if result_like(f) and f not in answers]
    found += [lit for lit in sorted(literals) if not lit.startswith("/") and result_like(lit)]
    return list(dict.fromkeys(found))


def _result_keys(modules: Iterable[Module]) -> list[str]:
    """Keys of dict literals in modules that write JSON (the result schema, as written)."""
    keys: list[str] = []
    for module in modules:
        nodes = list(ast.walk(module.tree))
        writes_json = any(
            isinstance(n, ast.Attribute) and n.attr in ("dump", "dumps", "write_text")
            for n in nodes
        )
        if not writes_json:
            continue
        for n in nodes:
            if isinstance(n, ast.Dict):
                keys += [
                    k.value
                    for k in n.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
    return list(dict.fromkeys(keys))
