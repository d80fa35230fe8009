"""Process-tree walks: ``/proc/<pid>/stat`` parsing, fake proc trees, and real process trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon_kfp.sensors import proctree
from carbon_kfp.sensors.proctree import (
    ProcfsTree,
    ProcStat,
    PsutilTree,
    TreeUsage,
    open_process_tree,
    parse_pid_stat,
)

HZ = proctree.clock_ticks_per_s()
PAGE = os.sysconf("SC_PAGE_SIZE")


def stat_line(
    pid: int, ppid: int, ticks: tuple[int, int, int, int], rss_pages: int, comm: str = "python"
) -> str:
    """A ``/proc/<pid>/stat`` line as the kernel writes it (52 fields)."""
    utime, stime, cutime, cstime = ticks
    fields = [str(pid), f"({comm})", "S", str(ppid), *["0"] * 9]  # fields 1-13
    fields += [str(utime), str(stime), str(cutime), str(cstime)]  # 14-17
    fields += ["20", "0", "1", "0", "100", "1000"]  # 18-23: priority ... vsize
    fields += [str(rss_pages)] + ["0"] * 28  # 24-52
    return " ".join(fields) + "\n"


# --------------------------------------------------------------------------- parser


@given(
    comm=st.text(st.characters(blacklist_characters="\x00"), max_size=20),
    ppid=st.integers(0, 2**22),
    ticks=st.tuples(*[st.integers(0, 10**9)] * 4),
    rss_pages=st.integers(0, 10**8),
)
def test_stat_fields_are_counted_after_the_last_parenthesis(
    comm: str, ppid: int, ticks: tuple[int, int, int, int], rss_pages: int
) -> None:
    line = stat_line(4242, ppid, ticks, rss_pages, comm=comm)
    stat = parse_pid_stat(line, ticks_per_s=100, page_bytes=4096)
    utime, stime, cutime, cstime = ticks
    assert stat == ProcStat(ppid, (utime + stime) / 100, (cutime + cstime) / 100, rss_pages * 4096)


@pytest.mark.parametrize(
    "text", ["", "12 (x) S 1 2 3", "12 x S 1 " + "0 " * 30, "1 (a) S x" + " 0" * 30]
)
def test_what_is_not_a_stat_line_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_pid_stat(text, ticks_per_s=100, page_bytes=4096)


# --------------------------------------------------------------------------- fake proc trees


@dataclass
class FakeProcess:
    """One process of a fake procfs. ``threads``: tid -> children forked by that thread."""

    pid: int
    ppid: int
    ticks: tuple[int, int, int, int] = (0, 0, 0, 0)  # utime, stime, cutime, cstime
    rss_pages: int = 0
    threads: dict[int, list[int]] = field(default_factory=dict)


class FakeProc:
    """A procfs on disk: ``stat``, ``<pid>/stat`` and ``<pid>/task/<tid>/children`` files."""

    def __init__(self, root: Path, processes: list[FakeProcess], *, children_lists: bool = True):
        self.root = root
        self.children_lists = children_lists
        (root / "stat").parent.mkdir(parents=True, exist_ok=True)
        (root / "stat").write_text("cpu  0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0\n")
        for process in processes:
            self.write(process)

    def write(self, process: FakeProcess) -> None:
        directory = self.root / str(process.pid)
        (directory / "task").mkdir(parents=True, exist_ok=True)
        (directory / "stat").write_text(
            stat_line(process.pid, process.ppid, process.ticks, process.rss_pages)
        )
        threads = process.threads or {process.pid: []}
        for tid, children in threads.items():
            (directory / "task" / str(tid)).mkdir(exist_ok=True)
            if self.children_lists:
                text = "".join(f"{child} " for child in children)
                (directory / "task" / str(tid) / "children").write_text(text)

    def remove(self, pid: int) -> None:
        shutil.rmtree(self.root / str(pid))


def tree_of_three() -> list[FakeProcess]:
    """Root 100 (threads 100 and 101); 101 forked 200, which forked 300; 400 is someone else's."""
    return [
        FakeProcess(100, 1, (100, 50, 30, 20), 1000, {100: [], 101: [200]}),
        FakeProcess(200, 100, (200, 0, 0, 0), 2000, {200: [300]}),
        FakeProcess(300, 200, (0, 100, 0, 0), 3000),
        FakeProcess(400, 1, (10_000, 0, 0, 0), 99_999),
    ]


