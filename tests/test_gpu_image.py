"""images/gpu: its requirements match pyproject's ranges; the image itself is not built here
(no CUDA base image and no GPU on the test machines)."""

import re

import pytest

from tests.conftest import REPO_ROOT

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

GPU = REPO_ROOT / "images" / "gpu"


def _requirements(lines: list[str]) -> dict[str, str]:
    """``name -> specifier`` of requirement lines (comments and blank lines dropped)."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("carbon-kfp"):
            name, spec = re.match(r"([A-Za-z0-9_.-]+)(.*)", line).groups()  # type: ignore[union-attr]
            found[name.lower()] = spec.strip()
    return found


def test_requirements_use_pyprojects_ranges() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = _requirements(project["dependencies"])
    for extra in ("kfp", "fashion", "compare"):
        declared |= _requirements(project["optional-dependencies"][extra])
    image = _requirements((GPU / "requirements.txt").read_text(encoding="utf-8").splitlines())
    assert {name: image[name] for name in declared} == declared
    assert "torch" not in image  # the base image's CUDA 12 build must stay


def test_dockerfile_names_its_base_and_runs_unprivileged() -> None:
    text = (GPU / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=\S+pytorch-gpu\.\d+-\d+\.py3\d+", text, re.M)
    assert re.search(r"^USER \d+", text, re.M)
    assert text.index("requirements.txt") < text.index("COPY carbon_kfp")
