"""What a shell command does to files, read from its text without running it.

The agent acts through bash, so an action monitor must see through redirects,
here-documents, `tee`, `sed -i`, `rm`, `mv`, `cp` and `python -c` to know
which files a command writes and, where the command shows it, what it writes.
This is a reading of common forms, not a shell: a command it cannot read
yields no operation rather than a wrong one, and the host-side diffs (read by
the rule monitor too) catch what the text hides.
"""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Op = Literal["write", "append", "edit", "delete", "copy", "create"]

_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "\n", "|&"})
_PYTHONS = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")


@dataclass(frozen=True)
class FileOp:
    """One file operation: `content` is the text written when the command shows it."""

    op: Op
    path: str
    start: int
    end: int
    content: str | None = None
    content_start: int | None = None


@dataclass(frozen=True)
class PythonCode:
    """Python source a command runs (`python -c`, a here-document fed to python)."""

    code: str
    start: int


@dataclass(frozen=True)
class ShellReading:
    """Everything read from one command, and the working directory after it."""

    ops: tuple[FileOp, ...]
    python: tuple[PythonCode, ...]
    cwd: str | None


@dataclass(frozen=True)
class _Heredoc:
    body: str
    start: int  # offset of the body in the command


def _heredocs(command: str) -> tuple[str, list[_Heredoc]]:
    """Cut here-document bodies out of the command (blanked, offsets kept) and return them."""
    bodies: list[_Heredoc] = []
    text = command
    pos = 0
    while True:
        match = _HEREDOC.search(text, pos)
        if match is None:
            break
        strip_tabs, delimiter = match.group(1) == "-", match.group(3)
        line_end = text.find("\n", match.end())
        if line_end == -1:
            break
        body_start = line_end + 1
        cursor, body_end, after = body_start, len(text), len(text)
        while cursor <= len(text):
            nl = text.find("\n", cursor)
            line = text[cursor : nl if nl != -1 else len(text)]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                body_end, after = cursor, nl if nl != -1 else len(text)
                break
            if nl == -1:
                break
            cursor = nl + 1
        bodies.append(_Heredoc(text[body_start:body_end], body_start))
        text = text[:body_start] + " " * (after - body_start) + text[after:]
        pos = after
    return text, bodies


def _tokens(text: str) -> list[str]:
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace = " \t\r"
    lexer.wordchars += "~-./*?[]{}$=:%+,@^!#"
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:  # unbalanced quotes: leave the command unread
        return []


