"""Who measures the node: one owner per node among the processes of one job, and only there.

A node's GPUs (and its RAPL counters) are shared by every rank of a job on it, so if each of
torchrun's eight workers measured them the node would be counted eight times. Processes that do
*not* belong to one job (two notebooks, two unrelated jobs, a test suite) must not hold each other
back, though: each measures for itself. :func:`elect_node_owner` decides, first rule that applies:

1. **An explicit group**: ``node_group=`` (tracker argument) or ``$CARBON_KFP_NODE_GROUP``. The
   processes of this user that name the same group on one host elect one owner through a
   node-local lock (below).
2. **Launcher rank variables, in a job of more than one process**: a world size above 1
   (``WORLD_SIZE``, ``SLURM_NTASKS``, ``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``) or a
   ``LOCAL_WORLD_SIZE`` above 1. Then the local rank decides, local rank 0 owns:
   ``LOCAL_RANK`` (torchrun, DeepSpeed, Accelerate), ``SLURM_LOCALID`` (srun),
   ``OMPI_COMM_WORLD_LOCAL_RANK`` (Open MPI), ``MPI_LOCALRANKID`` (MPICH / Intel MPI), else
   ``RANK % LOCAL_WORLD_SIZE`` (ranks packed per node, as torchrun and most launchers assign
   them). ``LOCAL_RANK`` is checked first because torchrun started by a one-task-per-node ``srun``
   leaves ``SLURM_LOCALID=0`` in every worker. Rank variables in a job of one process (or with no
   world size at all) elect nothing: that process owns.
3. **A job id**: the first of ``TORCHELASTIC_RUN_ID``, ``SLURM_JOB_ID``, ``PBS_JOBID``,
   ``LSB_JOBID``, ``CLOUD_ML_JOB_ID`` that is set groups the job's processes; they elect one owner
   through the lock.
4. **Otherwise** the process measures for itself: it owns, and no lock is taken.

The lock: ``fcntl.flock`` on ``carbon-kfp-node-owner-<uid>-<group>.lock`` in ``lock_dir`` (default
``tempfile.gettempdir()``), where ``<group>`` is ``group-<name>`` or ``job-<id>``. The first
process to take it owns and holds it until :meth:`NodeRole.release` (or the ``with`` block ends,
or the process exits: the kernel drops a flock with its last descriptor, so a crashed owner never
leaves a stale lock). Processes that started as one pod or container share its ``/tmp``; separate
pods do not, and each owns its own devices, which is right. Ownership is per process: further
elections in the owning process (sequential or nested trackers) own too and share the lock, which
is unlocked when the last of them is released. A forked child is another process and does not
inherit ownership; it does inherit the descriptor, so the file stays locked until such children
exit as well.

Every tracker measures the GPUs visible to it (``CUDA_VISIBLE_DEVICES``), so two jobs on disjoint
GPUs of one host each get their own GPU energy. Inside one job the owner measures the devices
*it* sees: a launcher that gives each rank a disjoint ``CUDA_VISIBLE_DEVICES`` (e.g.
``srun --gpus-per-task=1``) hides the other ranks' GPUs from it; give such ranks no group (each
measures its own GPU) or one that covers them all.

Node rank comes from ``GROUP_RANK`` (torchrun), ``NODE_RANK`` (Lightning), ``SLURM_NODEID``, else
``RANK // LOCAL_WORLD_SIZE``; world size from the variables of rule 2. Either is ``None`` when
nothing says.

carbon-kfp needs a POSIX system (Linux, macOS): this module and :mod:`carbon_kfp.outputs` (atomic
CSV appends) use ``fcntl`` unconditionally, so there is no fallback for platforms without it.
"""

from __future__ import annotations

