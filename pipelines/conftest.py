"""Pipeline tests share the component fixtures (kfp.local set up once, generated wine CSVs)."""

from components.conftest import kfp_local, wine_csv

__all__ = ["kfp_local", "wine_csv"]
