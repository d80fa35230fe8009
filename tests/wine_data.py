"""Small, generated wine-quality CSV files for tests (tests never download data)."""

import random
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The 12 columns of the bundled UCI file, read from its header (the data is the reference).
WINE_COLUMNS = tuple(
    name.strip('"')
    for name in (REPO_ROOT / "carbon_kfp/data/wine-quality/winequality-white.csv")
    .read_text(encoding="utf-8")
    .partition("\n")[0]
    .split(";")
)

WineCsv = Callable[..., Path]


def write_wine_csv(
    path: Path,
    rows: int = 120,
    *,
    seed: int = 0,
    duplicates: int = 0,
    sep: str = ";",
    columns: Sequence[str] = WINE_COLUMNS,
    quality: Callable[[float], int] | None = None,
) -> Path:
    """Writes a synthetic wine-quality CSV whose quality follows alcohol (so it is learnable).

    Args:
        path: File to write.
        rows: Distinct data rows.
        seed: Random seed of the values.
        duplicates: Extra rows that repeat the first rows exactly.
        sep: Field separator (the real format uses ``;``).
        columns: Header names (drop one to make a "missing column" file).
        quality: Maps alcohol (8..14) to quality; default 4..8 rising with alcohol.

    Returns:
        ``path``.
    """
    rng = random.Random(seed)
    to_quality = quality or (lambda alcohol: min(8, max(4, round(alcohol - 4 + rng.gauss(0, 0.5)))))
    lines = [sep.join(f'"{name}"' for name in columns)]
    data = []
    for _ in range(rows):
        alcohol = rng.uniform(8.0, 14.0)
        values = {
            "fixed acidity": rng.uniform(4, 10),
            "volatile acidity": rng.uniform(0.1, 0.9),
            "citric acid": rng.uniform(0, 1),
            "residual sugar": rng.uniform(0.5, 20),
            "chlorides": rng.uniform(0.01, 0.2),
            "free sulfur dioxide": rng.uniform(2, 80),
            "total sulfur dioxide": rng.uniform(10, 250),
            "density": rng.uniform(0.987, 1.003),
            "pH": rng.uniform(2.8, 3.8),
            "sulphates": rng.uniform(0.2, 1.0),
            "alcohol": alcohol,
            "quality": to_quality(alcohol),
        }
        data.append(sep.join(f"{values[name]:.6g}" if name in values else "1" for name in columns))
    lines += data + data[:duplicates]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
