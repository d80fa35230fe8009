"""Build real records for tests from explicit readings (no sensors, no clocks)."""

from __future__ import annotations

from carbon_kfp.intensity import resolve_intensity
from carbon_kfp.pue import resolve_pue
from carbon_kfp.record import EmissionsRecord, RunContext, Snapshot, build_record
from carbon_kfp.sensors.base import Method, Reading

#: The kpi_co2 Metrics keys DESIGN §3 requires on every record.
DESIGN_METRIC_KEYS = {
    "emissions_kg",
    "emissions_low_kg",
    "emissions_high_kg",
    "energy_kwh",
    "cpu_energy_kwh",
    "gpu_energy_kwh",
    "ram_energy_kwh",
    "duration_s",
    "cpu_power_w",
    "gpu_power_w",
    "ram_power_w",
    "carbon_intensity_g_per_kwh",
    "pue",
    # grams and watt-hours for people reading the Vertex AI Node Info panel
    "co2_g",
    "co2_low_g",
    "co2_high_g",
    "energy_wh",
}


def make_context(intensity_g_per_kwh: float = 400.0, pue: float = 1.1, **tags: str) -> RunContext:
    return RunContext(
        project_name="test",
        run_id="run-1",
        intensity=resolve_intensity(carbon_intensity_g_per_kwh=intensity_g_per_kwh),
        pue=resolve_pue(pue=pue),
        scope="process",
        **tags,  # type: ignore[arg-type]
    )


def make_record(
    *,
    cpu_j: float = 3.6e6,
    gpu_j: float = 0.0,
    ram_j: float = 0.0,
    duration_s: float = 100.0,
    cpu_method: Method = "rapl",
    **kwargs: object,
) -> EmissionsRecord:
    """A record of one window whose CPU/GPU/RAM used the given joules."""
    end = Snapshot(
        duration_s,
        {
            "cpu": Reading(cpu_j, cpu_method, capacity=2, model="Test CPU", utilization_percent=50),
            "gpu": Reading(gpu_j, "nvml-energy" if gpu_j else "none"),
            "ram": Reading(ram_j, "constant", capacity=4.0, used=1.0),
        },
    )
    return build_record(
        make_context(),
        Snapshot(0.0, {}),
        end,
        timestamp="2026-11-27T00:00:00+00:00",
        status="completed",
        **kwargs,  # type: ignore[arg-type]
    )
