"""Greener-region advisor: what the same run would emit in each cloud region.

``emissions_kg = it_energy_kwh x provider PUE x region intensity / 1000`` for every region where
the service (and the accelerator, when given) is offered, ranked lowest first. ``factor`` is a
region's emissions over the baseline's (the region the run used; without one, the greenest
region, so the top row is 1). Intensities come from :func:`carbon_kfp.intensity.resolve_intensity`
(Google's yearly region table for GCP; CodeCarbon's undated legacy table for AWS and Azure) and
PUE from :func:`carbon_kfp.pue.resolve_pue`, so a ranking uses exactly the figures a record would.

Where things run: ``vertex-pipelines`` is the list ``carbon-kfp submit`` checks regions against
(``data/vertex-ai/pipelines_regions.csv``, :func:`carbon_kfp.vertex_checks.pipelines_regions`);
accelerators such as ``nvidia-tesla-t4`` come from ``data/compiled/accelerator_regions.csv``
(provider, offering, region, source URL and date; a partial list, see ``data/PROVENANCE.md``).
AWS and Azure have no offering rows: their rankings consider every region of the intensity table
and say so.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from carbon_kfp.errors import ConfigError, close_matches
from carbon_kfp.location import CLOUD_PROVIDERS
from carbon_kfp.tables import read_rows

ACCELERATOR_REGIONS_PATH = "compiled/accelerator_regions.csv"
PIPELINES_REGIONS_PATH = "vertex-ai/pipelines_regions.csv"
DEFAULT_SERVICE = "vertex-pipelines"
PROVIDERS = CLOUD_PROVIDERS


@dataclass(frozen=True)
class RegionEmissions:
    """One region's figures for the same run.

    Attributes:
        provider: ``"gcp"``, ``"aws"`` or ``"azure"``.
        region: e.g. ``"europe-west4"``.
        intensity_g_per_kwh: grid intensity used. Units: gCO2eq/kWh.
        intensity_year: its data year (``None`` for undated figures).
        intensity_source: e.g. ``"gcp-region"``.
        pue: the provider's PUE applied.
        emissions_kg: the run's operational emissions there. Units: kg CO2eq.
        factor: ``emissions_kg`` over the baseline's (``< 1`` is greener).
    """

    provider: str
    region: str
    intensity_g_per_kwh: float
    intensity_year: int | None
    intensity_source: str
    pue: float
    emissions_kg: float
    factor: float


@dataclass(frozen=True)
class Ranking:
    """Regions ranked by emissions, lowest first, and what the ranking is based on.

    Attributes:
        regions: every candidate region, lowest emissions first (ties by name).
        baseline: the region the factors compare with (the run's, else the top one).
        baseline_is_run: the baseline is the region the run used.
        candidates: where the candidate regions come from, for a footnote.
    """

    regions: tuple[RegionEmissions, ...]
    baseline: RegionEmissions | None
    baseline_is_run: bool
    candidates: str


@functools.lru_cache(maxsize=1)
def _offerings() -> dict[tuple[str, str], tuple[str, ...]]:
    from carbon_kfp.vertex_checks import pipelines_regions

    offered: dict[tuple[str, str], list[str]] = {
        ("gcp", DEFAULT_SERVICE): list(pipelines_regions())
    }
    for row in read_rows(ACCELERATOR_REGIONS_PATH):
        offered.setdefault((row["provider"], row["offering"]), []).append(row["region"])
    return {key: tuple(sorted(set(regions))) for key, regions in offered.items()}


def offerings(provider: str) -> tuple[str, ...]:
    """Services and accelerators with packaged region lists for ``provider``, sorted."""
    return tuple(sorted(offering for p, offering in _offerings() if p == provider))


def offered_regions(provider: str, offering: str) -> tuple[str, ...]:
    """Regions where ``offering`` (a service or an accelerator) is listed, sorted.

    Raises:
        ConfigError: no packaged list for this provider and offering (the message lists those
            there are).
    """
    name = offering.strip().lower()
    regions = _offerings().get((provider, name))
    if regions is None:
        known = offerings(provider)
        raise ConfigError(
            f"no packaged region list for {name!r} on {provider}; known: "
            f"{', '.join(known) or 'none'}{close_matches(name, known)}"
        )
    return regions


def check_year(provider: str, year: int | None) -> None:
    """Refuse a data year the provider's intensity table does not have.

    Raises:
        ConfigError: ``year`` is not in Google's table (the message lists the available years),
            or a year is given for AWS/Azure, whose figures are undated.
    """
    from carbon_kfp.intensity import gcp_data_years

    if year is None:
        return
    if provider != "gcp":
        raise ConfigError(
            f"year={year}: {provider} intensities are undated (CodeCarbon's legacy table); "
            "a data year can be chosen for gcp only"
        )
    years = gcp_data_years()
    if year not in years:
        raise ConfigError(
            f"year={year} has no GCP grid data; available years: {', '.join(map(str, years))}"
        )


def candidate_regions(
    provider: str, service: str | None, accelerator: str | None
) -> tuple[tuple[str, ...], str]:
    """The regions to rank and a note saying where they come from.

    Raises:
        ConfigError: unknown provider, service or accelerator.
    """
    from carbon_kfp.intensity import cloud_regions

    if provider not in PROVIDERS:
        raise ConfigError(f"provider={provider!r}; expected one of {', '.join(PROVIDERS)}")
    unfiltered = not accelerator and (
        service is None or (provider != "gcp" and service == DEFAULT_SERVICE)
    )
    if unfiltered:
        return cloud_regions(provider), f"every {provider} region of the intensity table"
    regions = set(cloud_regions(provider))
    parts = []
    if service:
        regions &= set(offered_regions(provider, service))
        parts.append(f"{service} ({PIPELINES_REGIONS_PATH})")
    if accelerator:
        regions &= set(offered_regions(provider, accelerator))
        parts.append(f"{accelerator} ({ACCELERATOR_REGIONS_PATH}, a partial list)")
    return tuple(sorted(regions)), f"regions listed for {' + '.join(parts)}"


def rank_regions(
    it_energy_kwh: float,
    *,
    provider: str = "gcp",
    year: int | None = None,
    service: str | None = DEFAULT_SERVICE,
    accelerator: str | None = None,
    run_region: str = "",
) -> Ranking:
    """Rank regions by the emissions ``it_energy_kwh`` of device energy would have there.

    Args:
        it_energy_kwh: the run's device energy (CPU + GPU + RAM, before PUE). Units: kWh; >= 0.
        provider: ``"gcp"``, ``"aws"`` or ``"azure"``.
        year: intensity data year (GCP only); ``None`` for the newest.
        service: only regions where it is offered (``None``: no service filter).
        accelerator: also only regions listing it, e.g. ``"nvidia-tesla-t4"``.
        run_region: the region the run used; the factors compare with it (it is ranked even
            when the service lists do not include it).

    Raises:
        ConfigError: a negative or non-finite energy, an unknown provider, service, accelerator
            or run region, or a year without data (the message lists the available years).
    """
    from carbon_kfp.intensity import resolve_intensity
    from carbon_kfp.pue import resolve_pue

    finite = isinstance(it_energy_kwh, (int, float)) and math.isfinite(it_energy_kwh)
    if not finite or it_energy_kwh < 0:
        raise ConfigError(f"energy {it_energy_kwh!r} kWh; expected a finite number >= 0")
    check_year(provider, year)
    regions, candidates = candidate_regions(provider, service, accelerator)
    run_region = run_region.strip().lower()
    pue = resolve_pue(cloud_provider=provider, year=year)

    def figures(region: str) -> tuple[str, float, int | None, str]:
        intensity = resolve_intensity(cloud_provider=provider, cloud_region=region, year=year)
        return region, intensity.g_per_kwh, intensity.year, intensity.source

    rows = [figures(region) for region in regions if region != run_region]
    if run_region:
        rows.append(figures(run_region))
    rows.sort(key=lambda row: (row[1], row[0]))
    if not rows:
        return Ranking((), None, False, candidates)
    baseline_region = run_region or rows[0][0]
    baseline_g = next(row[1] for row in rows if row[0] == baseline_region)

    def entry(region: str, g_per_kwh: float, data_year: int | None, source: str) -> RegionEmissions:
        factor = g_per_kwh / baseline_g if baseline_g > 0 else (1.0 if g_per_kwh == 0 else math.inf)
        return RegionEmissions(
            provider=provider,
            region=region,
            intensity_g_per_kwh=g_per_kwh,
            intensity_year=data_year,
            intensity_source=source,
            pue=pue.value,
            emissions_kg=it_energy_kwh * pue.value * g_per_kwh / 1000.0,
            factor=factor,
        )

    ranked = tuple(entry(*row) for row in rows)
    baseline = next(r for r in ranked if r.region == baseline_region)
    return Ranking(ranked, baseline, bool(run_region), candidates)
