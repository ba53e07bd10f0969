"""The persistent-shell protocol: one bash, commands framed by a random sentinel.

Each command travels as one physical line, `eval $'...' </dev/null`, followed
by two `printf`s that write a per-command end marker to stdout (with `$?`) and to
stderr. ANSI-C quoting is done here, so any text (unbalanced quotes, heredocs,
syntax errors) reaches `eval` intact and cannot desynchronise the shell, and no
helper process is spawned per command. (The line must not start with `{`: bash 5.2
misparses a `{` group right after an `eval` syntax error. Some long runs of syntax
errors crash bash 5.2 outright; that is handled like `exit`, by a restart.) The
marker is printed from two halves so that `set -x` echoing the printf line can
never look like the marker itself.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Protocol

_QUOTE_TABLE: dict[int, str | None] = {c: f"\\x{c:02x}" for c in range(1, 32)}
_QUOTE_TABLE.update({0: None, 0x7F: "\\x7f", ord("\\"): "\\\\", ord("'"): "\\'"})


def ansi_c_quote(text: str) -> str:
    """`text` as a bash `$'...'` word on one line (NUL bytes dropped: bash cannot hold them)."""
    return "$'" + text.translate(_QUOTE_TABLE) + "'"


class Framer:
    """Makes command lines and their end markers; the token is random per sandbox."""

    def __init__(self) -> None:
        self._head = "SFG" + secrets.token_hex(12)
        self._count = 0

    def frame(self, body: str) -> tuple[bytes, bytes, bytes]:
        """Return (line to send, stdout marker, stderr marker) for one shell-level `body`."""
        self._count += 1
        tail = f"-{self._count}-END"
        line = (
            f"{body} </dev/null; printf '\\n%s%s:%d\\n' '{self._head}' '{tail}' \"$?\"; "
            f"printf '\\n%s%s\\n' '{self._head}' '{tail}' >&2\n"
        )
        marker = f"\n{self._head}{tail}".encode()
        return line.encode("utf-8", "replace"), marker + b":", marker + b"\n"

    def command(self, command: str) -> tuple[bytes, bytes, bytes]:
        """Frame an agent command: it goes through `eval`, never parsed as our own line."""
        return self.frame("eval " + ansi_c_quote(command))


class ShellInput(Protocol):
    """The shell's stdin: asyncio's `StreamWriter`, or `pipes.PipeWriter`."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class ShellOutput(Protocol):
    """The shell's stdout or stderr: asyncio's `StreamReader`, or `pipes.PipeReader`."""

    async def read(self, n: int) -> bytes: ...


class StreamCollector:
    """Reads one pipe up to an end marker, keeping at most `limit` bytes of output.

    State lives on the object so that a cancelled read (timeout) still leaves the
    partial output readable. Bytes after the marker are carried to the next command.
    """

    def __init__(self, reader: ShellOutput) -> None:
        self.reader = reader
        self.carry = bytearray()
        self.kept = bytearray()
        self.truncated = False
        self.eof = False
        self.rest = b""

    async def collect(
        self, marker: bytes, limit: int, on_overflow: Callable[[], None], until_newline: bool
    ) -> bool:
        """Read until `marker` (and, if `until_newline`, the line it ends). False on EOF."""
        self.kept = bytearray()
        self.truncated = False
        self.rest = b""
        buf = self.carry
        self.carry = bytearray()
        hold = len(marker) - 1
        while True:
            idx = buf.find(marker)
            if idx >= 0:
                self._keep(buf[:idx], limit, on_overflow)
                after = bytes(buf[idx + len(marker) :])
                if until_newline:
                    while b"\n" not in after:
                        chunk = await self.reader.read(1024)
                        if not chunk:
                            self.eof = True
                            return False
                        after += chunk
                    line, _, after = after.partition(b"\n")
                    self.rest = line
                self.carry = bytearray(after)
                return True
            if len(buf) > hold:
                cut = len(buf) - hold
                self._keep(buf[:cut], limit, on_overflow)
                del buf[:cut]
            chunk = await self.reader.read(1 << 16)
            if not chunk:
                self._keep(buf, limit, on_overflow)
                self.eof = True
                return False
            buf += chunk

    def _keep(self, data: bytes | bytearray, limit: int, on_overflow: Callable[[], None]) -> None:
        room = limit - len(self.kept)
        if len(data) <= room:
            self.kept += data
            return
        if room > 0:
            self.kept += data[:room]
        if not self.truncated:
            self.truncated = True
            on_overflow()

    def text(self) -> str:
        return self.kept.decode("utf-8", "replace")


def parse_exit_code(raw: bytes) -> int:
    """The `$?` printed after the marker; 1 if it is somehow not a number."""
    try:
        return int(raw.strip() or b"1")
    except ValueError:
        return 1
