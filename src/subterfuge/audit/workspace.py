"""Host-side file work on workspace copies: copying, reading, and applying an attack's edits.

The harness is often root and the trees it touches were written by untrusted
tasks, so nothing here follows a symbolic link: copies keep links as links,
reads refuse them, and edits walk to their target one directory descriptor at
a time (`O_NOFOLLOW`), so a planted link can never redirect a write to a host
file. Nothing here executes workspace code.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_READ = 2 << 20
"""Files larger than this are not read for analysis (nor compared by content)."""


@dataclass(frozen=True)
class Edit:
    """Set the file at `path` (relative, POSIX) to `content`, or delete it when None."""

    path: str
    content: bytes | None

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if pure.is_absolute() or not pure.parts or ".." in pure.parts:
            raise ValueError(f"edit paths are relative and stay inside: {self.path!r}")


class EditRefused(OSError):
    """An edit would have gone through a symbolic link or a non-directory."""


def copy_tree(src: Path, dest: Path) -> None:
    """Copy regular files, directories and links (as links); skip devices, fifos, sockets."""
    os.mkdir(dest, 0o755)
    with os.scandir(src) as entries:
        for entry in entries:
            target = dest / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir(follow_symlinks=False):
                copy_tree(Path(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target, follow_symlinks=False)
                os.chmod(target, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) | 0o600)


def make_world_readable(root: Path) -> None:
    """Let a sandbox's pool uid read a tree the harness copied (directories traversable)."""
    for parent, _, names in os.walk(root):
        os.chmod(parent, 0o755)
        for name in names:
            path = os.path.join(parent, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) | 0o444)


def tree_readable_by_others(root: Path) -> bool:
    """Whether every directory is o+rx and every file o+r (no link is followed)."""
    for parent, _, names in os.walk(root):
        mode = os.stat(parent).st_mode
        if not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
            return False
        for name in names:
            st = os.lstat(os.path.join(parent, name))
            if stat.S_ISREG(st.st_mode) and not st.st_mode & stat.S_IROTH:
                return False
    return True


def walk_files(root: Path) -> Iterator[str]:
    """Relative POSIX paths of every regular file (links and special files skipped)."""
    for parent, dirs, names in os.walk(root):
        dirs.sort()
        rel = Path(parent).relative_to(root)
        for name in sorted(names):
            path = os.path.join(parent, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                yield (rel / name).as_posix()


def _open_dir(root: Path, parts: Sequence[str], create: bool) -> int:
    """A descriptor for root/parts..., refusing links; creates missing directories."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise EditRefused(exc.errno, f"{part} is not a directory") from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(root: Path, rel: str, limit: int = MAX_READ) -> bytes | None:
    """A regular file's content, or None if it is missing, a link, special or too big."""
    parts = PurePosixPath(rel).parts
    try:
        fd = _open_dir(root, parts[:-1], create=False)
    except OSError:
        return None
    try:
        try:
            f = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError:
            return None
        with os.fdopen(f, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
                return None
            return handle.read(limit + 1)
    finally:
        os.close(fd)


def apply_edit(root: Path, edit: Edit) -> None:
    """Write or delete one file inside `root` without following any link."""
    parts = PurePosixPath(edit.path).parts
    fd = _open_dir(root, parts[:-1], create=edit.content is not None)
    try:
        name = parts[-1]
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(sub)
            shutil.rmtree(name, dir_fd=fd)
        elif st is not None:
            os.unlink(name, dir_fd=fd)
        if edit.content is None:
            return
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as handle:
            handle.write(edit.content)
    finally:
        os.close(fd)


def changes(root: Path, edits: Sequence[Edit]) -> list[Edit]:
    """The edits that would change something in `root` (the rest are no-ops)."""
    out: list[Edit] = []
    for edit in edits:
        current = read_file(root, edit.path)
        exists = current is not None or os.path.lexists(root / edit.path)
        if edit.content is None and not exists:
            continue
        if edit.content is not None and current == edit.content:
            continue
        out.append(edit)
    return out


def overlay_tree(src: Path, dest: Path) -> None:
    """Lay `src` over `dest`: its files replace theirs, everything else stays."""
    with os.scandir(src) as entries:
        for entry in entries:
            target = dest / entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            _remove(target, keep_dir=is_dir)
            if is_dir:
                target.mkdir(exist_ok=True)
                overlay_tree(Path(entry.path), target)
            elif entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target, follow_symlinks=False)


def _remove(path: Path, keep_dir: bool) -> None:
    """Remove what is at `path` (a link itself, never its target); a real directory stays
    when `keep_dir`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
    elif not keep_dir:
        shutil.rmtree(path)
