"""Node-owner election: launcher environments, the lock, and real multi-process runs."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carbon_kfp import errors
from carbon_kfp.distributed import (
    JOB_ID_VARS,
    LOCAL_RANK_VARS,
    NODE_GROUP_ENV,
    NODE_RANK_VARS,
    WORLD_SIZE_VARS,
    NodeRole,
    elect_node_owner,
    lock_path,
)
from carbon_kfp.errors import CarbonKfpWarning, ConfigError
from carbon_kfp.sensors.base import NullSensor, Reading, Sensor
from carbon_kfp.sensors.nvml_devices import NVML_MODULE_ENV
from tests.fake_nvml import SCRIPT_ENV, FakeGpu, PowerCurve, from_script, script_json

REPO = Path(__file__).resolve().parents[1]
RANK_VARS = {
    NODE_GROUP_ENV,
    *LOCAL_RANK_VARS,
    *NODE_RANK_VARS,
    *WORLD_SIZE_VARS,
    *JOB_ID_VARS,
    "RANK",
    "LOCAL_WORLD_SIZE",
    "CUDA_VISIBLE_DEVICES",
    NVML_MODULE_ENV,
    SCRIPT_ENV,
}


SOLO = "without a world size above 1: measures for itself"


def role(node: int | None, local: int | None, world: int | None, owner: bool, how: str) -> NodeRole:
    return NodeRole(node, local, world, owner, how)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"LOCAL_RANK": "0", "RANK": "4", "GROUP_RANK": "1", "WORLD_SIZE": "8"},
            role(1, 0, 8, True, "LOCAL_RANK"),
        ),
        (
            {"LOCAL_RANK": "3", "RANK": "7", "GROUP_RANK": "1", "WORLD_SIZE": "8"},
            role(1, 3, 8, False, "LOCAL_RANK"),
        ),
        # torchrun under a one-task-per-node srun: every worker inherits SLURM_LOCALID=0.
        (
            {"LOCAL_RANK": "2", "SLURM_LOCALID": "0", "SLURM_NODEID": "3", "SLURM_NTASKS": "4"},
            role(3, 2, 4, False, "LOCAL_RANK"),
        ),
        (
            {"SLURM_LOCALID": "0", "SLURM_NODEID": "2", "SLURM_NTASKS": "16"},
            role(2, 0, 16, True, "SLURM_LOCALID"),
        ),
        (
            {"OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4"},
            role(None, 1, 4, False, "OMPI_COMM_WORLD_LOCAL_RANK"),
        ),
        ({"MPI_LOCALRANKID": "0", "PMI_SIZE": "2"}, role(None, 0, 2, True, "MPI_LOCALRANKID")),
        (
            {"RANK": "5", "LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "8"},
            role(1, 1, 8, False, "RANK % LOCAL_WORLD_SIZE"),
        ),
        (
            {"RANK": "4", "LOCAL_WORLD_SIZE": "4", "NODE_RANK": "7"},
            role(7, 0, None, True, "RANK % LOCAL_WORLD_SIZE"),
        ),
        # Rank variables outside a job of several processes elect nothing: each measures itself.
        (
            {"LOCAL_RANK": " 3 ", "NODE_RANK": ""},
            role(None, 3, None, True, f"LOCAL_RANK {SOLO}"),
        ),
        (
            {"SLURM_LOCALID": "0", "SLURM_NTASKS": "1"},
            role(None, 0, 1, True, f"SLURM_LOCALID {SOLO}"),
        ),
        ({}, role(None, None, None, True, "no job or group: measures for itself")),
    ],
)
def test_launcher_environments(env: dict[str, str], expected: NodeRole) -> None:
    got = elect_node_owner(env)
    assert got == expected
    assert not got.holds_lock
    got.release()  # nothing to release: a no-op


@pytest.mark.parametrize(
    "env",
    [
        {"LOCAL_RANK": "zero"},
        {"SLURM_LOCALID": "-1"},
        {"RANK": "1", "LOCAL_WORLD_SIZE": "0"},
        {"WORLD_SIZE": "two"},
    ],
)
def test_malformed_rank_variables_fail_with_their_name(env: dict[str, str]) -> None:
    name = next(iter(env)) if "LOCAL_WORLD_SIZE" not in env else "LOCAL_WORLD_SIZE"
    with pytest.raises(ConfigError, match=name):
        elect_node_owner(env)


def locked_by_someone_else(path: Path) -> bool:
    """Probe with a fresh open file: flock conflicts between open files even in one process."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the probe's own lock if it got one
    return False