import fcntl
import os
import re
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
NODE_GROUP_ENV = "CARBON_KFP_NODE_GROUP"
"""Environment variable naming the node group whose processes elect one owner (rule 1)."""
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
# Reentrant: a tracker's weakref.finalize releases its role (drop_claim) when the garbage
# collector frees the tracker, which can happen on a thread that is inside an election holding
# this guard (any allocation may run the collector); a plain Lock would deadlock there.
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
    env: Mapping[str, str] | None = None,
    *,
    group: str | None = None,
    lock_dir: Path | None = None,
) -> NodeRole:
    """Decide whether this process owns (measures) its node; see the module docstring.

    Args:
        env: environment to read; default ``os.environ``.
        group: explicit node group (rule 1); ``None`` reads ``$CARBON_KFP_NODE_GROUP``, and a
            blank value names no group.
        lock_dir: where the node-local lock file lives when processes elect through it; default
            ``tempfile.gettempdir()``. Created if missing.

    Returns:
        The :class:`NodeRole`. Only a lock-elected owner holds anything; release it when done.

    Raises:
        ConfigError: a rank or world-size variable that is set but not a non-negative integer
            (or a ``LOCAL_WORLD_SIZE`` of 0), or a ``group`` that is not a string. A lock that
            cannot be created is not an error: the process assumes it owns the node and warns
            once.
    """
    env = os.environ if env is None else env
    world_size = _first_int(env, WORLD_SIZE_VARS)
    node_rank = _first_int(env, NODE_RANK_VARS)
    local_world_size = _first_int(env, ("LOCAL_WORLD_SIZE",))
    if local_world_size == 0:
        raise ConfigError("LOCAL_WORLD_SIZE='0'; expected the number of processes per node")
    rank_var = next((var for var in LOCAL_RANK_VARS if _present(env, var)), None)
    local_rank = _int(env, rank_var) if rank_var is not None else None
    if local_rank is None and _present(env, "RANK") and local_world_size is not None:
        rank = _int(env, "RANK")
        local_rank = rank % local_world_size
        rank_var = "RANK % LOCAL_WORLD_SIZE"
        if node_rank is None:
            node_rank = rank // local_world_size

    if group is None:
        group = env.get(NODE_GROUP_ENV, "")
    if not isinstance(group, str):
        raise ConfigError(f"node_group={group!r}; expected a string naming the group")
    if group.strip():
        key = f"group-{group.strip()}"
        return _elect_by_lock(key, lock_dir, node_rank, local_rank, world_size)

    in_job = (world_size or 0) > 1 or (local_world_size or 0) > 1
    if in_job and rank_var is not None and local_rank is not None:
        return NodeRole(node_rank, local_rank, world_size, local_rank == 0, rank_var)

    job_var = next((var for var in JOB_ID_VARS if _present(env, var)), None)
    if job_var is not None:
        key = f"job-{env[job_var].strip()}"
        return _elect_by_lock(key, lock_dir, node_rank, local_rank, world_size)

    how = "no job or group: measures for itself"
    if rank_var is not None:
        how = f"{rank_var} without a world size above 1: measures for itself"
    return NodeRole(node_rank, local_rank, world_size, True, how)


def lock_path(group_key: str, lock_dir: Path | None = None) -> Path:
    """The node-owner lock file of this user for a group key (``group-<name>``, ``job-<id>``)."""
    key = re.sub(r"[^A-Za-z0-9._-]", "_", group_key)[:100]
    uid = os.getuid()
    import tempfile  # only a job that elects an owner needs it (shutil, bz2, lzma: ~4 ms)

    directory = Path(tempfile.gettempdir()) if lock_dir is None else Path(lock_dir)
    return directory / f"carbon-kfp-node-owner-{uid}-{key}.lock"


def _elect_by_lock(
    group_key: str,
    lock_dir: Path | None,
    node_rank: int | None,
    local_rank: int | None,
    world_size: int | None,
) -> NodeRole:
    path = lock_path(group_key, lock_dir)
    how = f"lock {path}"
    key = Path(os.path.abspath(path))

    def role(is_owner: bool, how: str = how, claim: _Claim | None = None) -> NodeRole:
        return NodeRole(node_rank, local_rank, world_size, is_owner, how, claim)

    with _held_guard:  # also serialises threads of this process electing at the same time
        mine = _held.get(key)
        if mine is not None and mine.pid == os.getpid() and mine.fd is not None:
            return role(True, claim=_Claim(mine))
        # (an entry inherited through fork is the parent's lock, not ours: try for real)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            warn_once(f"cannot open node-owner lock {path} ({exc}); this process assumes it owns")
            return role(True, f"{how} unavailable; assumed owner")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another live process owns the node
            os.close(fd)
            return role(False)
        try:  # for people looking at the file; the lock itself is what counts
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        lock = _held[key] = _OwnerLock(key, fd)
        return role(True, claim=_Claim(lock))


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
