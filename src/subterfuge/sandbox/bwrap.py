"""The default backend: each episode in its own bubblewrap namespaces.

Layout on the host: `<base>/ep-XXXX/fs/<top>` holds the episode's files, and each
`<top>` (`/root` always, plus `/rl_environment`, `/home`, ...) is bind-mounted
read-write; the system directories are read-only, `/tmp` is a private tmpfs,
there is no network (only loopback) and the agent is uid 0 of its own user
namespace. When the harness is root, each sandbox runs under its own host uid
from a pool, because the kernel exempts host root from RLIMIT_NPROC; the limit
itself (`ulimit -u`, counted per user namespace on Linux >= 5.14) then makes a
fork bomb cost only its own episode.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from subterfuge.envs.base import ProgramResult
from subterfuge.sandbox.base import Limits, SandboxError
from subterfuge.sandbox.core import ShellSandbox
from subterfuge.sandbox.grader import ZygoteGrader, pin_namespaces
from subterfuge.sandbox.procs import children_map, descendants, rmtree, wait_gone
from subterfuge.sandbox.uids import UidPool, user_processes
from subterfuge.sandbox.workspace import materialize, top_levels

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
SHIM_DIR = "/.subterfuge/bin"
"""Where `python`/`python3` links to the chosen interpreter live, first on PATH."""
PYTHON_MOUNT = "/.subterfuge/python"
"""Where the harness's interpreter is mounted when no interpreter under /usr exists."""
PATH = f"{SHIM_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TMP_BYTES = 64 << 20


@cache
def system_args() -> tuple[str, ...]:
    """Read-only views of the host's system directories (links kept as links)."""
    args: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return tuple(args)


@cache
def _python() -> tuple[str, tuple[str, ...]]:
    """(interpreter path inside, extra bwrap args): prefer one visible under /usr."""
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for cand in (f"/usr/bin/{ver}", "/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(cand)
        if os.path.isfile(real) and real.startswith("/usr/") and os.access(real, os.X_OK):
            return real, ()
    base = os.path.realpath(sys.base_prefix)
    extra = ("--ro-bind", base, PYTHON_MOUNT, "--setenv", "LD_LIBRARY_PATH", f"{PYTHON_MOUNT}/lib")
    return f"{PYTHON_MOUNT}/bin/{ver}", extra


def _zygote_python() -> tuple[str, tuple[str, str] | None]:
    """The host path of the sandbox's interpreter, and how its stdlib path maps inside."""
    python, extra = _python()
    if not extra:
        return python, None
    base = os.path.realpath(sys.base_prefix)
    return python.replace(PYTHON_MOUNT, base, 1), (base, PYTHON_MOUNT)


@cache
def tmpfs_size_supported(bwrap: str) -> bool:
    import subprocess

    res = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False)
    return "--size" in res.stdout + res.stderr


def kernel_counts_per_userns() -> bool:
    """Linux >= 5.14 counts RLIMIT_NPROC per user namespace (ucounts)."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


def namespace_args(bwrap: str) -> list[str]:
    """bwrap with every namespace, uid 0 of its own user namespace, no capabilities,
    and the host's system directories read-only: what every sandbox starts from."""
    args = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
    args += ["--uid", "0", "--gid", "0", "--cap-drop", "ALL", "--die-with-parent"]
    args += ["--new-session", "--hostname", "sandbox", *system_args()]
    return [*args, "--dev", "/dev", "--proc", "/proc"]


def setpriv_argv(setpriv: str | None, uid: int | None) -> list[str]:
    """The prefix that runs a command as pool uid `uid` (nothing without one).

    `setpriv`, not subprocess's user=/group=: those force a full fork() of the
    harness (several ms each) instead of vfork().
    """
    if uid is None or setpriv is None:
        return []
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def process_limit(limits: Limits, pooled: bool) -> int:
    """`ulimit -u` for a sandbox: its own count under a pool uid or on kernels that
    count per user namespace; otherwise on top of what the uid already runs."""
    if pooled or kernel_counts_per_userns():
        return limits.processes
    return user_processes(os.getuid()) + limits.processes  # best effort, see docs


def prepare_base_dir(base_dir: Path) -> None:
    """Create the base dir, refusing one someone else owns (or a planted link)."""
    with contextlib.suppress(FileExistsError):
        base_dir.mkdir(mode=0o711, parents=True)
    st = os.lstat(base_dir)
    if not os.path.isdir(base_dir) or os.path.islink(base_dir):
        raise SandboxError(f"{base_dir} is not a directory")
    if st.st_uid != os.geteuid():
        raise SandboxError(f"{base_dir} is owned by uid {st.st_uid}, not by us")
    os.chmod(base_dir, 0o711)  # pool uids must traverse it, not list it


def default_base_dir() -> Path:
    """Under /dev/shm when usable (tmpfs: episode files never touch a disk)."""
    shm = Path("/dev/shm")
    root = shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    return Path(root or tempfile.gettempdir()) / f"subterfuge-{os.geteuid()}"


_POOL = UidPool()