def test_lock_owner_holds_the_file_until_released(tmp_path: Path) -> None:
    first = elect_node_owner({}, group="g", lock_dir=tmp_path)
    path = lock_path("group-g", tmp_path)
    assert first.is_owner and first.holds_lock
    assert first.how == f"lock {path}"
    assert (first.node_rank, first.local_rank, first.world_size) == (None, None, None)
    assert locked_by_someone_else(path)
    assert path.read_text() == f"{os.getpid()}\n"
    first.release()
    first.release()
    assert not first.holds_lock
    assert not locked_by_someone_else(path)


def test_second_election_in_the_owning_process_shares_ownership(tmp_path: Path) -> None:
    path = lock_path("group-g", tmp_path)
    with elect_node_owner({}, group="g", lock_dir=tmp_path) as outer:
        inner = elect_node_owner({}, group="g", lock_dir=tmp_path)  # a nested or second tracker
        assert outer.is_owner and inner.is_owner
        inner.release()
        assert locked_by_someone_else(path)  # the outer tracker still owns the node
    assert not outer.holds_lock
    assert not locked_by_someone_else(path)


def test_forked_child_neither_inherits_nor_breaks_ownership(tmp_path: Path) -> None:
    path = lock_path("group-g", tmp_path)
    with elect_node_owner({}, group="g", lock_dir=tmp_path) as parent_role:
        pid = os.fork()
        if pid == 0:  # child: a DataLoader worker, say
            code = 1
            try:
                child_role = elect_node_owner({}, group="g", lock_dir=tmp_path)
                parent_role.release()  # releasing the inherited copy must not unlock the parent
                code = 0 if not child_role.is_owner else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert parent_role.holds_lock
        assert locked_by_someone_else(path)


CONTENDER = """
import sys
from pathlib import Path
from carbon_kfp.distributed import elect_node_owner
env = dict(arg.split("=", 1) for arg in sys.argv[2:])
print(elect_node_owner(env, lock_dir=Path(sys.argv[1])).is_owner)
"""


def test_another_process_of_the_group_loses_while_the_owner_lives(tmp_path: Path) -> None:
    def contender(*env: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", CONTENDER, str(tmp_path), *env],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()

    with elect_node_owner({}, group="g", lock_dir=tmp_path):
        assert contender("CARBON_KFP_NODE_GROUP=g") == "False"
        assert contender("CARBON_KFP_NODE_GROUP=other") == "True"
        assert contender() == "True"  # an unrelated process measures for itself
    assert contender("CARBON_KFP_NODE_GROUP=g") == "True"  # released by the with block


def test_lock_is_per_job_and_user(tmp_path: Path) -> None:
    job_a = elect_node_owner({"SLURM_JOB_ID": "12/3"}, lock_dir=tmp_path)
    job_b = elect_node_owner({"SLURM_JOB_ID": "99"}, lock_dir=tmp_path)
    assert job_a.is_owner and job_b.is_owner
    path = tmp_path / f"carbon-kfp-node-owner-{os.getuid()}-job-12_3.lock"
    assert job_a.how == f"lock {path}" and locked_by_someone_else(path)
    job_a.release()
    job_b.release()


def test_explicit_group_wins_over_rank_variables(tmp_path: Path) -> None:
    env = {"LOCAL_RANK": "1", "WORLD_SIZE": "4", "CARBON_KFP_NODE_GROUP": "from-env"}
    with elect_node_owner(env, group="mine", lock_dir=tmp_path) as got:
        assert got.is_owner and got.local_rank == 1  # first of the group, whatever its rank
        assert got.how == f"lock {lock_path('group-mine', tmp_path)}"
    with elect_node_owner(env, lock_dir=tmp_path) as got:
        assert got.how == f"lock {lock_path('group-from-env', tmp_path)}"
    with pytest.raises(ConfigError, match="node_group=3"):
        elect_node_owner({}, group=3, lock_dir=tmp_path)  # type: ignore[arg-type]


def test_unusable_lock_dir_assumes_owner_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(errors, "_seen", set())
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.warns(CarbonKfpWarning, match="cannot open node-owner lock"):
        got = elect_node_owner({}, group="g", lock_dir=not_a_dir)
    assert got.is_owner and not got.holds_lock
    assert "assumed owner" in got.how


# -- real processes: one node, four ranks, one fake 4-GPU node --------------------------------

CHILD = """
import json, sys, time
from pathlib import Path
from carbon_kfp.distributed import elect_node_owner
from carbon_kfp.sensors.gpu import GpuSensor

out_dir, n, name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
role = elect_node_owner(lock_dir=out_dir / "locks")
(out_dir / (name + ".elected")).write_text("")
deadline = time.monotonic() + 20  # everyone elects before anyone lets go: a contended lock
while len(list(out_dir.glob("*.elected"))) < n and time.monotonic() < deadline:
    time.sleep(0.01)
sensor = GpuSensor(measure=role.is_owner)
sensor.start()
time.sleep(0.4)
sensor.sample()
time.sleep(0.2)
reading = sensor.read()
sensor.close()
role.release()
fake = sys.modules.get("tests.fake_nvml")
calls = [] if fake is None else [[c.name, c.t_s, c.uuid] for c in fake.DEFAULT.calls]
(out_dir / (name + ".json")).write_text(json.dumps({
    "is_owner": role.is_owner, "how": role.how, "local_rank": role.local_rank,
    "energy_j": reading.energy_j, "method": reading.method, "capacity": reading.capacity,
    "nvml_imported": fake is not None, "calls": calls,
}))
"""

NODE = [
    FakeGpu(uuid=f"GPU-{i}0000000-0000-0000-0000-000000000000", curve=curve)
    for i, curve in enumerate(
        [
            PowerCurve.constant(70.0),
            PowerCurve(((0.0, 50.0), (2.0, 250.0))),
            PowerCurve(((0.0, 300.0), (1.0, 100.0), (3.0, 200.0))),
            PowerCurve.constant(120.0),
        ]
    )
]


def run_ranks(tmp_path: Path, rank_envs: list[dict[str, str]]) -> list[dict]:
    script = script_json(NODE, time.monotonic())
    base = {k: v for k, v in os.environ.items() if k not in RANK_VARS}
    base["PYTHONPATH"] = os.pathsep.join([str(REPO), base.get("PYTHONPATH", "")]).rstrip(":")
    base[NVML_MODULE_ENV] = "tests.fake_nvml"
    base[SCRIPT_ENV] = script
    n = len(rank_envs)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), str(n), f"p{i}"],
            env={**base, **extra},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, extra in enumerate(rank_envs)
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    results = [json.loads((tmp_path / f"p{i}.json").read_text()) for i in range(n)]

    # The node's energy over the owner's window, from the curves: what one node used, once.
    [owner] = [r for r in results if r["is_owner"]]
    fake = from_script(script)
    node_j = 0.0
    for gpu in NODE:
        times = [
            t
            for name, t, uuid in owner["calls"]
            if name.endswith("Consumption") and uuid == gpu.uuid
        ]
        node_j += fake.energy_j(gpu.uuid, times[1], times[-1])  # times[0] is the probe
    for r in results:
        r["node_j"] = node_j
    return results


