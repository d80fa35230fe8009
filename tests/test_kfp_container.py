"""``carbon_container_component``: the spec it builds, and a compile / load round trip."""

from pathlib import Path

import pytest
from kfp import compiler, components, dsl

from carbon_kfp.errors import ConfigError
from carbon_kfp.kfp import carbon_container_component

train_java = carbon_container_component(
    "train-java",
    image="eclipse-temurin:21",
    command=["java", "-jar", "/app/train.jar"],
    args=["--epochs={epochs}", "--lr", "{lr}", "--literal={{x}}"],
    inputs={"epochs": int, "lr": float},
    defaults={"lr": 0.1},
    exec_options=["--country-iso-code", "FRA"],
    description="Trains the Java model.",
)


@dsl.pipeline(name="java-training")
def java_pipeline(epochs: int = 3) -> None:
    train_java(
        epochs=epochs,
        pipeline_job=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        pipeline_task=dsl.PIPELINE_TASK_NAME_PLACEHOLDER,
    )


def container_strings(component: object) -> tuple[list[str], list[str]]:
    container = component.component_spec.implementation.container  # type: ignore[attr-defined]
    return [str(c) for c in container.command], [str(a) for a in container.args]


def test_spec_has_the_inputs_the_kpi_co2_output_and_the_exec_prefix() -> None:
    spec = train_java.component_spec
    assert spec.name == "train-java" and spec.description == "Trains the Java model."
    assert list(spec.outputs) == ["kpi_co2"]
    assert spec.outputs["kpi_co2"].type == "system.Metrics@0.0.1"
    assert {n: (i.type, i.default) for n, i in spec.inputs.items()} == {
        "epochs": ("Integer", None),
        "pipeline_job": ("String", ""),
        "pipeline_task": ("String", ""),
        "cloud_location": ("String", ""),
        "lr": ("Float", 0.1),
    }
    command, args = container_strings(train_java)
    assert command == [
        "carbon-kfp",
        "exec",
        "--executor-input",
        "{{$}}",
        "--metrics",
        "kpi_co2",
        "--metrics-path",
        "{{$.outputs.artifacts['kpi_co2'].path}}",
        "--pipeline-job",
        "{{$.inputs.parameters['pipeline_job']}}",
        "--pipeline-task",
        "{{$.inputs.parameters['pipeline_task']}}",
        "--cloud-location",
        "{{$.inputs.parameters['cloud_location']}}",
        "--country-iso-code",
        "FRA",
        "--",
        "java",
        "-jar",
        "/app/train.jar",
    ]
    assert args == [
        "--epochs={{$.inputs.parameters['epochs']}}",
        "--lr",
        "{{$.inputs.parameters['lr']}}",
        "--literal={x}",
    ]


def load_back(original: object, path: Path) -> object:
    compiler.Compiler().compile(original, str(path))
    return components.load_component_from_file(str(path))


def test_compiled_pipeline_yaml_loads_back_equal(tmp_path: Path) -> None:
    loaded = load_back(java_pipeline, tmp_path / "pipeline.yaml")
    assert loaded.pipeline_spec == java_pipeline.pipeline_spec  # type: ignore[attr-defined]
    assert loaded.component_spec == java_pipeline.component_spec  # type: ignore[attr-defined]


def test_compiled_component_yaml_loads_back_equal(tmp_path: Path) -> None:
    loaded = load_back(train_java, tmp_path / "component.yaml")
    assert loaded.pipeline_spec == train_java.pipeline_spec  # type: ignore[attr-defined]
    # In memory the original holds placeholder objects where the loaded one holds their strings.
    assert container_strings(loaded) == container_strings(train_java)
    assert loaded.component_spec.inputs == train_java.component_spec.inputs  # type: ignore[attr-defined]
    assert loaded.component_spec.outputs == train_java.component_spec.outputs  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"args": ["{epoch}"], "inputs": {"epochs": int}}, "closest valid: epochs"),
        ({"inputs": {"data": list}}, "expected str/int/float/bool"),
        ({"inputs": {"pipeline_task": str}}, "reserved"),
        ({"inputs": {"a": int}, "defaults": {"b": 1}}, "unknown inputs: b"),
    ],
)
def test_bad_definitions_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        carbon_container_component("bad", image="img", command=["run"], **kwargs)  # type: ignore[arg-type]
