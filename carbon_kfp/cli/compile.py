"""``carbon-kfp compile SOURCE``: any pipeline to YAML for Vertex AI or Kubeflow, checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbon_kfp.cli.help import add_subcommand
from carbon_kfp.pipeline_spec import TARGETS

SOURCE_HELP = "a registered pipeline name (e.g. wine), FILE.py:FUNCTION, or a compiled FILE.yaml"


def register(commands: Any) -> None:
    """Add ``compile`` to ``commands`` (an argparse subparsers object)."""
    compile_ = add_subcommand(
        commands,
        "compile",
        help="compile a pipeline to YAML",
        description="Compile a pipeline with kfp's compiler, set the kit's images, and warn about "
        "what will not run on the target.",
        examples=(
            "carbon-kfp compile wine --output wine.yaml",
            "carbon-kfp compile my_pipeline.py:train --target kubeflow "
            "--image-registry europe-west4-docker.pkg.dev/PROJECT/REPO --output train.yaml",
        ),
        exit_codes="exit codes: 0 compiled, 1 the output could not be written, 2 bad arguments "
        "or a pipeline the target cannot run",
    )
    compile_.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    compile_.add_argument("--output", type=Path, required=True, help="destination .yaml")
    compile_.add_argument(
        "--target", choices=TARGETS, default="vertex", help="where it will run (default: vertex)"
    )
    add_image_options(compile_)
    compile_.set_defaults(handler=_compile)


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """``--image-registry``, ``--cpu-image``, ``--gpu-image``: the kit's images in the output."""
    parser.add_argument(
        "--image-registry",
        metavar="REGISTRY",
        help="registry path of the kit's images, e.g. europe-west4-docker.pkg.dev/PROJECT/REPO "
        "(gives REGISTRY/carbon-kfp-cpu:VERSION and -gpu; default $CARBON_KFP_IMAGE_REGISTRY)",
    )
    parser.add_argument("--cpu-image", metavar="IMAGE", help="the kit's CPU image, in full")
    parser.add_argument("--gpu-image", metavar="IMAGE", help="the kit's GPU image, in full")


def kit_images(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """``(cpu, gpu)`` images from the options; ``None`` where the compiled ones stay."""
    from carbon_kfp.images import CPU_IMAGE_NAME, GPU_IMAGE_NAME, image_ref

    registry = args.image_registry
    cpu = args.cpu_image or (image_ref(CPU_IMAGE_NAME, registry) if registry else None)
    gpu = args.gpu_image or (image_ref(GPU_IMAGE_NAME, registry) if registry else None)
    return cpu, gpu


def compile_checked(
    args: argparse.Namespace, output: Path, target: str
) -> tuple[Any, Any, list[str]]:
    """Loads and compiles ``args.source`` for ``target``: ``(source, compiled, problems)``.

    Problems: tracked tasks without their job/task arguments, then what
    :func:`carbon_kfp.pipeline_spec.image_problems` and ``target_problems`` find.
    """
    from carbon_kfp.kfp.source import compile_source, load_source
    from carbon_kfp.kfp.wiring import untracked_tasks
    from carbon_kfp.pipeline_spec import image_problems, target_problems

    cpu, gpu = kit_images(args)
    source = load_source(args.source, target)
    compiled = compile_source(source, output, cpu_image=cpu, gpu_image=gpu)
    problems = [
        f"task input {task} is left to its default, so the record names no job/task; pass "
        "**carbon_kfp.kfp.tracking_args() in the pipeline"
        for task in untracked_tasks(compiled.spec)
    ]
    problems += image_problems(compiled.spec, target)
    problems += target_problems(compiled.spec, target, compiled.platform_spec)
    return source, compiled, problems


def _compile(args: argparse.Namespace) -> int:
    _, compiled, problems = compile_checked(args, args.output, args.target)
    for problem in problems:
        print(f"carbon-kfp compile: warning: {problem}", file=sys.stderr)
    print(f"compiled {args.source} for {args.target} -> {compiled.path}")
    return 0
