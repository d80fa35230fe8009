"""Who measures the node: exactly one owner per node in a multi-process run.

A node's GPUs (and its RAPL counters) are shared by every rank on it, so if each of torchrun's
eight workers measured them the node would be counted eight times. :func:`elect_node_owner` picks
one owner per node; the tracker measures devices only there, and every other rank records only its
own process's CPU (``GpuSensor(measure=False)``, the CPU sensor in process scope) and says so in
its record (``node_rank``, ``node_owner``). Totals are then sums over records, never
``world_size x`` one node (DESIGN §2).

The election, first rule that applies:

1. A launcher's local rank: ``LOCAL_RANK`` (torchrun, DeepSpeed, Accelerate), ``SLURM_LOCALID``
   (srun), ``OMPI_COMM_WORLD_LOCAL_RANK`` (Open MPI), ``MPI_LOCALRANKID`` (MPICH / Intel MPI).
   Local rank 0 owns. ``LOCAL_RANK`` is checked first because torchrun started by a one-task-per-
   node ``srun`` leaves ``SLURM_LOCALID=0`` in every worker.
2. ``RANK`` with ``LOCAL_WORLD_SIZE``: local rank ``RANK % LOCAL_WORLD_SIZE`` (ranks packed per
   node, as torchrun and most launchers assign them).
3. Otherwise a node-local lock: ``fcntl.flock`` on ``carbon-kfp-node-owner-<uid>-<job>.lock`` in
   ``lock_dir`` (default ``tempfile.gettempdir()``); ``<job>`` is the first of
   ``TORCHELASTIC_RUN_ID``, ``SLURM_JOB_ID``, ``PBS_JOBID``, ``LSB_JOBID``, ``CLOUD_ML_JOB_ID``
   that is set, else ``default``. The first process to take the lock owns and holds it until
   :meth:`NodeRole.release` (or the ``with`` block ends, or the process exits: the kernel drops a
   flock with its last descriptor, so a crashed owner never leaves a stale lock). Processes that
   started as one pod or container share its ``/tmp``; separate pods do not, and each owns its own
   devices, which is right. Ownership is per process: further elections in the owning process
   (sequential or nested trackers) own too and share the lock, which is unlocked when the last of
   them is released. A forked child is another process and does not inherit ownership; it does
   inherit the descriptor, so the file stays locked until such children exit as well.

Node rank comes from ``GROUP_RANK`` (torchrun), ``NODE_RANK`` (Lightning), ``SLURM_NODEID``, else
``RANK // LOCAL_WORLD_SIZE``; world size from ``WORLD_SIZE``, ``SLURM_NTASKS``,
``OMPI_COMM_WORLD_SIZE`` or ``PMI_SIZE``. Either is ``None`` when nothing says.

Caveat: the owner measures the devices *it* sees. A launcher that gives each rank a disjoint
``CUDA_VISIBLE_DEVICES`` (e.g. ``srun --gpus-per-task=1``) hides the other ranks' GPUs from it.

carbon-kfp needs a POSIX system (Linux, macOS): this module and :mod:`carbon_kfp.outputs` (atomic
CSV appends) use ``fcntl`` unconditionally, so there is no fallback for platforms without it.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from carbon_kfp.errors import ConfigError, warn_once

LOCAL_RANK_VARS: tuple[str, ...] = (
    "LOCAL_RANK",
    "SLURM_LOCALID",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "MPI_LOCALRANKID",
)
NODE_RANK_VARS: tuple[str, ...] = ("GROUP_RANK", "NODE_RANK", "SLURM_NODEID")
WORLD_SIZE_VARS: tuple[str, ...] = (
    "WORLD_SIZE",
    "SLURM_NTASKS",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
)
JOB_ID_VARS: tuple[str, ...] = (
    "TORCHELASTIC_RUN_ID",
    "SLURM_JOB_ID",
    "PBS_JOBID",
    "LSB_JOBID",
    "CLOUD_ML_JOB_ID",
)


class _OwnerLock:
    """This process's open, flock-ed lock file, shared by every role elected through it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd: int | None = fd
        self.pid = os.getpid()
        self.claims = 0

    def drop_claim(self) -> None:
        """One role lets go; the last one unlocks and closes the file."""
        with _held_guard:  # unlock inside the guard so no election sees a half-released lock
            self.claims -= 1
            fd = self.fd
            if self.claims > 0 or fd is None:
                return
            if _held.get(self.path) is self:
                del _held[self.path]
            self.fd = None
            try:
                if os.getpid() == self.pid:  # a forked child must not unlock its parent's lock
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class _Claim:
    """One role's hold on an :class:`_OwnerLock`; ``release`` is idempotent."""

    def __init__(self, lock: _OwnerLock) -> None:  # caller holds _held_guard
        self.lock = lock
        self.active = True
        lock.claims += 1

    def release(self) -> None:
        if self.active:
            self.active = False
            self.lock.drop_claim()


# Locks this process holds, by path: a second tracker in the same process (sequential runs,
# nested tasks) is the same process and owns too, instead of losing the election to itself.
_held: dict[Path, _OwnerLock] = {}
# Reentrant: the tracker's SIGTERM handler releases its role (drop_claim) on the main thread,
# which may be inside an election holding this guard; a plain Lock would deadlock there.
_held_guard = threading.RLock()