class BwrapSandbox(ShellSandbox):
    """The shell runs under bwrap; grading runs in the backend's zygote (see `grade`)."""

    def __init__(self, backend: BwrapBackend, episode: Path, tops: list[str], limits: Limits):
        super().__init__(limits)
        self._backend = backend
        self._episode = episode
        self._tops = tops
        self._uid: int | None = None
        self._info = -1
        self.python = _python()[0]

    async def grade(self, programs: Mapping[str, str]) -> dict[str, ProgramResult]:
        """Pin the sandbox's namespaces, kill every agent process, grade in the zygote."""
        if self._closed:
            raise SandboxError("sandbox is closed")
        if not programs:
            await self._stop_shell()
            return {}
        init = self._sandbox_pid()
        namespaces = pin_namespaces(init)
        try:
            init_fd = os.pidfd_open(init)
        except OSError:
            init_fd = -1  # already gone, and with it every process of the namespace
        try:
            await self._stop_shell()  # bwrap dies, and --die-with-parent takes pid 1 along
            if init_fd >= 0:  # pid 1 exits only once every process in its namespace has
                fd, init_fd = init_fd, -1
                await wait_gone(fd)
        except BaseException:
            for fd in [*namespaces, init_fd]:
                if fd >= 0:
                    os.close(fd)
            raise
        return await self._backend.grader.grade(namespaces, programs, self.limits)

    def _sandbox_pid(self) -> int:
        """Host pid of the shell sandbox's first process, as bwrap reported it."""
        try:
            info = json.loads(os.read(self._info, 1 << 16) or b"{}")
            return int(info["child-pid"])
        except (OSError, ValueError, KeyError) as exc:
            raise SandboxError(f"bwrap did not report its sandbox pid: {exc}") from exc
        finally:
            os.close(self._info)
            self._info = -1

    def _argv(self, argv: list[str], *, info_fd: int) -> list[str]:
        fs = self._episode / "fs"
        args = namespace_args(self._backend.bwrap)
        if "tmp" not in self._tops:
            args += ["--size", str(TMP_BYTES)] if self._backend.tmpfs_size else []
            args += ["--tmpfs", "/tmp"]
        for top in self._tops:
            args += ["--bind", str(fs / top), "/" + top]
        python, extra = _python()
        args += [*extra, "--dir", SHIM_DIR]
        args += [
            "--symlink",
            python,
            f"{SHIM_DIR}/python3",
            "--symlink",
            python,
            f"{SHIM_DIR}/python",
        ]
        args += ["--remount-ro", "/", "--chdir", "/root", "--clearenv"]
        args += ["--setenv", "HOME", "/root", "--setenv", "PATH", PATH]
        args += ["--setenv", "LANG", "C.UTF-8", "--setenv", "TERM", "dumb"]
        args += ["--info-fd", str(info_fd)]
        return [*args, "--", *argv]

    async def _spawn(self, argv: list[str]) -> asyncio.subprocess.Process:
        # bwrap reports its sandbox's first pid here: grading pins its namespaces.
        info_r, info_w = os.pipe()
        if self._info >= 0:
            os.close(self._info)
        self._info = info_r
        ids = setpriv_argv(self._backend.setpriv, self._uid)
        try:
            return await asyncio.create_subprocess_exec(
                *ids,
                *self._argv(argv, info_fd=info_w),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={},
                pass_fds=(info_w,),
            )
        except OSError as exc:
            raise SandboxError(f"could not start bwrap: {exc}") from exc
        finally:
            os.close(info_w)

    def _kill_tree(self, proc: asyncio.subprocess.Process) -> None:
        # SIGKILL to bwrap; --die-with-parent takes its pid 1 and so the whole namespace
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    def _command_pids(self, proc: asyncio.subprocess.Process) -> list[int]:
        children = children_map()
        pids: list[int] = []
        for init in children.get(proc.pid, []):
            for shell in children.get(init, []):
                pids += descendants(shell, children)
        return pids

    def _host_root(self) -> str:
        return str(self._episode / "fs")

    def _process_limit(self) -> int:
        return process_limit(self.limits, pooled=self._uid is not None)

    async def _remove(self) -> None:
        if self._info >= 0:
            os.close(self._info)
            self._info = -1
        try:
            await asyncio.to_thread(rmtree, self._episode)
        finally:
            if self._uid is not None:
                _POOL.release(self._uid)
                self._uid = None


class BwrapBackend:
    """Creates bubblewrap sandboxes (see the module docstring for the layout)."""

    name = "bwrap"

    def __init__(self, base_dir: str | Path | None = None, bwrap: str | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxError("bwrap not found; install it with: apt-get install bubblewrap")
        self.bwrap = found
        self.base_dir = Path(base_dir) if base_dir is not None else default_base_dir()
        self.tmpfs_size = tmpfs_size_supported(found)
        self.setpriv = shutil.which("setpriv")
        self.grader = ZygoteGrader(*_zygote_python())
        self._base_ready = False

    async def create(
        self, dirs: Sequence[str], files: Mapping[str, str], limits: Limits
    ) -> BwrapSandbox:
        tops = top_levels(dirs, files, reserved=(*SYSTEM_DIRS, "/proc", "/dev", "/sys"))
        if not self._base_ready:
            prepare_base_dir(self.base_dir)
            self._base_ready = True
        episode = Path(tempfile.mkdtemp(prefix="ep-", dir=self.base_dir))
        sandbox = BwrapSandbox(self, episode, tops, limits)
        try:
            uid = _POOL.acquire() if os.geteuid() == 0 and self.setpriv else None
            sandbox._uid = uid
            materialize(episode / "fs", tops, dirs, files, owner=uid)
            if uid is not None:
                os.chown(episode, uid, uid)
            await sandbox.start_shell()
        except BaseException:
            await sandbox.close()
            raise
        return sandbox
