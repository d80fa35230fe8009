"""Fashion-MNIST files: find them behind a ``data_uri``, download into a cache, verify, load.

A ``data_uri`` names a folder holding the four files (each gzipped, ``<name>.gz``, or raw,
``<name>``)::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

* ``""``: :data:`DEFAULT_DATA_URI`, Zalando Research's repository;
* ``https://...`` (or ``http://``): downloaded once into the cache (:func:`default_cache_dir`),
  written to a temporary file and renamed, so an interrupted download leaves nothing behind;
* ``gs://BUCKET/PREFIX``: read in place through Cloud Storage FUSE (``/gcs/BUCKET/PREFIX``, which
  Vertex AI mounts), else downloaded into the cache with google-cloud-storage;
* a local folder or ``file://`` URI: read in place.

Files with a canonical name are checked against the SHA-256 of the published files
(:data:`SHA256`, gzipped and raw) unless ``check_sha256=False`` (other data in the IDX format).
Every file's structure is checked by :mod:`carbon_kfp.fashion.idx` either way.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from carbon_kfp.fashion import idx

#: Zalando Research's own copy of the four files (MIT licence).
DEFAULT_DATA_URI = "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"
UPSTREAM = "https://github.com/zalandoresearch/fashion-mnist"
CACHE_ENV = "CARBON_KFP_CACHE_DIR"

#: split -> (images file, labels file), names without ``.gz``.
SPLITS: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILE_NAMES: tuple[str, ...] = tuple(name for pair in SPLITS.values() for name in pair)

#: SHA-256 of the published files, gzipped (as distributed) and decompressed.
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",  # noqa: E501
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",  # noqa: E501
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: Where Vertex AI mounts Cloud Storage buckets (Cloud Storage FUSE).
GCS_FUSE_ROOT = Path("/gcs")

#: Opens a URL and returns a binary response (the network boundary; tests replace it).
UrlOpener = Callable[..., IO[bytes]]
_open_url: UrlOpener = urllib.request.urlopen


def default_cache_dir() -> Path:
    """``$CARBON_KFP_CACHE_DIR``, else ``$XDG_CACHE_HOME/carbon-kfp``, else ``~/.cache/carbon-kfp``;
    downloads go to its ``fashion-mnist/`` folder."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "carbon-kfp"
    )
    return Path(root) / "fashion-mnist"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, shown: str) -> None:
    """Checks a file whose name is canonical against :data:`SHA256`; other names pass.

    Raises:
        ValueError: a canonical name whose content differs from the published file.
    """
    expected = SHA256.get(path.name)
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f"{shown}: SHA-256 {actual} differs from the published {path.name} ({expected}): "
            "the file is corrupt or not the original; for other data in the IDX format pass "
            "check_sha256=False"
        )


def resolve_data_dir(
    data_uri: str, *, cache_dir: Path | None = None, check_sha256: bool = True
) -> tuple[Path, str]:
    """The local folder holding the four files of ``data_uri``, fetching them when remote.

    Args:
        data_uri: See the module docstring; ``""`` is :data:`DEFAULT_DATA_URI`.
        cache_dir: Download cache; default :func:`default_cache_dir`. A URL gets its own
            sub-folder, so two sources never mix.
        check_sha256: Verify canonical file names after download (a cached file that fails is
            downloaded again).

    Returns:
        ``(folder, shown)``: the folder and how to name the source in messages.

    Raises:
        ValueError: an unsupported scheme, a malformed ``gs://`` URI, or a download whose
            checksum is wrong.
        FileNotFoundError: a local folder or ``gs://`` prefix that does not exist, or a download
            that failed; the message says how to provide the files without network.
    """
    uri = data_uri.strip() or DEFAULT_DATA_URI
    parts = urllib.parse.urlsplit(uri)
    scheme = parts.scheme.lower()
    cache = cache_dir or default_cache_dir()
    if scheme in ("https", "http"):
        target = cache / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
        for name in FILE_NAMES:
            _download_url(uri.rstrip("/") + f"/{name}.gz", target / f"{name}.gz", check_sha256)
        return target, uri
    if scheme == "gs":
        return _gcs_dir(uri, cache, check_sha256), uri
    if scheme == "file":
        uri = urllib.parse.unquote(parts.path)
    elif scheme and len(scheme) > 1:  # one letter: a Windows drive, not a scheme
        raise ValueError(
            f"data_uri={data_uri!r}: unsupported scheme {scheme!r}; expected https://, gs:// "
            "or a local folder"
        )
    folder = Path(uri).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"data_uri={data_uri!r}: no such folder; expected a folder holding "
            f"{', '.join(FILE_NAMES)} (each .gz or raw)"
        )
    return folder, str(folder)


def locate(folder: Path, name: str, shown: str) -> Path:
    """``<folder>/<name>.gz``, else ``<folder>/<name>``.

    Raises:
        FileNotFoundError: neither exists; the message lists what the folder holds.
    """
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    raise FileNotFoundError(
        f"{shown}: no {name}.gz or {name}; expected the four Fashion-MNIST files "
        f"({', '.join(FILE_NAMES)}); the folder holds {present or 'nothing'}"
    )


