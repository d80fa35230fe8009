"""Fashion-MNIST files: IDX checks, data_uri resolution, downloads into the cache, checksums."""

import gzip
import http.server
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from carbon_kfp.fashion import data, idx
from tests.fashion_data import REAL_DATA, encode_idx, synthetic_split, write_idx_folder

IMAGES = "train-images-idx3-ubyte"
LABELS = "train-labels-idx1-ubyte"


# ---------------------------------------------------------------- the IDX format (pure)


def test_parse_round_trips_images_and_labels() -> None:
    images, labels = synthetic_split(30)
    assert np.array_equal(idx.parse_idx(encode_idx(images), "x", ndim=3), images)
    assert np.array_equal(idx.parse_idx(encode_idx(labels), "y", ndim=1), labels)


@pytest.mark.parametrize(
    ("magic", "found"),
    [
        (bytes([0, 0, 8, 1]), "0x00000801"),  # a labels file where images are expected
        (bytes([0, 0, 0x0D, 3]), "0x00000d03"),  # float32 elements
        (b"PK\x03\x04", "0x504b0304"),  # not IDX at all (a zip)
    ],
)
def test_wrong_magic_names_found_and_expected(magic: bytes, found: str) -> None:
    images, _ = synthetic_split(3)
    with pytest.raises(ValueError, match=rf"imgs: magic number {found}, expected 0x00000803"):
        idx.parse_idx(encode_idx(images, magic=magic), "imgs", ndim=3)


def test_truncated_data_says_how_much_is_missing() -> None:
    images, _ = synthetic_split(3)
    cut = encode_idx(images)[:-100]
    with pytest.raises(ValueError, match=r"imgs: truncated: .*3 × 28 × 28 = 2352 bytes.*100 miss"):
        idx.parse_idx(cut, "imgs", ndim=3)


@pytest.mark.parametrize("size", [0, 2, 10])
def test_truncated_header(size: int) -> None:
    images, _ = synthetic_split(3)
    with pytest.raises(ValueError, match=r"imgs: (.*too short|truncated header)"):
        idx.parse_idx(encode_idx(images)[:size], "imgs", ndim=3)


def test_trailing_bytes_are_an_error() -> None:
    _, labels = synthetic_split(5)
    with pytest.raises(ValueError, match="lbls: 3 unexpected bytes after the 5 data"):
        idx.parse_idx(encode_idx(labels) + b"xyz", "lbls", ndim=1)


def test_truncated_gzip_is_an_error() -> None:
    _, labels = synthetic_split(50)
    with pytest.raises(ValueError, match=r"lbls\.gz: corrupt or truncated gzip"):
        idx.decompress(gzip.compress(encode_idx(labels))[:-12], "lbls.gz")


def test_raw_bytes_pass_decompress_unchanged() -> None:
    assert idx.decompress(b"\x00\x00\x08\x01", "x") == b"\x00\x00\x08\x01"


def test_label_ten_names_its_index() -> None:
    labels = np.array([0, 9, 10, 3, 255], dtype=np.uint8)
    with pytest.raises(ValueError, match=r"lbls: label 10 at index 2 \(2 labels out of range\)"):
        idx.check_labels(labels, "lbls")


def test_counts_that_differ() -> None:
    images, labels = synthetic_split(4)
    with pytest.raises(ValueError, match="imgs has 4 images but lbls has 3 labels"):
        idx.check_pair(images, labels[:3], "imgs", "lbls")


def test_images_of_another_size() -> None:
    with pytest.raises(ValueError, match=r"imgs: images of shape \(2, 32, 32\)"):
        idx.check_images(np.zeros((2, 32, 32), np.uint8), "imgs")
    with pytest.raises(ValueError, match="no images"):
        idx.check_images(np.zeros((0, 28, 28), np.uint8), "imgs")


# ---------------------------------------------------------------- folders and checksums


@pytest.mark.parametrize("gz", [True, False])
def test_load_split_reads_gz_or_raw(tmp_path: Path, gz: bool) -> None:
    folder = write_idx_folder(tmp_path, train=40, test=20, gz=gz)
    images, labels = data.load_split(folder, "train", check_sha256=False)
    expected_images, expected_labels = synthetic_split(40)
    assert np.array_equal(images, expected_images) and np.array_equal(labels, expected_labels)
    assert data.load_split(folder, "test", check_sha256=False)[0].shape == (20, 28, 28)