@dataclass(frozen=True)
class NodeRole:
    """This process's place on its node, and whether it measures the node's devices.

    Attributes:
        node_rank: index of the node in the job, if the environment says.
        local_rank: index of the process on its node, if the environment says.
        world_size: number of processes in the job, if the environment says.
        is_owner: whether this process measures the node's devices (GPUs, RAPL, RAM).
        how: which rule decided, e.g. ``"LOCAL_RANK"`` or ``"lock /tmp/carbon-kfp-...lock"``.

    A role won through the lock holds it until :meth:`release` (also on leaving a ``with``
    block); release it when the tracker stops. Roles decided by environment hold nothing and
    ``release`` does nothing.
    """

    node_rank: int | None
    local_rank: int | None
    world_size: int | None
    is_owner: bool
    how: str
    _claim: _Claim | None = field(default=None, repr=False, compare=False)

    @property
    def holds_lock(self) -> bool:
        """Whether this role still holds (a share of) the node-owner lock file."""
        return self._claim is not None and self._claim.active

    def release(self) -> None:
        """Give up this role's hold on the node-owner lock, if any. Idempotent; never raises."""
        if self._claim is not None:
            try:
                self._claim.release()
            except OSError as exc:
                warn_once(f"releasing node-owner lock {self._claim.lock.path} failed: {exc}")

    def __enter__(self) -> NodeRole:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def elect_node_owner(
    env: Mapping[str, str] | None = None, *, lock_dir: Path | None = None
) -> NodeRole:
    """Decide whether this process owns (measures) its node; see the module docstring.

    Args:
        env: environment to read; default ``os.environ``.
        lock_dir: where the node-local lock file lives when no rank variable is set; default
            ``tempfile.gettempdir()``. Created if missing.

    Returns:
        The :class:`NodeRole`. Only a lock-elected owner holds anything; release it when done.

    Raises:
        ConfigError: a rank variable that is set but not a non-negative integer (or a
            ``LOCAL_WORLD_SIZE`` of 0). A lock that cannot be created is not an error: the process
            assumes it owns the node and warns once.
    """
    env = os.environ if env is None else env
    world_size = _first_int(env, WORLD_SIZE_VARS)
    node_rank = _first_int(env, NODE_RANK_VARS)

    for var in LOCAL_RANK_VARS:
        if _present(env, var):
            local_rank = _int(env, var)
            return NodeRole(node_rank, local_rank, world_size, local_rank == 0, var)

    if _present(env, "RANK") and _present(env, "LOCAL_WORLD_SIZE"):
        rank = _int(env, "RANK")
        local_world_size = _int(env, "LOCAL_WORLD_SIZE")
        if local_world_size == 0:
            raise ConfigError("LOCAL_WORLD_SIZE='0'; expected the number of processes per node")
        local_rank = rank % local_world_size
        if node_rank is None:
            node_rank = rank // local_world_size
        return NodeRole(
            node_rank, local_rank, world_size, local_rank == 0, "RANK % LOCAL_WORLD_SIZE"
        )

    return _elect_by_lock(env, lock_dir, node_rank, world_size)


def lock_path(env: Mapping[str, str] | None = None, lock_dir: Path | None = None) -> Path:
    """The node-owner lock file for this user and job (see the module docstring)."""
    env = os.environ if env is None else env
    job = next((env[v] for v in JOB_ID_VARS if _present(env, v)), "default")
    job = re.sub(r"[^A-Za-z0-9._-]", "_", job)[:100]
    uid = os.getuid()
    directory = Path(tempfile.gettempdir()) if lock_dir is None else Path(lock_dir)
    return directory / f"carbon-kfp-node-owner-{uid}-{job}.lock"


def _elect_by_lock(
    env: Mapping[str, str], lock_dir: Path | None, node_rank: int | None, world_size: int | None
) -> NodeRole:
    path = lock_path(env, lock_dir)
    how = f"lock {path}"
    key = Path(os.path.abspath(path))
    with _held_guard:  # also serialises threads of this process electing at the same time
        mine = _held.get(key)
        if mine is not None and mine.pid == os.getpid() and mine.fd is not None:
            return NodeRole(node_rank, None, world_size, True, how, _Claim(mine))
        # (an entry inherited through fork is the parent's lock, not ours: try for real)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            warn_once(f"cannot open node-owner lock {path} ({exc}); this process assumes it owns")
            return NodeRole(node_rank, None, world_size, True, f"{how} unavailable; assumed owner")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another live process owns the node
            os.close(fd)
            return NodeRole(node_rank, None, world_size, False, how)
        try:  # for people looking at the file; the lock itself is what counts
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        lock = _held[key] = _OwnerLock(key, fd)
        return NodeRole(node_rank, None, world_size, True, how, _Claim(lock))


def _present(env: Mapping[str, str], var: str) -> bool:
    return bool(env.get(var, "").strip())


def _int(env: Mapping[str, str], var: str) -> int:
    raw = env[var].strip()
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{var}={env[var]!r}; expected a non-negative integer")
    return value


def _first_int(env: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for var in names:
        if _present(env, var):
            return _int(env, var)
    return None