@pytest.mark.parametrize("children_lists", [True, False])
def test_root_children_and_grandchildren_are_summed(tmp_path: Path, children_lists: bool) -> None:
    FakeProc(tmp_path, tree_of_three(), children_lists=children_lists)
    tree = ProcfsTree(100, tmp_path)
    assert tree.lists_children is children_lists
    # own + reaped of 100, 200, 300; not 400
    assert tree.usage() == TreeUsage((200 + 200 + 100) / HZ, (1000 + 2000 + 3000) * PAGE, 3)


@st.composite
def forests(draw: st.DrawFn) -> list[FakeProcess]:
    """Processes 1..n; each one's parent is an earlier one or 0 (outside), forked by one of the
    parent's threads."""
    n = draw(st.integers(1, 12))
    processes = [
        FakeProcess(pid, 0, draw(st.tuples(*[st.integers(0, 99)] * 4)), pid)
        for pid in range(1, n + 1)
    ]
    for process in processes:
        process.threads = {process.pid: [], process.pid + 1000: []}
    for process in processes[1:]:
        parent = draw(st.integers(0, process.pid - 1))
        process.ppid = parent
        if parent:
            tid = draw(st.sampled_from(sorted(processes[parent - 1].threads)))
            processes[parent - 1].threads[tid].append(process.pid)
    return processes


def descendants(processes: list[FakeProcess], root: int) -> set[int]:
    found = {root}
    for process in processes:  # parents come before children
        if process.ppid in found:
            found.add(process.pid)
    return found


@settings(max_examples=50, deadline=None)
@given(processes=forests(), root_index=st.integers(0, 11), children_lists=st.booleans())
def test_any_tree_is_the_root_and_its_descendants(
    tmp_path_factory: pytest.TempPathFactory,
    processes: list[FakeProcess],
    root_index: int,
    children_lists: bool,
) -> None:
    root = tmp_path_factory.mktemp("proc")
    FakeProc(root, processes, children_lists=children_lists)
    root_pid = processes[root_index % len(processes)].pid
    members = [p for p in processes if p.pid in descendants(processes, root_pid)]
    expected = TreeUsage(
        sum(sum(p.ticks) for p in members) / HZ,
        sum(p.rss_pages for p in members) * PAGE,
        len(members),
    )
    assert ProcfsTree(root_pid, root).usage() == pytest.approx(expected)


def reap_when_first_read(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeProc,
    suffix: str,
    parent: FakeProcess,
    child: FakeProcess,
) -> list[str]:
    """Make ``parent`` reap ``child`` (the kernel's order: the child leaves the tree and its times
    join the parent's cutime/cstime) just before the walk first reads a path ending in ``suffix``.
    Returns the paths read, in order."""
    reads: list[str] = []
    real_read = proctree._read_text

    def read(path: str) -> str:
        if path.endswith(suffix) and not any(p.endswith(suffix) for p in reads):
            utime, stime, cutime, cstime = parent.ticks
            parent.ticks = (utime, stime, cutime + sum(child.ticks), cstime)
            for children in parent.threads.values():
                if child.pid in children:
                    children.remove(child.pid)
            fake.remove(child.pid)
            fake.write(parent)
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(proctree, "_read_text", read)
    return reads


@pytest.mark.parametrize(
    "when",
    [
        "/100/stat",  # after the tree was listed, before the parent's stat: child listed, gone
        "/200/stat",  # after the parent's stat, before the child's: in neither on this walk
    ],
)
def test_a_child_reaped_during_a_walk_is_counted_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    processes = tree_of_three()
    fake = FakeProc(tmp_path, processes)
    tree = ProcfsTree(100, tmp_path)
    before = tree.usage()
    reads = reap_when_first_read(monkeypatch, fake, when, processes[0], processes[1])
    after = tree.usage()
    # 200's time moved into 100's cutime; its child 300 left the tree unreaped (re-parented to
    # init), so 300's time is all that is gone: nothing lost twice or counted twice.
    assert after.cpu_s == pytest.approx(before.cpu_s - sum(processes[2].ticks) / HZ)
    assert after.processes == 1
    assert next(path for path in reads if path.endswith("/stat")) == f"{tmp_path}/100/stat"


def test_a_thread_vanishing_while_listed_repeats_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = tree_of_three()
    FakeProc(tmp_path, processes)
    tree = ProcfsTree(100, tmp_path)
    real_read = proctree._read_text
    vanished: list[str] = []

    def read(path: str) -> str:
        if path.endswith("/task/101/children") and not vanished:
            vanished.append(path)
            raise FileNotFoundError(path)  # the thread exited between listdir and open
        return real_read(path)

    monkeypatch.setattr(proctree, "_read_text", read)
    assert tree.usage().processes == 3  # the second walk saw the thread


