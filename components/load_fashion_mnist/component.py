"""``load_fashion_mnist``: fetch, verify and check the four Fashion-MNIST files; hand them on."""

from kfp.dsl import Dataset, Metrics, Output

from .._kit import kit_component


@kit_component
def load_fashion_mnist(
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    kpi_co2: Output[Metrics],
    data_uri: str = "",
    check_sha256: bool = True,
    cache_dir: str = "",
    project_name: str = "fashion-mnist",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    """Reads the IDX files behind ``data_uri``, checks them and writes each split as ``.npz``.

    Args:
        train_data: Output ``.npz`` with ``images`` (N × 28 × 28 uint8) and ``labels`` (N uint8).
            Metadata: ``images``, ``classes``, ``source``, ``format``.
        test_data: Same layout for the 10,000 test images.
        kpi_co2: Energy/CO2 of this step (DESIGN §3 keys; JSON record at ``kpi_co2.path``).
        data_uri: Folder with the four files (``.gz`` or raw): ``https://`` URL (downloaded into
            the cache), ``gs://BUCKET/PREFIX`` (through ``/gcs/`` when mounted, else
            google-cloud-storage), a local folder, or ``""`` for Zalando Research's copy.
        check_sha256: Check files with the canonical names against the published SHA-256;
            ``False`` for other data in the IDX format (the structure is checked either way).
        cache_dir: Download cache; ``""`` is ``$CARBON_KFP_CACHE_DIR`` or ``~/.cache/carbon-kfp``.
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record.
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Region the step runs in (grid intensity of that region); ``""`` leaves
            the location to the tracker defaults.

    Raises:
        ValueError: wrong magic number, truncated file, label of 10 or above, image and label
            counts that differ, a checksum mismatch on a canonical file name, or a bad
            ``data_uri`` (each message names the file and what was expected).
        FileNotFoundError: a missing folder or file, or a download that failed (the message
            says how to provide the files without network).
    """
    from pathlib import Path

    from carbon_kfp.fashion import data
    from carbon_kfp.kfp import track

    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        folder, shown = data.resolve_data_dir(
            data_uri, cache_dir=Path(cache_dir) if cache_dir else None, check_sha256=check_sha256
        )
        for split, artifact in (("train", train_data), ("test", test_data)):
            images, labels = data.load_split(folder, split, shown=shown, check_sha256=check_sha256)
            data.save_split(Path(artifact.path), images, labels)
            artifact.metadata.update(
                {
                    "images": int(images.shape[0]),
                    "classes": sorted(int(c) for c in set(labels.tolist())),
                    "source": shown,
                    "format": "npz (images uint8 N×28×28, labels uint8 N)",
                }
            )
            print(f"{shown}: {split} {images.shape[0]} images")
