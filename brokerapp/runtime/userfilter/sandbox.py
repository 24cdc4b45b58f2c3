"""The sandbox of one user filter: a bubblewrap command line, rlimits, cgroups and usage.

Each filter process runs as

``bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session
--clearenv ... -- COMMAND``

started by the runner after it dropped to an unprivileged uid of its own (``uid_base + n``,
one per sandbox, so that ``RLIMIT_NPROC`` counts only that filter's processes). Inside:

- its own mount, PID, IPC, UTS, cgroup and network namespaces (no network interface but
  loopback, nothing to reach);
- read-only ``/usr`` (with ``/bin``, ``/lib*`` and ``/sbin`` as the usual symlinks or
  read-only binds), a few read-only ``/etc`` entries (``/etc/alternatives`` and the Java
  configuration, when present) and nothing else of the host: no ``/home``, ``/root``,
  ``/work`` or the broker's home, settings or secrets;
- the filter's code at ``/code`` and the Python SDK at ``/sdk``, both read-only copies made
  in a staging folder when the sandbox starts (so the filter sees a snapshot), owned by
  ``root:<sandbox gid>`` with no access for others;
- a private tmpfs ``/tmp`` of ``tmp_mb`` MiB, a fresh ``/proc`` and a minimal ``/dev``;
- an empty environment but ``PATH``, ``HOME=/tmp``, ``LANG`` and ``PYTHONPATH=/sdk:/code``.

Limits (``preexec``, applied to bwrap and inherited by the filter): CPU seconds
(``RLIMIT_CPU``, a backstop: the per-alert answer timeout stops a spinning filter first),
address space (``RLIMIT_AS``), open files (``RLIMIT_NOFILE``), processes (``RLIMIT_NPROC``)
and file size (``RLIMIT_FSIZE``). Where the cgroup v1 ``pids`` and ``cpu`` hierarchies are
writable, each sandbox also gets a ``pids.max`` and a CPU quota (``cpu.cfs_quota_us``), so a
spinning filter is throttled to its share and cannot starve its neighbours.

Usage (CPU time, peak RSS) is read from ``/proc`` for every process owned by the sandbox's
uid, which only that sandbox uses.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brokerapp.userfilter as sdk_package

__all__ = [
    "CgroupSet",
    "SandboxLimits",
    "SandboxPlan",
    "Usage",
    "allocate_uid",
    "bwrap_argv",
    "make_preexec",
    "python_plan",
    "read_usage",
    "stage",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one sandbox.

    Attributes
    ----------
    cpu_seconds : int
        ``RLIMIT_CPU`` per process (SIGXCPU then SIGKILL when reached).
    memory_mb : int
        ``RLIMIT_AS`` in MiB (allocations beyond fail: ``MemoryError`` in Python).
    open_files : int
        ``RLIMIT_NOFILE``.
    processes : int
        ``RLIMIT_NPROC`` for the sandbox's uid (threads count; bwrap itself takes 2), and
        ``pids.max`` of its cgroup where available.
    file_mb : int
        ``RLIMIT_FSIZE`` in MiB (largest file the filter may write in its ``/tmp``).
    tmp_mb : int
        Size of its private tmpfs ``/tmp`` in MiB (tmpfs pages are host memory).
    cpu_share : float
        CPU quota in cores (cgroup ``cpu``, where available; 0 for none).
    """

    cpu_seconds: int = 3600
    memory_mb: int = 512
    open_files: int = 64
    processes: int = 32
    file_mb: int = 16
    tmp_mb: int = 64
    cpu_share: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> SandboxLimits:
        """Return the default limits from the broker's settings (``userfilter_*`` fields)."""
        return cls(
            cpu_seconds=settings.userfilter_cpu_seconds,
            memory_mb=settings.userfilter_memory_mb,
            open_files=settings.userfilter_open_files,
            processes=settings.userfilter_processes,
            tmp_mb=settings.userfilter_tmp_mb,
            cpu_share=settings.userfilter_cpu_share,
        )


@dataclass(frozen=True)
class SandboxPlan:
    """Everything needed to start one sandboxed filter process.

    Attributes
    ----------
    command : tuple of str
        The command inside the sandbox, e.g. ``("/usr/bin/python3", "-m",
        "brokerapp.userfilter", "bright:bright")`` or ``("/usr/bin/java", "-cp", "/code",
        "Main")``.
    code_dir : Path
        The filter's code on the host (copied to ``/code``).
    limits : SandboxLimits
        Its limits.
    ro_binds : tuple of str
        Extra host paths bound read-only at the same place, if they exist.
    bwrap : str
        The bubblewrap executable.
    env : dict
        Extra environment variables for the filter (never the broker's settings).
    """

    command: tuple[str, ...]
    code_dir: Path
    limits: SandboxLimits = SandboxLimits()
    ro_binds: tuple[str, ...] = ("/etc/alternatives", "/etc/java-17-openjdk")
    bwrap: str = "bwrap"
    env: dict[str, str] = field(default_factory=dict)