def check_counted_once(results: list[dict]) -> None:
    owners = [r for r in results if r["is_owner"]]
    assert len(owners) == 1
    node_j = owners[0]["node_j"]
    assert node_j > 50.0
    assert sum(r["energy_j"] for r in results) == pytest.approx(node_j, rel=1e-3)
    assert owners[0]["method"] == "nvml-energy"
    assert owners[0]["capacity"] == 4
    for r in results:
        if not r["is_owner"]:
            assert (r["energy_j"], r["method"], r["capacity"]) == (0.0, "none", 0.0)
            assert not r["nvml_imported"]  # non-owners never load NVML at all


@pytest.mark.slow
def test_torchrun_ranks_count_the_node_once(tmp_path: Path) -> None:
    results = run_ranks(
        tmp_path,
        [
            {"LOCAL_RANK": str(i), "RANK": str(i), "WORLD_SIZE": "4", "GROUP_RANK": "0"}
            for i in range(4)
        ],
    )
    check_counted_once(results)
    assert [r["local_rank"] for r in results] == [0, 1, 2, 3]
    assert results[0]["is_owner"]


@pytest.mark.slow
def test_lock_elects_exactly_one_owner_among_four_processes_of_a_group(tmp_path: Path) -> None:
    results = run_ranks(tmp_path, [{"CARBON_KFP_NODE_GROUP": "node"} for _ in range(4)])
    check_counted_once(results)
    assert {r["how"] for r in results} == {f"lock {lock_path('group-node', tmp_path / 'locks')}"}


def test_null_sensor_stands_for_devices_the_owner_measures() -> None:
    """A non-owner rank in a container the owner already measures records nothing for it (the
    tracker says why)."""
    sensor: Sensor = NullSensor("cpu")
    assert sensor.name == "cpu"
    sensor.start()
    sensor.sample()
    assert sensor.read() == Reading(0.0, "none")
    sensor.close()
    sensor.close()
    assert sensor.read() == Reading(0.0, "none")
    assert sensor.warnings() == ()
