"""``python -m carbon_kfp.components [--output DIR]``: write each component's ``component.yaml``.

The image in each YAML is the one :mod:`carbon_kfp.images` gives at compile time (set
``CARBON_KFP_IMAGE_REGISTRY`` first for your registry). ``make compile`` regenerates the copies
checked in beside each component, with the images' defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from carbon_kfp.components import COMPONENTS


def write_component_yaml(directory: Path) -> list[Path]:
    """Compiles every kit component to ``<directory>/<name>/component.yaml``; returns the paths.

    Raises:
        OSError: a file cannot be written.
    """
    from kfp import compiler

    paths = []
    for name, component in COMPONENTS.items():
        path = directory / name / "component.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        compiler.Compiler().compile(component, package_path=str(path))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m carbon_kfp.components", description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).resolve().parent, help="root folder"
    )
    for path in write_component_yaml(parser.parse_args().output):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