def load_split(
    folder: Path, split: str, *, shown: str = "", check_sha256: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N × 28 × 28 uint8) and labels (N uint8, 0 to 9) of ``split`` from ``folder``.

    Raises:
        ValueError: an unknown split, a checksum mismatch (canonical names, ``check_sha256``),
            or a file that fails an IDX check (:mod:`carbon_kfp.fashion.idx`).
        FileNotFoundError: a file is missing.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; expected one of {', '.join(SPLITS)}")
    shown = shown or str(folder)
    arrays = []
    names = []
    for name, ndim in zip(SPLITS[split], (3, 1), strict=True):
        path = locate(folder, name, shown)
        where = f"{shown.rstrip('/')}/{path.name}"
        if check_sha256:
            verify_sha256(path, where)
        arrays.append(idx.parse_idx(idx.decompress(path.read_bytes(), where), where, ndim=ndim))
        names.append(where)
    images, labels = arrays
    idx.check_pair(images, labels, *names)
    return images, labels


def save_split(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Writes a split as an uncompressed ``.npz`` (``images``, ``labels``) at ``path`` (any name),
    through a temporary file and a rename.

    Raises:
        OSError: the folder cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, images=images, labels=labels)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads what :func:`save_split` wrote and checks it again.

    Raises:
        ValueError: not such a file, or arrays that fail the IDX checks.
    """
    try:
        with np.load(path, allow_pickle=False) as saved:
            images, labels = saved["images"], saved["labels"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(
            f"{path}: expected an .npz with uint8 'images' and 'labels' (load_fashion_mnist "
            f"output): {exc}"
        ) from exc
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ValueError(f"{path}: dtypes {images.dtype}/{labels.dtype}, expected uint8/uint8")
    idx.check_pair(images, labels, f"{path} (images)", f"{path} (labels)")
    return images, labels


def _no_data_help(target: Path) -> str:
    return (
        f"Without network access, get the four files ({', '.join(FILE_NAMES)}, .gz) from "
        f"{UPSTREAM} and pass data_uri=<local folder> or data_uri=gs://BUCKET/PREFIX holding "
        f"them, or copy them into {target}"
    )


def _download_url(url: str, destination: Path, check_sha256: bool) -> None:
    """Downloads ``url`` to ``destination`` unless a good copy is already there."""

    def write(tmp: Path) -> None:
        try:
            with open(tmp, "wb") as out, _open_url(url, timeout=60) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
        except OSError as exc:  # URLError, HTTPError and socket timeouts are OSErrors
            raise FileNotFoundError(
                f"cannot download {url} ({exc}). {_no_data_help(destination.parent)}"
            ) from exc

    _fetch(destination, write, url, check_sha256)


def _fetch(
    destination: Path, write: Callable[[Path], None], source: str, check_sha256: bool
) -> None:
    """Fills ``destination`` by ``write(tmp)`` then a rename, unless a good copy is there.

    A canonical name is verified before the rename, so a bad download is never cached.

    Raises:
        ValueError: the download's SHA-256 differs from the published file's.
    """
    expected = SHA256.get(destination.name) if check_sha256 else None
    if destination.is_file() and expected in (None, sha256_of(destination)):
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        if expected is not None and sha256_of(tmp) != expected:
            raise ValueError(
                f"{source}: the download's SHA-256 differs from the published "
                f"{destination.name} ({expected}); nothing was cached"
            )
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def _gcs_dir(uri: str, cache: Path, check_sha256: bool) -> Path:
    bucket_name, _, prefix = uri[len("gs://") :].partition("/")
    if not bucket_name:
        raise ValueError(f"data_uri={uri!r}: expected gs://BUCKET/PREFIX")
    mounted = GCS_FUSE_ROOT / bucket_name / prefix
    if mounted.is_dir():  # Vertex AI mounts buckets with Cloud Storage FUSE
        return mounted
    from google.cloud import storage  # type: ignore[attr-defined]  # lazy: gs:// without /gcs only

    bucket: Any = storage.Client().bucket(bucket_name)
    target = cache / hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    for name in FILE_NAMES:
        blobs = [bucket.blob(f"{prefix.strip('/')}/{n}".lstrip("/")) for n in (f"{name}.gz", name)]
        blob = next((b for b in blobs if b.exists()), None)
        if blob is None:
            raise FileNotFoundError(
                f"{uri}: no object {name}.gz or {name}; expected the four Fashion-MNIST files "
                "under that prefix"
            )
        filename = blob.name.rsplit("/", 1)[-1]
        _fetch(
            target / filename,
            functools.partial(_download_blob, blob),
            f"gs://{bucket_name}/{blob.name}",
            check_sha256,
        )
    return target


def _download_blob(blob: Any, tmp: Path) -> None:
    blob.download_to_filename(str(tmp))
