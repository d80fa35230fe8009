"""The IDX format of (Fashion-)MNIST: parse and check, as pure functions over bytes and arrays.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data in row-major order. Fashion-MNIST uses unsigned
bytes (type ``0x08``): images ``0x00000803`` (N × 28 × 28) and labels ``0x00000801`` (N). The
files are usually gzipped; :func:`decompress` accepts both.

Every check raises :class:`ValueError` naming the file, what was found and what was expected.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib

import numpy as np

UBYTE = 0x08
IMAGE_SIDE = 28
NUM_CLASSES = 10
_GZIP_MAGIC = b"\x1f\x8b"


def decompress(data: bytes, name: str) -> bytes:
    """The IDX bytes of ``data``: gunzipped when it starts with the gzip magic, else unchanged.

    Raises:
        ValueError: a gzip stream that is truncated or corrupt.
    """
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: corrupt or truncated gzip data ({exc})") from exc


def parse_idx(data: bytes, name: str, *, ndim: int) -> np.ndarray:
    """Parses an unsigned-byte IDX file with ``ndim`` dimensions into a uint8 array (a view).

    Args:
        data: The decompressed file.
        name: The file's name, for messages.
        ndim: Dimensions expected: 3 for images, 1 for labels.

    Raises:
        ValueError: wrong magic number (not IDX, another element type or dimension count), a
            header or data shorter than declared (truncated file), or bytes after the data.
    """
    expected_magic = UBYTE << 8 | ndim
    what = f"0x{expected_magic:08x} (IDX unsigned bytes, {ndim} dimension{'s' * (ndim > 1)})"
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes, too short for an IDX magic number {what}")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{name}: magic number 0x{magic:08x}, expected {what}")
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise ValueError(
            f"{name}: truncated header: {len(data)} bytes, expected {header_bytes} "
            f"(magic and {ndim} dimension sizes)"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header_bytes])
    expected_bytes = math.prod(dims)
    body_bytes = len(data) - header_bytes
    shape = " × ".join(map(str, dims))
    if body_bytes < expected_bytes:
        raise ValueError(
            f"{name}: truncated: the header declares {shape} = {expected_bytes} bytes of data "
            f"after the {header_bytes}-byte header, the file has {body_bytes} "
            f"({expected_bytes - body_bytes} missing)"
        )
    if body_bytes > expected_bytes:
        raise ValueError(
            f"{name}: {body_bytes - expected_bytes} unexpected bytes after the {shape} data "
            f"declared by the header (offset {header_bytes + expected_bytes})"
        )
    return np.frombuffer(data, dtype=np.uint8, count=expected_bytes, offset=header_bytes).reshape(
        dims
    )


def check_images(images: np.ndarray, name: str) -> None:
    """Checks an N × 28 × 28 image array with N ≥ 1.

    Raises:
        ValueError: another shape, or no images.
    """
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise ValueError(
            f"{name}: images of shape {images.shape}, expected N × {IMAGE_SIDE} × {IMAGE_SIDE}"
        )
    if images.shape[0] == 0:
        raise ValueError(f"{name}: no images (N = 0)")


def check_labels(labels: np.ndarray, name: str) -> None:
    """Checks a 1-D label array with values 0 to 9.

    Raises:
        ValueError: another shape, or a label of 10 or above (the message gives its index).
    """
    if labels.ndim != 1:
        raise ValueError(f"{name}: labels of shape {labels.shape}, expected one dimension")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise ValueError(
            f"{name}: label {int(labels[bad[0]])} at index {int(bad[0])} "
            f"({bad.size} labels out of range); expected 0 to {NUM_CLASSES - 1}"
        )


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """Checks images and labels and that there is one label per image.

    Raises:
        ValueError: as :func:`check_images` and :func:`check_labels`, or counts that differ.
    """
    check_images(images, images_name)
    check_labels(labels, labels_name)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_name} has {images.shape[0]} images but {labels_name} has "
            f"{labels.shape[0]} labels; expected one label per image"
        )