def test_a_root_that_is_gone_raises_process_lookup_error(tmp_path: Path) -> None:
    fake = FakeProc(tmp_path, tree_of_three())
    tree = open_process_tree(100, tmp_path)
    fake.remove(100)
    with pytest.raises(ProcessLookupError):
        tree.usage()


def test_a_missing_pid_in_a_procfs_is_a_lookup_error(tmp_path: Path) -> None:
    FakeProc(tmp_path, tree_of_three())
    with pytest.raises(ProcessLookupError):
        open_process_tree(12345, tmp_path)


def test_without_a_procfs_psutil_answers(tmp_path: Path) -> None:
    assert isinstance(open_process_tree(os.getpid(), tmp_path), PsutilTree)


# --------------------------------------------------------------------------- real trees

GRANDPARENT = """
import subprocess, sys
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(grandchild.pid, flush=True)
grandchild.wait()
sys.stdin.read()
"""
BUSY_THEN_WAIT = (
    "import sys, time\n"
    "t = time.process_time()\n"
    "while time.process_time() - t < {s}: pass\n"
    "print('done', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def child_and_grandchild() -> Iterator[subprocess.Popen[str]]:
    """A child that starts a grandchild; both wait for EOF on the child's (inherited) stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", GRANDPARENT, "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    child.grandchild_pid = int(child.stdout.readline())  # type: ignore[attr-defined]
    yield child
    assert child.stdin is not None
    child.stdin.close()  # both read EOF: the grandchild exits, the child reaps it and exits
    child.wait(timeout=30)


def test_the_walk_finds_the_same_processes_as_psutil(
    child_and_grandchild: subprocess.Popen[str],
) -> None:
    tree = ProcfsTree(os.getpid())
    assert tree.lists_children, "this kernel has no /proc/<pid>/task/<tid>/children"
    me = psutil.Process()
    expected = {me.pid, *(p.pid for p in me.children(recursive=True))}
    assert {child_and_grandchild.pid, child_and_grandchild.grandchild_pid} <= expected  # type: ignore[attr-defined]
    assert tree.usage().processes == len(expected)
    assert ProcfsTree(child_and_grandchild.pid).usage().processes == 2
    psutil_usage, procfs_usage = PsutilTree(os.getpid()).usage(), tree.usage()
    assert psutil_usage.processes == procfs_usage.processes
    assert procfs_usage.rss_bytes == pytest.approx(psutil_usage.rss_bytes, rel=0.1)


def test_a_grandchilds_cpu_time_is_kept_once_across_both_exits() -> None:
    """The grandchild's time is live, then in the child's cutime, then in ours: counted once."""
    from carbon_kfp.sensors.scope import ProcessScope

    busy_s = 0.5
    scope = ProcessScope(os.getpid(), host_cpus=1)
    before = scope.cpu_time_s()
    child = subprocess.Popen(
        [sys.executable, "-c", GRANDPARENT, BUSY_THEN_WAIT.format(s=busy_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    child.stdout.readline()  # the grandchild's pid
    readings = [scope.cpu_time_s()]
    assert child.stdout.readline() == "done\n"  # busy part over; grandchild alive
    readings.append(scope.cpu_time_s())
    child.stdin.close()  # grandchild exits, child reaps it (cutime), then exits
    while child.poll() is None:
        time.sleep(0.01)
        readings.append(scope.cpu_time_s())
    readings.append(scope.cpu_time_s())  # child reaped by us: everything in our cutime
    assert readings == sorted(readings)
    used = readings[-1] - before
    assert busy_s <= used < busy_s + 0.4  # + two interpreter start-ups; twice would be >= 1.0


# --------------------------------------------------------------------------- the process scope


def test_the_process_scope_reads_only_its_proc_root(tmp_path: Path) -> None:
    from carbon_kfp.sensors.scope import BYTES_PER_GIB, ProcessScope, resolve_scope

    FakeProc(tmp_path, tree_of_three())
    scope = resolve_scope("process", sysfs_root=tmp_path, proc_root=tmp_path, pid=100)
    assert isinstance(scope, ProcessScope) and scope.host_cpus == 1
    assert scope.cpu_time_s() == pytest.approx(500 / HZ)
    assert scope.memory_used_gib() == pytest.approx(6000 * PAGE / BYTES_PER_GIB)
