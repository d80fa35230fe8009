"""SOURCE of ``carbon-kfp compile`` and ``submit``, loaded and compiled with kfp's own code.

SOURCE is one of:

* a registered name (``wine``; :data:`carbon_kfp.pipelines.PIPELINES`);
* ``path/to/file.py:function`` (or ``file.py`` holding exactly one pipeline), imported the way
  ``kfp dsl compile --py FILE --function NAME`` imports it;
* a compiled ``.yaml`` / ``.yml`` pipeline, read with ``kfp.components.load_component_from_file``.

The result is compiled by ``kfp.compiler.Compiler`` (a YAML source is kept as written); then the
kit's images can be renamed (:func:`carbon_kfp.pipeline_spec.rebase_kit_images`) and the target
checked (:func:`carbon_kfp.pipeline_spec.target_problems`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbon_kfp.errors import ConfigError


@dataclass(frozen=True)
class PipelineSource:
    """A loaded SOURCE: the kfp component, the YAML file it came from (if any), its switches.

    ``choices`` and ``resources`` come from the pipeline module's ``PARAMETER_CHOICES`` and
    ``VERTEX_RESOURCE_PARAMETERS`` (parameter -> allowed values; parameter -> resource
    collection such as ``"endpoints"``); a compiled YAML has neither.
    """

    label: str
    component: Any
    yaml_path: Path | None = None
    choices: Mapping[str, tuple[str, ...]] | None = None
    resources: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CompiledPipeline:
    """A compiled pipeline file and its YAML documents (the spec; the platform spec, if any)."""

    path: Path
    spec: dict[str, Any]
    platform_spec: dict[str, Any] | None


def load_source(source: str, target: str = "vertex") -> PipelineSource:
    """Loads SOURCE (see the module docstring) for ``target``.

    Raises:
        ConfigError: a missing file, a ``.py`` without the named function, an unknown registered
            name (with the close ones).
    """
    path_text, _, function = source.partition(":") if ".py:" in source else (source, "", "")
    path = Path(path_text)
    if path.suffix in (".yaml", ".yml"):
        from kfp import components

        _must_exist(path, source)
        return PipelineSource(source, components.load_component_from_file(str(path)), path)
    if path.suffix == ".py":
        from kfp.cli.compile_ import collect_pipeline_or_component_func

        _must_exist(path, source)
        try:
            component = collect_pipeline_or_component_func(str(path.resolve()), function or None)
        except ValueError as exc:  # kfp's message names the module and what it found
            raise ConfigError(f"SOURCE {source!r}: {exc}") from exc
        return _from_module(source, component, sys.modules.get(path.stem))
    return registered_source(source, target)


def registered_source(name: str, target: str = "vertex") -> PipelineSource:
    """A registered pipeline (``wine``) built for ``target``, with its module's switches.

    Raises:
        ConfigError: ``name`` is not registered (with the close ones).
    """
    from carbon_kfp.pipelines import load_pipeline

    pipeline, module = load_pipeline(name, target)
    return _from_module(name, pipeline, module)


def _from_module(source: str, component: Any, module: Any) -> PipelineSource:
    return PipelineSource(
        source,
        component,
        choices=getattr(module, "PARAMETER_CHOICES", None),
        resources=getattr(module, "VERTEX_RESOURCE_PARAMETERS", None),
    )


def _must_exist(path: Path, source: str) -> None:
    if not path.is_file():
        raise ConfigError(
            f"SOURCE {source!r}: no such file; expected a registered pipeline name, "
            "FILE.py:FUNCTION or a compiled FILE.yaml"
        )


def compile_source(
    source: PipelineSource,
    package_path: str | Path,
    *,
    cpu_image: str | None = None,
    gpu_image: str | None = None,
) -> CompiledPipeline:
    """Writes ``source`` as pipeline YAML at ``package_path`` (parents created).

    Args:
        source: From :func:`load_source`.
        package_path: Destination ``.yaml``.
        cpu_image: Replaces the kit's CPU image (``carbon-kfp-cpu``) in every executor.
        gpu_image: Replaces the kit's GPU image (``carbon-kfp-gpu``) in every executor.

    Returns:
        The file written and its documents.
    """
    import yaml
    from kfp import compiler

    from carbon_kfp.pipeline_spec import rebase_kit_images

    path = Path(package_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if source.yaml_path is not None:
        if source.yaml_path.resolve() != path.resolve():
            shutil.copyfile(source.yaml_path, path)
    else:
        compiler.Compiler().compile(pipeline_func=source.component, package_path=str(path))
    # libyaml's safe loader and dumper when PyYAML has them: ~10x faster on a pipeline's IR
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
    spec = documents[0]
    if cpu_image or gpu_image:
        spec = rebase_kit_images(spec, cpu_image, gpu_image)
        documents[0] = spec
        text = yaml.dump_all(documents, Dumper=dumper, sort_keys=True)
        path.write_text(text, encoding="utf-8")
    return CompiledPipeline(path, spec, documents[1] if len(documents) > 1 else None)