def python_plan(
    code_dir: Path,
    entry_point: str,
    limits: SandboxLimits | None = None,
    python: str = "/usr/bin/python3",
    bwrap: str = "bwrap",
) -> SandboxPlan:
    """Return the plan of a Python SDK filter: ``python3 -m brokerapp.userfilter MODULE:ATTRIBUTE``.

    Parameters
    ----------
    code_dir : Path
        The folder holding the filter's module.
    entry_point : str
        ``MODULE:ATTRIBUTE`` inside it.
    limits : SandboxLimits, optional
        Its limits (default: :class:`SandboxLimits` defaults).
    python : str
        The interpreter inside the sandbox (under ``/usr``).
    bwrap : str
        The bubblewrap executable.

    Returns
    -------
    SandboxPlan
        The plan.
    """
    return SandboxPlan(
        command=(python, "-m", "brokerapp.userfilter", entry_point),
        code_dir=Path(code_dir),
        limits=limits or SandboxLimits(),
        bwrap=bwrap,
    )


def allocate_uid(base: int) -> int:
    """Return a uid no other sandbox of this process uses: ``base``, ``base + 1``, ...

    Parameters
    ----------
    base : int
        First uid of the range reserved for sandboxes (no account needs to exist).

    Returns
    -------
    int
        The uid (also used as gid).

    Raises
    ------
    ValueError
        If ``base`` is below 1000 (system accounts; never root).
    """
    if base < 1000:
        raise ValueError(f"sandbox uids start at 1000 or above, not {base}")
    with _uid_lock:
        return base + next(_uid_counter)


def _copy_readable(source: Path, target: Path, gid: int | None) -> None:
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        dirs_exist_ok=True,
    )
    for root, dirs, files in os.walk(target):
        _share(root, gid, True)
        for name in dirs:
            _share(os.path.join(root, name), gid, True)
        for name in files:
            path = os.path.join(root, name)
            _share(path, gid, bool(os.stat(path).st_mode & stat.S_IXUSR))


def _share(path: str | Path, gid: int | None, executable: bool) -> None:
    """Make ``path`` readable by the sandbox only: group ``gid`` (or everyone without one)."""
    if gid is not None:
        os.chown(path, 0, gid)
        os.chmod(path, 0o750 if executable else 0o640)
    else:
        os.chmod(path, 0o755 if executable else 0o644)


def stage(code_dir: Path, parent: Path | None = None, gid: int | None = None) -> Path:
    """Copy the filter's code and the SDK into a fresh staging folder for one sandbox.

    Parameters
    ----------
    code_dir : Path
        The filter's code.
    parent : Path, optional
        Where to make the staging folder (default: the system temporary folder).
    gid : int, optional
        The sandbox's gid. When the runner is root the copies belong to ``root:<gid>`` with
        no access for others (0750/0640), so no other sandbox's uid nor any local user can
        read them; without it (an unprivileged runner) they are readable by everyone.

    Returns
    -------
    Path
        The staging folder, holding ``code/`` and ``sdk/brokerapp/userfilter/``; the caller
        removes it (:func:`shutil.rmtree`) when the sandbox has ended.
    """
    if os.geteuid() != 0:
        gid = None
    root = Path(tempfile.mkdtemp(prefix="brokerapp-userfilter-", dir=parent))
    _copy_readable(Path(code_dir), root / "code", gid)
    sdk_source = Path(sdk_package.__file__).parent
    package = root / "sdk" / "brokerapp"
    _copy_readable(sdk_source, package / "userfilter", gid)
    (package / "__init__.py").write_text('"""The user-filter SDK only (sandbox copy)."""\n')
    for path in (root, root / "sdk", package):
        _share(path, gid, True)
    _share(package / "__init__.py", gid, False)
    return root


def _root_dir_args(name: str) -> list[str]:
    host = Path("/") / name
    if host.is_symlink():
        return ["--symlink", os.readlink(host), str(host)]
    if host.is_dir():
        return ["--ro-bind", str(host), str(host)]
    return []


