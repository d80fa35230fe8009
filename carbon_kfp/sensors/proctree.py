"""CPU time and resident memory of a process and its descendants, in one cheap walk.

Linux: everything comes from procfs under ``proc_root``, a few small reads per process:

- the tree from the kernel's ``<pid>/task/<tid>/children`` lists (one per thread, since a child
  belongs to the thread that forked it; ``CONFIG_PROC_CHILDREN``, on in common distribution and
  cloud kernels). Without them, from the parent pid in every ``<pid>/stat`` on the host, as
  psutil does, which costs a read per process on the host instead of per process in the tree;
- per process one ``<pid>/stat``: utime + stime (its own CPU time), cutime + cstime (the CPU time
  of the children it has waited for, and of theirs) and rss.

Elsewhere (no procfs, e.g. macOS): psutil, imported only then.

Results are named tuples, as psutil's are: a walk builds one per process every sampling tick.

Consistency: a child's CPU time moves into its parent's cutime when the parent reaps it. A walk
lists the whole tree first, then reads ``stat`` parents before children; if a listed process has
vanished by the time it is read (or a thread vanished while its children were listed) it may
have been reaped between the two reads of the walk, so its time may be in neither or in both,
and the walk is repeated (up to :data:`WALK_ATTEMPTS` times). A walk in which nothing vanished
counts every process once: a child read alive was not yet reaped when its parent was read before
it, and a child not listed was reaped (into a cutime read after the listing) or born after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple, Protocol

WALK_ATTEMPTS = 3
"""Walks tried per answer before a walk in which a process vanished is used as it is."""

_VANISHED = (FileNotFoundError, ProcessLookupError)  # ENOENT before open, ESRCH after


class ProcStat(NamedTuple):
    """The figures this module needs from one ``/proc/<pid>/stat`` line.

    Attributes:
        ppid: parent process id.
        cpu_s: utime + stime, the process's own CPU time. Units: CPU-seconds.
        reaped_cpu_s: cutime + cstime, CPU time of the children it has waited for (theirs
            included). Units: CPU-seconds.
        rss_bytes: resident set size (the ``resident`` of ``statm``, what psutil calls rss).
            Units: bytes.
    """

    ppid: int
    cpu_s: float
    reaped_cpu_s: float
    rss_bytes: int


def parse_pid_stat(text: str, *, ticks_per_s: float, page_bytes: int) -> ProcStat:
    """Parse ``/proc/<pid>/stat``; ``ticks_per_s`` is ``USER_HZ``, ``page_bytes`` the page size.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from its
    last ``)``.

    Raises:
        ValueError: not a stat line (too few fields, or a non-numeric one).
    """
    _, paren, rest = text.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 22:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    # fields[k] is field k + 3 of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, rss 24
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(
        ppid=int(fields[1]),
        cpu_s=(utime + stime) / ticks_per_s,
        reaped_cpu_s=(cutime + cstime) / ticks_per_s,
        rss_bytes=int(fields[21]) * page_bytes,
    )


class TreeUsage(NamedTuple):
    """A process tree's totals at one instant.

    Attributes:
        cpu_s: own plus reaped CPU time of every process in the tree. Units: CPU-seconds.
        rss_bytes: sum of the resident set sizes (shared pages count once per process).
            Units: bytes.
        processes: how many processes were counted.
    """

    cpu_s: float
    rss_bytes: int
    processes: int


class ProcessTree(Protocol):
    """A process and its descendants; :meth:`usage` walks them."""

    def usage(self) -> TreeUsage:
        """The tree's totals now.

        Raises:
            ProcessLookupError: the root process is gone.
        """
        ...


def open_process_tree(pid: int, proc_root: Path = Path("/proc")) -> ProcessTree:
    """The tree rooted at ``pid``: from procfs when ``proc_root`` is one, else from psutil.

    Raises:
        ProcessLookupError: no process ``pid``.
    """
    if (proc_root / str(pid)).is_dir():
        return ProcfsTree(pid, proc_root)
    if (proc_root / "stat").exists():  # a procfs without that pid
        raise ProcessLookupError(f"{proc_root / str(pid)} does not exist")
    return PsutilTree(pid)


class ProcfsTree:
    """A process tree read from procfs (see the module docstring); not thread-safe."""

    def __init__(self, pid: int, proc_root: Path = Path("/proc")) -> None:
        self.pid = pid
        self._root = str(proc_root)
        self._ticks_per_s = clock_ticks_per_s()
        self._page_bytes = _sysconf("SC_PAGE_SIZE", 4096)
        self.lists_children = os.path.exists(f"{self._root}/{pid}/task/{pid}/children")

    def usage(self) -> TreeUsage:
        for _ in range(WALK_ATTEMPTS):
            pids, listed_all = self._list_tree()
            usage, read_all = self._read_stats(pids)
            if listed_all and read_all:
                break
        return usage

    def stat(self, pid: int) -> ProcStat:
        """One process's stat. Raises OSError (FileNotFoundError / ProcessLookupError: gone)."""
        text = _read_text(f"{self._root}/{pid}/stat")
        try:
            return parse_pid_stat(text, ticks_per_s=self._ticks_per_s, page_bytes=self._page_bytes)
        except ValueError as exc:
            raise OSError(f"{self._root}/{pid}/stat: {exc}") from None

    def _list_tree(self) -> tuple[list[int], bool]:
        """Pids of the tree, parents before children, and whether no process or thread vanished
        while it was listed."""
        children_of = self._children if self.lists_children else self._children_by_ppid()
        order: list[int] = []
        seen: set[int] = set()
        stack = [self.pid]
        complete = True
        while stack:
            pid = stack.pop()
            if pid in seen:  # a pid reused while we listed: never walk in a cycle
                continue
            seen.add(pid)
            try:
                children, listed_all = children_of(pid)
            except _VANISHED:
                if pid == self.pid:
                    raise ProcessLookupError(f"process {pid} is gone") from None
                complete = False
                continue
            complete = complete and listed_all
            order.append(pid)
            stack.extend(reversed(children))
        return order, complete

    def _children(self, pid: int) -> tuple[list[int], bool]:
        """Children of every thread of ``pid``, and whether no thread vanished meanwhile (the
        kernel hands a dead thread's children to a sibling thread, which may have been read).

        Raises:
            FileNotFoundError, ProcessLookupError: the process is gone.
        """
        task_dir = f"{self._root}/{pid}/task"
        children: dict[int, None] = {}
        listed_all = True
        for tid in os.listdir(task_dir):
            try:
                text = _read_text(f"{task_dir}/{tid}/children")
            except _VANISHED:
                listed_all = False
                continue
            children.update(dict.fromkeys(int(child) for child in text.split()))
        return list(children), listed_all

    def _children_by_ppid(self) -> Callable[[int], tuple[list[int], bool]]:
        """Children from one scan of every process's parent pid (kernels without children
        lists). A process gone before the scan is simply not listed."""
        by_parent: dict[int, list[int]] = {}
        for pid in _numeric_entries(self._root):
            try:
                by_parent.setdefault(self.stat(pid).ppid, []).append(pid)
            except OSError:  # gone, or not ours to read: not part of the tree we can see
                continue
        return lambda pid: (by_parent.get(pid, []), True)

    def _read_stats(self, pids: list[int]) -> tuple[TreeUsage, bool]:
        """Totals over ``pids`` (parents first), and whether every one of them could be read."""
        cpu_s = 0.0
        rss_bytes = counted = 0
        complete = True
        for pid in pids:
            try:
                stat = self.stat(pid)
            except _VANISHED:
                if pid == self.pid:
                    raise ProcessLookupError(f"process {pid} is gone") from None
                complete = False
                continue
            except OSError:
                if pid == self.pid:
                    raise
                continue  # unreadable but alive (another user's setuid child): not counted
            cpu_s += stat.cpu_s + stat.reaped_cpu_s
            rss_bytes += stat.rss_bytes
            counted += 1
        return TreeUsage(cpu_s, rss_bytes, counted), complete


