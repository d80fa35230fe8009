"""Small, generated Fashion-MNIST-like IDX files for tests (tests never download data).

Class ``c`` lights rows ``2c`` to ``2c + 3`` of a noisy image, so a tiny CNN learns it in one
epoch. The canonical files, where present, are in :data:`REAL_DATA` (slow tests only).
"""

import gzip
import struct
from pathlib import Path

import numpy as np

from carbon_kfp.fashion.data import SPLITS

#: The four published files (see PROVENANCE.md there); absent on most machines.
REAL_DATA = Path("/work/shared/data/fashion-mnist")


def encode_idx(array: np.ndarray, *, magic: bytes | None = None) -> bytes:
    """IDX bytes of a uint8 array; ``magic`` overrides the first four bytes."""
    header = magic or bytes([0, 0, 0x08, array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def synthetic_split(count: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images (uint8, N × 28 × 28) and labels cycling through the ten classes."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(count) % 10).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(count, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i, 2 * label + 2 : 2 * label + 6, 4:24] = 230
    return images, labels


def write_idx_folder(
    folder: Path, *, train: int = 200, test: int = 100, gz: bool = True, seed: int = 0
) -> Path:
    """The four files, with the canonical names (so ``check_sha256=False`` is needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("test", test)):
        images, labels = synthetic_split(count, seed=seed + (split == "test"))
        for name, array in zip(SPLITS[split], (images, labels), strict=True):
            raw = encode_idx(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
            else:
                (folder / name).write_bytes(raw)
    return folder
