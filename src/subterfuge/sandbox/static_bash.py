"""Debian's `bash-static` as the warm sandboxes' bash, where it is installed.

Every episode starts a bash and every command the agent runs forks one. Linked
statically, bash maps no libraries and the dynamic loader relocates none at each
start, and a fork copies fewer mappings: ~1.3 ms of machine CPU less per hider
episode (docs/benchmarks.md). It is the same bash (same package version, checked),
at the same path. What differs, for an agent that looks: `ldd` and the file's size,
and `enable -f` (no loadable builtins).

One catch: a statically linked glibc that loads an NSS module (`systemd`, `compat`,
`db`, `myhostname` in /etc/nsswitch.conf) crashes, so `echo ~bob` killed the shell.
Those sandboxes see the host's nsswitch.conf with only the sources built into glibc
(since 2.34): `files` and `dns`. Inside a sandbox the others had nothing to answer
with anyway (no network, no socket of the host's systemd), except `myhostname`,
which resolved the sandbox's own host name. The audit's one-shot sandboxes keep the
dynamic bash and the host's file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

STATIC_BASH = "/usr/bin/bash-static"
NSSWITCH = "/etc/nsswitch.conf"
BUILT_IN = ("files", "dns")
"""The NSS sources glibc >= 2.34 has built in: all a static glibc can use safely."""


def built_in_only(conf: str) -> str:
    """`conf` (an nsswitch.conf) with every source but `BUILT_IN` dropped, and the
    actions (`[NOTFOUND=return]`) of those dropped; a database left with none reads
    its file."""
    lines = []
    for line in conf.splitlines():
        database, colon, sources = line.partition("#")[0].partition(":")
        if not colon or not database.strip():
            continue
        kept: list[str] = []
        keeping = False
        for token in re.findall(r"\[[^\]]*\]|[^\s\[]+", sources):
            if token.startswith("["):
                if keeping:
                    kept.append(token)
            else:
                keeping = token in BUILT_IN
                if keeping:
                    kept.append(token)
        lines.append(f"{database.strip()}: {' '.join(kept) or 'files'}\n")
    return "".join(lines)


def _version(argv: list[str]) -> bytes | None:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, env={}, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _glibc_built_in() -> bool:
    """Whether this glibc has `files` and `dns` built in (2.34 and later)."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
        major, minor = (int(part) for part in version.split(".")[:2])  # "glibc 2.36"
    except (ValueError, OSError):  # not glibc
        return False
    return name == "glibc" and (major, minor) >= (2, 34)


def same_bash(static: str) -> bool:
    """Whether `static` says it is the same bash as /bin/bash, and, where dpkg knows both
    packages, they are the same version (Debian builds them from one source)."""
    says = [
        (_version([bash, "--version"]) or b"").partition(b"\n")[0] for bash in (static, "/bin/bash")
    ]
    if not says[0] or says[0] != says[1]:
        return False
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return True
    packaged = [
        _version([dpkg, "-W", "-f", "${Version}", name]) for name in ("bash", "bash-static")
    ]
    return None in packaged or packaged[0] == packaged[1]


@cache
def static_bash() -> str | None:
    """`STATIC_BASH` where it is the same bash as /bin/bash (`same_bash`), this glibc has
    the sources it can use built in and the host has an nsswitch.conf to trim; else None."""
    if not (os.path.isfile(NSSWITCH) and _glibc_built_in() and os.access(STATIC_BASH, os.X_OK)):
        return None
    return STATIC_BASH if same_bash(STATIC_BASH) else None


def bind_args(base_dir: Path) -> list[str]:
    """bwrap arguments that run the static bash as bash, with the trimmed nsswitch.conf
    (a file in `base_dir`, which pool uids can traverse, named after its content); none
    where there is no static bash, or the file cannot be written."""
    static = static_bash()
    if static is None:
        return []
    try:
        text = built_in_only(Path(NSSWITCH).read_text(encoding="utf-8", errors="replace"))
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        conf = base_dir / f"nsswitch-{digest}.conf"
        if not conf.is_file():  # another harness process may be reading one: never rewritten
            fd, temporary = tempfile.mkstemp(dir=base_dir, prefix=".nsswitch-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.chmod(temporary, 0o644)
                os.replace(temporary, conf)
            except BaseException:
                os.unlink(temporary)
                raise
    except OSError:  # (a full disk, say): the dynamic bash, which needs none of this
        return []
    bash = os.path.realpath("/bin/bash")
    return ["--ro-bind", static, bash, "--ro-bind", str(conf), NSSWITCH]