def test_checksum_mismatch_on_a_canonical_name(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path, train=40, test=20)
    with pytest.raises(ValueError, match=f"{IMAGES}.gz: SHA-256 [0-9a-f]{{64}} differs") as error:
        data.load_split(folder, "train")
    assert data.SHA256[f"{IMAGES}.gz"] in str(error.value)
    assert "check_sha256=False" in str(error.value)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda raw: raw[:-7], "truncated"),
        (lambda raw: b"\x00\x00\x08\x03" + raw[4:], "magic number 0x00000803"),
    ],
)
def test_corrupt_label_file_in_a_folder_names_the_file(
    tmp_path: Path, corrupt: object, message: str
) -> None:
    folder = write_idx_folder(tmp_path, train=40, test=20, gz=False)
    path = folder / LABELS
    path.write_bytes(corrupt(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(ValueError, match=f"{LABELS}: .*{message}"):
        data.load_split(folder, "train", check_sha256=False)


def test_label_out_of_range_in_a_folder(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path, train=40, test=20, gz=False)
    labels = np.full(40, 3, np.uint8)
    labels[7] = 12
    (folder / LABELS).write_bytes(encode_idx(labels))
    with pytest.raises(ValueError, match=f"{LABELS}: label 12 at index 7"):
        data.load_split(folder, "train", check_sha256=False)


def test_missing_file_lists_what_is_there(tmp_path: Path) -> None:
    folder = write_idx_folder(tmp_path, train=40, test=20)
    (folder / f"{LABELS}.gz").unlink()
    with pytest.raises(FileNotFoundError, match=f"no {LABELS}.gz or {LABELS}.*holds"):
        data.load_split(folder, "train", check_sha256=False)


@pytest.mark.parametrize("form", ["plain", "file-uri"])
def test_local_folder(tmp_path: Path, form: str) -> None:
    folder = write_idx_folder(tmp_path / "d", train=10, test=10)
    uri = str(folder) if form == "plain" else folder.as_uri()
    assert data.resolve_data_dir(uri, cache_dir=tmp_path / "cache")[0] == folder
    assert not (tmp_path / "cache").exists()


def test_missing_folder_and_bad_scheme(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder; expected a folder holding"):
        data.resolve_data_dir(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="unsupported scheme 's3'; expected https://, gs://"):
        data.resolve_data_dir("s3://bucket/fashion")
    with pytest.raises(ValueError, match="expected gs://BUCKET/PREFIX"):
        data.resolve_data_dir("gs:///fashion")


def test_gs_uri_reads_the_fuse_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "GCS_FUSE_ROOT", tmp_path / "gcs")
    folder = write_idx_folder(tmp_path / "gcs" / "bucket" / "fashion", train=10, test=10)
    assert data.resolve_data_dir("gs://bucket/fashion", cache_dir=tmp_path / "c")[0] == folder


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.CACHE_ENV, "/srv/cache")
    assert data.default_cache_dir() == Path("/srv/cache/fashion-mnist")
    monkeypatch.delenv(data.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")
    assert data.default_cache_dir() == Path("/x/carbon-kfp/fashion-mnist")


# ---------------------------------------------------------------- downloads


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A real HTTP server on 127.0.0.1 serving synthetic files; yields (url, folder, requests)."""
    folder = write_idx_folder(tmp_path / "served", train=30, test=10)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", folder, requests
    server.shutdown()
    thread.join()


def test_download_goes_to_the_cache_once(
    tmp_path: Path, http_folder: tuple[str, Path, list[str]]
) -> None:
    url, served, requests = http_folder
    cache = tmp_path / "cache"
    folder, shown = data.resolve_data_dir(url, cache_dir=cache, check_sha256=False)
    assert shown == url and cache in folder.parents
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in data.FILE_NAMES)
    assert (folder / f"{IMAGES}.gz").read_bytes() == (served / f"{IMAGES}.gz").read_bytes()
    assert len(requests) == 4
    data.resolve_data_dir(url, cache_dir=cache, check_sha256=False)
    assert len(requests) == 4  # served from the cache


def test_download_with_a_wrong_checksum_caches_nothing(
    tmp_path: Path, http_folder: tuple[str, Path, list[str]]
) -> None:
    url, _, _ = http_folder
    with pytest.raises(ValueError, match="download's SHA-256 differs from the published"):
        data.resolve_data_dir(url, cache_dir=tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_no_network_says_how_to_provide_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def offline(url: str, timeout: float) -> object:
        opened.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(data, "_open_url", offline)
    with pytest.raises(FileNotFoundError) as error:
        data.resolve_data_dir("", cache_dir=tmp_path / "cache")
    message = str(error.value)
    assert opened == [data.DEFAULT_DATA_URI + f"{data.FILE_NAMES[0]}.gz"]
    assert "name resolution" in message and "Without network access" in message
    assert "data_uri=<local folder>" in message and "gs://BUCKET/PREFIX" in message
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


# ---------------------------------------------------------------- between steps


def test_saved_split_round_trips(tmp_path: Path) -> None:
    images, labels = synthetic_split(12)
    data.save_split(tmp_path / "train_data", images, labels)
    back_images, back_labels = data.read_split(tmp_path / "train_data")
    assert np.array_equal(back_images, images) and np.array_equal(back_labels, labels)
    assert [p.name for p in tmp_path.iterdir()] == ["train_data"]


def test_reading_something_else_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "wine.csv").write_text("a;b\n1;2\n")
    with pytest.raises(ValueError, match=r"wine\.csv: expected an \.npz with uint8 'images'"):
        data.read_split(tmp_path / "wine.csv")


# ---------------------------------------------------------------- the published files


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"the canonical files are not in {REAL_DATA}")
def test_published_files_pass_every_check() -> None:
    train = data.load_split(REAL_DATA, "train")
    test = data.load_split(REAL_DATA, "test")
    assert train[0].shape == (60000, 28, 28) and test[0].shape == (10000, 28, 28)
    assert np.bincount(train[1]).tolist() == [6000] * 10
    assert np.bincount(test[1]).tolist() == [1000] * 10
