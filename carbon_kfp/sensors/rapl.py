"""RAPL energy counters from the Linux powercap sysfs (``<sysfs_root>/class/powercap``).

Which domains are summed:

* **package** domains (``package-N``, ``package-N-die-M``) by default;
* **dram** domains only when asked (``include_dram=True``), and only under a counted package;
* **psys** (whole platform) is never added to package domains, as it already contains them; it is
  used alone only when the host exposes no package domain;
* ``core`` / ``uncore`` are parts of a package and are never added.

Mirrored counters (one physical counter shown more than once) are counted once:

1. the same zone name under several control types (``intel-rapl:0`` and ``intel-rapl-mmio:0``
   both named ``package-0``) is the same counter: the MSR (``intel-rapl``) zone is kept;
2. package zones with the same package id (``package-0-die-0`` and ``package-0-die-1``) whose
   counters have the same ``max_energy_range_uj`` and read within :data:`MIRROR_TOLERANCE_UJ` of
   each other at ``start()`` (read back to back) are candidate mirrors; at every read, candidates
   whose accumulated energy since ``start()`` also agrees within that tolerance are counted once,
   and any that drift apart are counted separately from the start. Two real counters agree to 1 J
   after boot with probability about 1 J / range (1e-6 for a 262 kJ range); two mirrored reads
   differ only by the energy of the microseconds between them.

Wrap-around: ``max_energy_range_uj`` is the largest value a counter shows, inclusive (the kernel's
``powercap`` ABI: "the range of the energy counter"; ``energy_uj`` runs from 0 to it, then wraps to
0), so a reading equal to it is valid and the wrap modulus is ``max_energy_range_uj + 1``
(:attr:`RaplDomain.modulus_uj`). Every ``sample()`` adds
:func:`carbon_kfp.energy.counter_delta` of each counter, which is exact with at most one wrap per
interval, i.e. while the interval stays below :func:`carbon_kfp.energy.max_safe_interval_s` of the
range at the domain's maximum power (``constraint_0_max_power_uw``, else
:data:`DEFAULT_MAX_POWER_W`): about 17 min for a typical 262 kJ package range at 250 W, so the
tracker's 1-60 s intervals are far inside it. A longer gap is recorded as a warning.

Readability: ``energy_uj`` is root-only since Linux 5.10 (CVE-2020-8694, "Platypus"), so on most
hosts and in unprivileged containers :meth:`RaplMeter.start` raises :class:`RaplUnreadable` with
the fix; the CPU sensor then falls back to its model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

from carbon_kfp.energy import counter_delta, max_safe_interval_s

MIRROR_TOLERANCE_UJ = 1_000_000
"""Two counters that agree within 1 J (read back to back) are treated as one (see module doc)."""
DEFAULT_MAX_POWER_W = 500.0
"""Assumed peak power of a domain without ``constraint_0_max_power_uw``, for the wrap bound."""

DomainKind = Literal["package", "dram", "psys", "other"]
_CONTROL_TYPE_PREFERENCE = ("intel-rapl", "intel-rapl-tpmi", "amd-rapl", "intel-rapl-mmio")
_PACKAGE_NAME = re.compile(r"^package-(\d+)(?:-die-(\d+))?$")
_ZONE_ID = re.compile(r"^(?P<control>[a-z0-9-]+):(?P<index>\d+(?::\d+)*)$")


class RaplError(Exception):
    """A RAPL read failed or made no sense during a run."""


class RaplUnreadable(RaplError):
    """RAPL zones exist but their counters cannot be read; the message names the fix."""


class RaplDomain(NamedTuple):
    """One powercap zone.

    Attributes:
        zone: directory name, e.g. ``"intel-rapl:0:1"``.
        path: the zone directory.
        name: contents of its ``name`` file (``"package-0"``, ``"dram"``, ``"psys"``, ``"core"``).
        kind: what it measures.
        package_id: N of ``package-N[-die-M]``; for a subzone, its parent's; else None.
        control_type: ``"intel-rapl"``, ``"intel-rapl-mmio"``, ...
        parent_zone: zone name of the parent for a subzone (``"intel-rapl:0"``), else None.
        max_energy_range_uj: largest value the counter shows, inclusive. Units: µJ.
        max_power_w: peak power used for the wrap bound. Units: W.
    """

    zone: str
    path: Path
    name: str
    kind: DomainKind
    package_id: int | None
    control_type: str
    parent_zone: str | None
    max_energy_range_uj: int
    max_power_w: float

    @property
    def modulus_uj(self) -> int:
        """The counter's wrap modulus: ``max_energy_range_uj + 1`` (the maximum is a valid
        reading). Units: µJ."""
        return self.max_energy_range_uj + 1

    @property
    def safe_interval_s(self) -> float:
        """Longest interval between reads that cannot hide a second wrap. Units: s."""
        return max_safe_interval_s(self.modulus_uj, self.max_power_w)


def classify(name: str) -> tuple[DomainKind, int | None]:
    """Kind and package id of a zone from its ``name`` file."""
    if match := _PACKAGE_NAME.match(name):
        return "package", int(match.group(1))
    if name == "dram":
        return "dram", None
    if name == "psys":
        return "psys", None
    return "other", None


def discover_domains(sysfs_root: Path) -> tuple[list[RaplDomain], list[str]]:
    """All powercap zones with an energy counter, and notes on zones that had to be skipped.

    Reads only ``name``, ``max_energy_range_uj`` and ``constraint_0_max_power_uw`` (world
    readable); ``energy_uj`` is only checked to exist. Never raises.
    """
    base = sysfs_root / "class" / "powercap"
    notes: list[str] = []
    try:
        entries = sorted(base.iterdir(), key=lambda p: p.name)
    except OSError:
        return [], notes
    found: list[tuple[str, Path, str, str, str | None, int, float]] = []
    for path in entries:
        match = _ZONE_ID.match(path.name)
        if match is None or not (path / "energy_uj").exists():
            continue
        skipped = f"RAPL zone {path} skipped (its energy is not counted)"
        try:
            name = (path / "name").read_text().strip()
        except OSError as exc:
            notes.append(f"{skipped}: cannot read its name ({exc})")
            continue
        try:
            text = (path / "max_energy_range_uj").read_text()
        except OSError as exc:
            notes.append(f"{skipped}: cannot read max_energy_range_uj of {name} ({exc})")
            continue
        try:
            max_range = int(text)
        except ValueError:
            max_range = 0
        if max_range <= 0:
            notes.append(
                f"{skipped}: max_energy_range_uj of {name} is {text.strip()[:40]!r}, expected a "
                "positive integer"
            )
            continue
        try:
            max_power_w = int((path / "constraint_0_max_power_uw").read_text()) / 1e6
        except (OSError, ValueError):
            max_power_w = DEFAULT_MAX_POWER_W
        if max_power_w <= 0:
            max_power_w = DEFAULT_MAX_POWER_W
        control, index = match.group("control"), match.group("index")
        parent = f"{control}:{index.rsplit(':', 1)[0]}" if ":" in index else None
        found.append((path.name, path, name, control, parent, max_range, max_power_w))

    names = {zone: name for zone, _, name, *_ in found}
    domains = []
    for zone, path, name, control, parent, max_range, max_power_w in found:
        kind, package_id = classify(name)
        if parent is not None and package_id is None:
            package_id = classify(names.get(parent, ""))[1]
        domains.append(
            RaplDomain(zone, path, name, kind, package_id, control, parent, max_range, max_power_w)
        )
    return domains, notes


def select_domains(domains: Sequence[RaplDomain], *, include_dram: bool) -> list[RaplDomain]:
    """The domains to sum, before value-based mirror detection (see module doc, rule 1).

    Packages, de-duplicated by zone name (preferring the MSR interface); ``dram`` under a kept
    package when ``include_dram``; ``psys`` alone only when there is no package domain.
    """

    def preference(domain: RaplDomain) -> tuple[int, str]:
        rank = (
            _CONTROL_TYPE_PREFERENCE.index(domain.control_type)
            if domain.control_type in _CONTROL_TYPE_PREFERENCE
            else len(_CONTROL_TYPE_PREFERENCE)
        )
        return rank, domain.zone

    packages: dict[str, RaplDomain] = {}
    for domain in sorted((d for d in domains if d.kind == "package"), key=preference):
        packages.setdefault(domain.name, domain)
    selected = sorted(packages.values(), key=lambda d: d.zone)
    if not selected:
        psys = sorted((d for d in domains if d.kind == "psys"), key=preference)
        return psys[:1]
    if include_dram:
        kept = {d.zone for d in selected}
        selected += sorted(
            (d for d in domains if d.kind == "dram" and d.parent_zone in kept), key=lambda d: d.zone
        )
    return selected


def _circular_distance(a: int, b: int, modulus: int) -> int:
    forward = (a - b) % modulus
    return min(forward, modulus - forward)


def mirror_candidates(
    domains: Sequence[RaplDomain], start_uj: Mapping[str, int], tolerance_uj: int
) -> list[list[str]]:
    """Group zones that may show one counter: same kind and package id (a ``dram`` subzone
    takes its parent's, so the dram zones under two mirrored dies are candidates too), same
    range, start values within ``tolerance_uj`` (circularly) of the group's first zone. Pure.

    Returns:
        Groups of zone names, each in ``domains`` order; singletons for distinct counters.
    """
    groups: list[list[RaplDomain]] = []
    for domain in domains:
        for group in groups:
            first = group[0]
            if (
                domain.kind == first.kind
                and domain.package_id is not None
                and domain.package_id == first.package_id
                and domain.max_energy_range_uj == first.max_energy_range_uj
                and _circular_distance(
                    start_uj[domain.zone], start_uj[first.zone], domain.modulus_uj
                )
                <= tolerance_uj
            ):
                group.append(domain)
                break
        else:
            groups.append([domain])
    return [[d.zone for d in group] for group in groups]


def counted_zones(
    groups: Iterable[Sequence[str]], accumulated_uj: Mapping[str, float], tolerance_uj: float
) -> list[str]:
    """Zones to sum: within each candidate group, one zone per cluster of accumulated energies
    that agree within ``tolerance_uj`` (the first zone of the cluster). Pure."""
    counted: list[str] = []
    for group in groups:
        representatives: list[str] = []
        for zone in group:
            if not any(
                abs(accumulated_uj[zone] - accumulated_uj[rep]) <= tolerance_uj
                for rep in representatives
            ):
                representatives.append(zone)
        counted.extend(representatives)
    return counted


def unreadable_message(path: Path, exc: OSError, sysfs_root: Path) -> str:
    """The one warning for counters that exist but cannot be read, with the fix."""
    return (
        f"RAPL counters exist but cannot be read ({path}: {exc.strerror or exc}); CPU energy "
        "falls back to the CPU-time model. To measure with RAPL, make them readable on the host "
        f"(`sudo chmod a+r {sysfs_root}/class/powercap/intel-rapl:*/energy_uj`; root-only since "
        "Linux 5.10, CVE-2020-8694), or mount the host's /sys read-only into the container and "
        "set CARBON_KFP_SYSFS_ROOT to that mount"
    )


class RaplMeter:
    """Accumulates RAPL energy over a run, optionally scaled per interval to a scope's share.

    Not thread-safe on its own: the CPU sensor serialises calls. ``start`` and ``sample`` raise
    :class:`RaplError` (or :class:`RaplUnreadable`); the caller downgrades.

    Attributes:
        domains: the zones summed (before value-based mirror detection).
        notes: one line per zone skipped at discovery (unreadable ``name``, or
            ``max_energy_range_uj`` unreadable or not a positive integer); the CPU sensor warns
            them.
    """

    def __init__(self, sysfs_root: Path, *, include_dram: bool) -> None:
        self.sysfs_root = sysfs_root
        all_domains, self.notes = discover_domains(sysfs_root)
        self.domains = select_domains(all_domains, include_dram=include_dram)
        self._moduli_uj = {d.zone: d.modulus_uj for d in self.domains}
        self._groups: list[list[str]] = []
        self._last_uj: dict[str, int] = {}
        self._raw_uj: dict[str, float] = {}
        self._scoped_uj: dict[str, list[float]] = {}  # per zone, one sum per share given
        self._last_time_s: float | None = None
        self.longest_interval_s = 0.0

    @property
    def available(self) -> bool:
        """True when at least one countable zone exists (readable or not)."""
        return bool(self.domains)

    @property
    def includes_dram(self) -> bool:
        """Whether the summed domains contain DRAM energy: a ``dram`` domain, or ``psys`` (the
        whole platform, used alone when there is no package domain)."""
        return any(d.kind in ("dram", "psys") for d in self.domains)

    @property
    def safe_interval_s(self) -> float:
        """Longest sampling interval that keeps every counter to one wrap. Units: s."""
        return min((d.safe_interval_s for d in self.domains), default=float("inf"))

    def label(self) -> str:
        """The summed domains, e.g. ``"package-0+package-1+dram"`` (mirrors shown once)."""
        zones = set(counted_zones(self._groups, self._raw_uj, MIRROR_TOLERANCE_UJ))
        names = [d.name for d in self.domains if not self._groups or d.zone in zones]
        return "+".join(names) if names else "none"

    def _read_all(self) -> dict[str, int]:
        values: dict[str, int] = {}
        for domain in self.domains:
            path = domain.path / "energy_uj"
            try:
                value = int(path.read_text())
            except OSError as exc:
                raise RaplUnreadable(unreadable_message(path, exc, self.sysfs_root)) from exc
            except ValueError as exc:
                raise RaplError(f"{path}: not an integer ({exc})") from exc
            if not 0 <= value <= domain.max_energy_range_uj:
                raise RaplError(
                    f"{path}: {value} outside [0, max_energy_range_uj={domain.max_energy_range_uj}]"
                )
            values[domain.zone] = value
        return values

    def start(self, now_s: float) -> None:
        """Take the baseline at monotonic time ``now_s`` and find mirrored counters.

        Raises:
            RaplUnreadable: a counter exists but cannot be read.
            RaplError: no domain, or a malformed counter.
        """
        if not self.domains:
            raise RaplError(f"no RAPL domain under {self.sysfs_root}/class/powercap")
        self._last_uj = self._read_all()
        self._groups = mirror_candidates(self.domains, self._last_uj, MIRROR_TOLERANCE_UJ)
        self._raw_uj = {zone: 0.0 for zone in self._last_uj}
        self._scoped_uj = {zone: [] for zone in self._last_uj}
        self._last_time_s = now_s

    def sample(self, now_s: float, shares: Sequence[float] = (1.0,)) -> None:
        """Add the energy since the previous sample at monotonic time ``now_s``: unscaled to
        :meth:`raw_energy_j`, and scaled by each of ``shares`` (0-1, the scope's part; several
        for several readings of the scope's allocation) to :meth:`energy_j` of that index. Pass
        the same number of shares every time. Nothing is added when a counter cannot be read
        (all are read before any is counted).

        Raises:
            RaplError: a counter became unreadable or malformed.
        """
        if not self._last_uj:
            raise RaplError("sample() before start()")
        values = self._read_all()
        if self._last_time_s is not None:
            self.longest_interval_s = max(self.longest_interval_s, now_s - self._last_time_s)
        for zone, value in values.items():
            delta = counter_delta(self._last_uj[zone], value, self._moduli_uj[zone])
            self._raw_uj[zone] += delta
            scoped = self._scoped_uj[zone]
            scoped.extend([0.0] * (len(shares) - len(scoped)))
            for index, share in enumerate(shares):
                scoped[index] += delta * share
        self._last_uj = values
        self._last_time_s = now_s

    def raw_energy_j(self) -> float:
        """Host energy of the counted zones since ``start()``. Units: J."""
        zones = counted_zones(self._groups, self._raw_uj, MIRROR_TOLERANCE_UJ)
        return sum(self._raw_uj[z] for z in zones) / 1e6

    def energy_j(self, share_index: int = 0) -> float:
        """Energy charged to the scope since ``start()``, each interval scaled by the share at
        ``share_index`` of the ``shares`` given to :meth:`sample`. Units: J."""
        zones = counted_zones(self._groups, self._raw_uj, MIRROR_TOLERANCE_UJ)
        scoped = (self._scoped_uj[z] for z in zones)
        return sum(sums[share_index] for sums in scoped if len(sums) > share_index) / 1e6
