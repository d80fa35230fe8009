"""``load_wine_data``: read, validate and split the UCI wine-quality data.

The body is self-contained (KFP ships only the function's source to the container), so helpers are
nested and heavy libraries are imported inside it.
"""

from kfp.dsl import Dataset, Metrics, Output

from .._kit import kit_component


@kit_component
def load_wine_data(
    train_data: Output[Dataset],
    test_data: Output[Dataset],
    kpi_co2: Output[Metrics],
    source: str = "",
    quality_threshold: int = 7,
    test_fraction: float = 0.2,
    seed: int = 42,
    project_name: str = "wine-quality",
    pipeline_job: str = "",
    pipeline_task: str = "",
    cloud_location: str = "",
) -> None:
    """Loads a ``;``-separated wine-quality CSV, validates it and makes a stratified split.

    Exact duplicate rows are dropped before splitting (the white-wine file has 937 of them; left in,
    they leak between train and test). The target is ``label = int(quality >= quality_threshold)``.

    Args:
        train_data: Output CSV (comma-separated, header) with the 11 feature columns, ``quality``
            and ``label``. Metadata: ``rows``, ``positive_fraction``, ``features``, ``source``.
        test_data: Same layout as ``train_data`` for the held-out rows.
        kpi_co2: Energy/CO2 of this step (DESIGN §3 keys; JSON record at ``kpi_co2.path``).
        source: ``https://...`` URL, ``gs://bucket/object`` (read through ``/gcs/`` when that is
            mounted, else with google-cloud-storage), a local path, or ``""`` for the white-wine
            CSV bundled with carbon-kfp.
        quality_threshold: Wines with ``quality >= quality_threshold`` are the positive class.
        test_fraction: Share of rows held out for testing, in (0, 1).
        seed: Random seed of the split.
        project_name: Project name written into the emissions record.
        pipeline_job: Pipeline job name for the emissions record (a KFP placeholder in pipelines).
        pipeline_task: Pipeline task name for the emissions record.
        cloud_location: Vertex AI region the step runs in (grid intensity of that region);
            ``""`` leaves the location to the tracker defaults.

    Raises:
        ValueError: The file is not UTF-8 text (binary, UTF-16), is empty, uses ``,`` as
            separator, misses a column, has a row with the wrong number of fields or a
            non-numeric value (the message names the file, line and column), or leaves fewer
            than two classes (or fewer than 2 rows of one class) after thresholding. Also for a
            bad ``test_fraction`` or an unsupported URL scheme.
        FileNotFoundError: A local or ``gs://`` source does not exist.
    """
    import csv
    import math
    import os
    import shutil
    import tempfile
    import urllib.parse
    import urllib.request
    from importlib import resources

    import pandas as pd
    from sklearn.model_selection import train_test_split

    from carbon_kfp.errors import read_utf8
    from carbon_kfp.kfp import track

    feature_columns = [
        "fixed acidity",
        "volatile acidity",
        "citric acid",
        "residual sugar",
        "chlorides",
        "free sulfur dioxide",
        "total sulfur dioxide",
        "density",
        "pH",
        "sulphates",
        "alcohol",
    ]
    expected_columns = [*feature_columns, "quality"]

    def fetch(src: str, workdir: str) -> tuple[str, str]:
        """Returns (local file to read, name to show in messages)."""
        if not src:
            bundled = resources.files("carbon_kfp") / "data/wine-quality/winequality-white.csv"
            return str(bundled), f"bundled {bundled}"
        scheme = urllib.parse.urlsplit(src).scheme.lower()
        if scheme in ("https", "http"):
            local = os.path.join(workdir, "download.csv")
            try:
                with urllib.request.urlopen(src, timeout=60) as response, open(local, "wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:  # URLError and HTTPError are OSErrors
                raise ValueError(f"{src}: download failed: {exc}") from exc
            return local, src
        if scheme == "gs":
            bucket, _, blob_name = src[len("gs://") :].partition("/")
            if not bucket or not blob_name:
                raise ValueError(f"{src}: expected gs://BUCKET/OBJECT")
            fuse_path = os.path.join("/gcs", bucket, blob_name)
            if os.path.isfile(fuse_path):  # Vertex AI mounts buckets with Cloud Storage FUSE
                return fuse_path, src
            from google.cloud import storage  # type: ignore[attr-defined]  # lazy: only gs:// sources without /gcs need it

            blob = storage.Client().bucket(bucket).blob(blob_name)
            if not blob.exists():
                raise FileNotFoundError(f"{src}: no such object")
            local = os.path.join(workdir, "download.csv")
            blob.download_to_filename(local)
            return local, src
        if scheme == "file":
            src = urllib.parse.unquote(urllib.parse.urlsplit(src).path)
        elif scheme and len(scheme) > 1:  # one letter: a Windows drive, not a scheme
            raise ValueError(
                f"{src}: unsupported source scheme {scheme!r}; use https://, gs:// or a local path"
            )
        if not os.path.isfile(src):
            raise FileNotFoundError(f"{src}: no such file")
        return src, src

    def parse(path: str, shown: str) -> pd.DataFrame:
        """Parses and validates the CSV; every error names the file, the line and the column."""
        text = read_utf8(path, shown)  # ValueError naming the file when not UTF-8 text
        if not text.strip():
            raise ValueError(f"{shown}: empty file; expected a ';'-separated header and data rows")
        header_line = text.lstrip().splitlines()[0]
        if ";" not in header_line and "," in header_line:
            raise ValueError(
                f"{shown}: line 1 is separated by ',' but the wine-quality format uses ';' "
                f"(header: {header_line[:80]!r})"
            )
        reader = csv.reader(text.splitlines(), delimiter=";")
        header = [name.strip() for name in next(reader)]
        missing = [name for name in expected_columns if name not in header]
        if missing:
            raise ValueError(
                f"{shown}: missing column(s) {missing}; expected the 12 columns "
                f"{expected_columns} separated by ';'"
            )
        if len(set(header)) != len(header):
            duplicated = sorted({name for name in header if header.count(name) > 1})
            raise ValueError(f"{shown}: duplicated column(s) {duplicated} in the header")
        extra = [name for name in header if name not in expected_columns]
        if extra:
            print(f"{shown}: ignoring extra column(s) {extra}")
        index = {name: header.index(name) for name in expected_columns}
        rows: list[list[float]] = []
        for fields in reader:
            if not fields or all(not field.strip() for field in fields):
                continue  # blank line
            line = reader.line_num
            if len(fields) != len(header):
                raise ValueError(
                    f"{shown}: line {line} has {len(fields)} fields, expected {len(header)} "
                    f"separated by ';'"
                )
            row = []
            for name in expected_columns:
                raw = fields[index[name]].strip()
                try:
                    value = float(raw)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise ValueError(
                        f"{shown}: line {line} (data row {len(rows) + 1}), column {name!r}: "
                        f"non-numeric value {raw!r}"
                    )
                row.append(value)
            rows.append(row)
        if not rows:
            raise ValueError(f"{shown}: empty file; the header has no data rows below it")
        return pd.DataFrame(rows, columns=expected_columns)

    def write_atomically(frame: pd.DataFrame, artifact: Dataset) -> None:
        """Writes the CSV next to its destination, then renames (nothing half-written)."""
        directory = os.path.dirname(artifact.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as handle:
                frame.to_csv(handle, index=False)
            os.replace(tmp, artifact.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction}: expected a number between 0 and 1")

    with track(
        kpi_co2,
        project_name=project_name,
        pipeline_job=pipeline_job,
        pipeline_task=pipeline_task,
        cloud_location=cloud_location,
        output_dir=None,
    ):
        with tempfile.TemporaryDirectory() as workdir:
            path, shown = fetch(source, workdir)
            frame = parse(path, shown)
        rows_read = len(frame)
        frame = frame.drop_duplicates(ignore_index=True)
        duplicates_dropped = rows_read - len(frame)
        frame["label"] = (frame["quality"] >= quality_threshold).astype(int)
        counts = frame["label"].value_counts().to_dict()
        if len(counts) < 2:
            only = "positive" if 1 in counts else "negative"
            raise ValueError(
                f"{shown}: quality_threshold={quality_threshold} leaves one class: all "
                f"{len(frame)} rows are {only} (quality range "
                f"{frame['quality'].min():g}..{frame['quality'].max():g}); need both classes"
            )
        if min(counts.values()) < 2:
            raise ValueError(
                f"{shown}: quality_threshold={quality_threshold} leaves {min(counts.values())} "
                "row in one class; a stratified split needs at least 2"
            )
        try:
            train, test = train_test_split(
                frame, test_size=test_fraction, stratify=frame["label"], random_state=seed
            )
        except ValueError as exc:  # e.g. a test share too small to hold both classes
            raise ValueError(
                f"{shown}: cannot split {len(frame)} rows with test_fraction={test_fraction}: {exc}"
            ) from exc

        for artifact, part in ((train_data, train), (test_data, test)):
            write_atomically(part, artifact)
            artifact.metadata.update(
                {
                    "rows": len(part),
                    "positive_fraction": round(float(part["label"].mean()), 6),
                    "features": feature_columns,
                    "label": f"quality >= {quality_threshold}",
                    "source": shown,
                    "format": "csv",
                }
            )
    print(
        f"{shown}: {rows_read} rows, {duplicates_dropped} exact duplicates dropped, "
        f"{len(train)} train / {len(test)} test, positive fraction "
        f"{frame['label'].mean():.3f} (quality >= {quality_threshold})"
    )