class PsutilTree:
    """The same totals from psutil, for systems without procfs."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        try:
            self._process = psutil.Process(pid)
        except psutil.Error as exc:
            raise ProcessLookupError(f"no process with pid {pid} ({exc})") from None

    def usage(self) -> TreeUsage:
        import psutil

        try:
            processes = [self._process, *self._process.children(recursive=True)]
        except psutil.NoSuchProcess as exc:
            raise ProcessLookupError(f"process {self.pid} is gone") from exc
        except psutil.Error:
            processes = [self._process]
        cpu_s = 0.0
        rss_bytes = counted = 0
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss_bytes += process.memory_info().rss
            except psutil.NoSuchProcess:
                if process is self._process:
                    raise ProcessLookupError(f"process {self.pid} is gone") from None
                continue
            except psutil.Error:
                continue
            cpu_s += times.user + times.system
            cpu_s += getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
            counted += 1
        return TreeUsage(cpu_s, rss_bytes, counted)


def _read_text(path: str) -> str:
    """A small procfs file, whole (procfs files report size 0, so read until EOF)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _numeric_entries(root: str) -> Iterator[int]:
    for name in os.listdir(root):
        if name.isdigit():
            yield int(name)


def clock_ticks_per_s() -> int:
    """``USER_HZ``, the unit of CPU times in procfs (``SC_CLK_TCK``; 100 when unknown)."""
    return _sysconf("SC_CLK_TCK", 100)


def _sysconf(name: str, default: int) -> int:
    try:
        value = os.sysconf(name)
    except (AttributeError, ValueError, OSError):
        return default
    return value if value > 0 else default