def bwrap_argv(plan: SandboxPlan, staged: Path) -> list[str]:
    """Return the bubblewrap command line for ``plan`` with its code staged at ``staged``.

    Parameters
    ----------
    plan : SandboxPlan
        The filter's plan.
    staged : Path
        The folder made by :func:`stage`.

    Returns
    -------
    list of str
        ``argv`` to execute (after :func:`make_preexec` dropped privileges).
    """
    argv = [
        plan.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "PYTHONPATH", "/sdk:/code",
        "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
    ]  # fmt: skip
    for key, value in sorted(plan.env.items()):
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        argv += _root_dir_args(name)
    for path in plan.ro_binds:
        argv += ["--ro-bind-try", path, path]
    argv += [
        "--ro-bind", str(staged / "code"), "/code",
        "--ro-bind", str(staged / "sdk"), "/sdk",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(plan.limits.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
        "--chdir", "/code",
        "--",
        *plan.command,
    ]  # fmt: skip
    return argv


class CgroupSet:
    """Per-sandbox cgroup v1 ``pids`` and ``cpu`` groups, where the hierarchies are writable.

    Each group is made under the runner's own group of that hierarchy, in a
    ``brokerapp-userfilter`` folder. Hierarchies that are absent or not writable are skipped
    (:attr:`controllers` lists those in use).

    Parameters
    ----------
    name : str
        Unique name of the sandbox (folder name).
    limits : SandboxLimits
        ``processes`` gives ``pids.max``; ``cpu_share`` the CFS quota.
    root : Path
        Where the hierarchies are mounted.
    """

    def __init__(self, name: str, limits: SandboxLimits, root: Path = Path("/sys/fs/cgroup")):
        self.paths: dict[str, Path] = {}
        for controller in ("pids", "cpu"):
            own = _own_cgroup(controller)
            if own is None:
                continue
            path = root / controller / own.lstrip("/") / "brokerapp-userfilter" / name
            try:
                path.mkdir(parents=True, exist_ok=True)
                if controller == "pids":
                    (path / "pids.max").write_text(str(limits.processes))
                elif limits.cpu_share > 0:
                    period = int((path / "cpu.cfs_period_us").read_text())
                    quota = max(1000, int(period * limits.cpu_share))
                    (path / "cpu.cfs_quota_us").write_text(str(quota))
            except OSError:
                continue
            self.paths[controller] = path

    @property
    def controllers(self) -> list[str]:
        """The hierarchies in use."""
        return sorted(self.paths)

    def procs_files(self) -> list[str]:
        """Return the ``cgroup.procs`` files a new process writes its pid to (in its preexec)."""
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def pids_peak(self) -> int | None:
        """Most processes seen at once in the ``pids`` group (None without it)."""
        path = self.paths.get("pids")
        if path is None:
            return None
        try:
            return int((path / "pids.peak").read_text())
        except (OSError, ValueError):
            return None

    def throttled_ms(self) -> float | None:
        """Time the ``cpu`` group was throttled by its quota, in ms (None without it)."""
        path = self.paths.get("cpu")
        if path is None:
            return None
        try:
            for line in (path / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "throttled_time":
                    return int(value) / 1e6
        except (OSError, ValueError):
            return None
        return None

    def remove(self) -> None:
        """Remove the groups (after every process in them has ended)."""
        for path in self.paths.values():
            try:
                path.rmdir()
            except OSError:
                pass


def _own_cgroup(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def make_preexec(
    uid: int, limits: SandboxLimits, cgroup_procs: Sequence[str] = ()
) -> Callable[[], None]:
    """Return the function run in the child between fork and exec of bwrap.

    It joins the sandbox's cgroups, sets the rlimits, then drops to ``uid`` (and gid ``uid``,
    no supplementary groups) for good.

    Parameters
    ----------
    uid : int
        The sandbox's uid (from :func:`allocate_uid`).
    limits : SandboxLimits
        The limits.
    cgroup_procs : sequence of str
        ``cgroup.procs`` files to join (:meth:`CgroupSet.procs_files`).

    Returns
    -------
    callable
        For :func:`asyncio.create_subprocess_exec` (``preexec_fn``).
    """
    mib = 1024 * 1024
    settings = [
        (resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1)),
        (resource.RLIMIT_AS, (limits.memory_mb * mib, limits.memory_mb * mib)),
        (resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files)),
        (resource.RLIMIT_NPROC, (limits.processes, limits.processes)),
        (resource.RLIMIT_FSIZE, (limits.file_mb * mib, limits.file_mb * mib)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    procs = list(cgroup_procs)

    def preexec() -> None:
        for path in procs:
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
        for which, value in settings:
            resource.setrlimit(which, value)
        if os.getuid() == 0:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)

    return preexec


@dataclass(frozen=True)
class Usage:
    """Resource use of one sandbox's processes, from ``/proc``.

    Attributes
    ----------
    cpu_ms : float
        User+system CPU of its live processes and of the children they reaped.
    rss_peak_kb : int
        Largest peak resident set (``VmHWM``) of any of its processes.
    processes : int
        How many processes it has now.
    """

    cpu_ms: float
    rss_peak_kb: int
    processes: int


def read_usage(uid: int, proc: Path = Path("/proc")) -> Usage:
    """Sum the CPU time and find the peak RSS of every process whose real uid is ``uid``.

    Parameters
    ----------
    uid : int
        The sandbox's uid.
    proc : Path
        The proc file system.

    Returns
    -------
    Usage
        The totals (zeros when no process is left).
    """
    ticks = 0
    peak = 0
    count = 0
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fields = (proc / entry.name / "stat").read_text().rpartition(")")[2].split()
            status = (proc / entry.name / "status").read_text()
        except (OSError, ValueError):
            continue
        # Fields after the command: state(0) ... utime(11) stime(12) cutime(13) cstime(14).
        ticks += sum(int(value) for value in fields[11:15])
        count += 1
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
                break
    return Usage(cpu_ms=ticks * 1000.0 / _CLOCK_TICKS, rss_peak_kb=peak, processes=count)