def _printf(fmt: str) -> str:
    def escape(m: re.Match[str]) -> str:
        return {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(m.group(1), m.group(0))

    return re.sub(r"\\(.)", escape, fmt).replace("%%", "%")


def _echo(args: list[str]) -> str:
    escapes = False
    newline = True
    while args and re.fullmatch(r"-[neE]+", args[0]):
        flags, args = args[0], args[1:]
        escapes = escapes or "e" in flags
        newline = newline and "n" not in flags
    text = " ".join(args)
    return (_printf(text) if escapes else text) + ("\n" if newline else "")


def _resolve(path: str, cwd: str | None) -> str:
    if path.startswith("~"):
        path = "/root" + path[1:]
    if posixpath.isabs(path) or cwd is None:
        return posixpath.normpath(path) if posixpath.isabs(path) else path
    return posixpath.normpath(posixpath.join(cwd, path))


class _Locator:
    """Finds each path's text in the command, left to right, for evidence spans."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.pos = 0

    def span(self, word: str) -> tuple[int, int]:
        at = self.command.find(word, self.pos)
        if at == -1:
            at = self.command.find(word)
        if at == -1:
            return 0, len(self.command)
        self.pos = at + len(word)
        return at, at + len(word)


@functools.lru_cache(maxsize=4096)
def read_command(command: str, cwd: str | None = None) -> ShellReading:
    """The file operations and Python code of one command, given the shell's working directory.

    Cached: the same commands recur across the episodes of a run.
    """
    text, bodies = _heredocs(command)
    tokens = _tokens(text.replace("\\\n", " "))
    locate = _Locator(command)
    ops: list[FileOp] = []
    python: list[PythonCode] = []
    heredoc_iter = iter(bodies)
    piped: tuple[str | None, int | None] = (None, None)
    simple: list[str] = []
    for token in [*tokens, ";"]:
        if token not in _SEPARATORS:
            simple.append(token)
            continue
        if simple:
            cwd, produced = _simple(simple, cwd, locate, ops, python, heredoc_iter, piped)
            piped = produced if token in ("|", "|&") else (None, None)
        simple = []
    return ShellReading(tuple(ops), tuple(python), cwd)


def _simple(
    words: list[str],
    cwd: str | None,
    locate: _Locator,
    ops: list[FileOp],
    python: list[PythonCode],
    heredocs: Iterator[_Heredoc],
    piped: tuple[str | None, int | None],
) -> tuple[str | None, tuple[str | None, int | None]]:
    """Read one simple command; returns the new cwd and (stdout text, its offset) if known."""
    argv: list[str] = []
    redirects: list[tuple[str, str]] = []
    stdin: _Heredoc | None = None
    i = 0
    while i < len(words):
        word = words[i]
        if word in (">", ">>", ">|") and i + 1 < len(words):
            redirects.append((word, words[i + 1]))
            i += 2
            continue
        if word in ("<<", "<<-") and i + 1 < len(words):
            stdin = next(heredocs, None)
            i += 2
            continue
        if word == "<" and i + 1 < len(words):
            i += 2
            continue
        if word in ("1", "2") and i + 2 < len(words) and words[i + 1] in (">", ">>"):
            if word == "1":  # `1>` is `>`
                redirects.append((words[i + 1], words[i + 2]))
            i += 3  # stderr (`2>`) writes no content a monitor reads
            continue
        argv.append(word)
        i += 1
    while argv and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", argv[0]):
        argv = argv[1:]  # leading VAR=value assignments
    if argv and argv[0] in ("sudo", "command", "exec", "nohup"):
        argv = argv[1:]
    program = posixpath.basename(argv[0]) if argv else ""
    args = argv[1:]
    stdout: tuple[str | None, int | None] = (None, None)
    stdin_text = (stdin.body, stdin.start) if stdin is not None else piped

    if program == "cd":
        target = args[0] if args else "/root"
        cwd = _resolve(target, cwd) if target != "-" else cwd
    elif program == "echo":
        stdout = (_echo(args), None)
    elif program == "printf" and args:
        stdout = (_printf(args[0]), None)
    elif program == "cat" and not args:
        stdout = stdin_text
    elif program == "tee":
        append = any(a in ("-a", "--append") for a in args)
        for path in (a for a in args if not a.startswith("-")):
            start, end = locate.span(path)
            ops.append(
                FileOp(
                    "append" if append else "write",
                    _resolve(path, cwd),
                    start,
                    end,
                    stdin_text[0],
                    stdin_text[1],
                )
            )
        stdout = stdin_text
    elif program == "sed" and any(a == "-i" or a.startswith("-i") for a in args):
        files, script_seen = [], any(a in ("-e", "--expression") for a in args)
        skip = False
        for a in args:
            if skip:
                skip = False
                continue
            if a in ("-e", "--expression", "-f"):
                skip = True
                continue
            if a.startswith("-"):
                continue
            if not script_seen:
                script_seen = True
                continue
            files.append(a)
        for path in files:
            start, end = locate.span(path)
            ops.append(FileOp("edit", _resolve(path, cwd), start, end))
    elif program in ("rm", "unlink", "shred"):
        for path in (a for a in args if not a.startswith("-")):
            start, end = locate.span(path)
            ops.append(FileOp("delete", _resolve(path, cwd), start, end))
    elif (
        program in ("mv", "cp", "install") and len([a for a in args if not a.startswith("-")]) >= 2
    ):
        paths = [a for a in args if not a.startswith("-")]
        for path in paths[:-1]:
            start, end = locate.span(path)
            if program == "mv":
                ops.append(FileOp("delete", _resolve(path, cwd), start, end))
        start, end = locate.span(paths[-1])
        ops.append(FileOp("copy", _resolve(paths[-1], cwd), start, end))
    elif program in ("touch", "truncate"):
        for path in (a for a in args if not a.startswith("-") and not a[:1].isdigit()):
            start, end = locate.span(path)
            ops.append(
                FileOp("create" if program == "touch" else "write", _resolve(path, cwd), start, end)
            )
    elif _PYTHONS.match(program):
        if "-c" in args and args.index("-c") + 1 < len(args):
            code = args[args.index("-c") + 1]
            start, _ = locate.span(code)
            python.append(PythonCode(code, start))
        elif stdin is not None and (not args or args[0] == "-"):
            python.append(PythonCode(stdin.body, stdin.start))

    for kind, path in redirects:
        if path.startswith("/dev/"):
            continue
        start, end = locate.span(path)
        op: Op = "append" if kind == ">>" else "write"
        ops.append(FileOp(op, _resolve(path, cwd), start, end, stdout[0], stdout[1]))
    if redirects:
        stdout = (None, None)
    return cwd, stdout
