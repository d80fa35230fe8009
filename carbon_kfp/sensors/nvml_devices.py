"""Which NVIDIA GPUs a process may use, and the NVML to ask about them (no measurement here).

Which NVML (import discipline, DESIGN §1)
    ``pynvml`` (package ``nvidia-ml-py``) is imported only when an NVIDIA driver is present:
    ``/proc/driver/nvidia/version``, ``/dev/nvidiactl`` or WSL's ``libnvidia-ml.so.1`` exists
    (:data:`DRIVER_MARKERS`). Without one :func:`load_nvml` answers ``None`` and ``pynvml`` stays
    out of ``sys.modules``. A module with pynvml's API can stand in for it: passed in directly
    (tests, tools), or named by ``CARBON_KFP_NVML_MODULE=package.module`` in the environment
    (subprocesses, exec wrappers), in which case the driver check is skipped.

Which devices
    Those CUDA gives this process: the entries of ``CUDA_VISIBLE_DEVICES`` (indices, ``GPU-``
    UUIDs or unique prefixes of them, ``MIG-<uuid>`` and legacy ``MIG-GPU-<uuid>/<gi>/<ci>``
    instance UUIDs), or every device NVML sees when it is unset. As in CUDA, an empty value or a
    negative index hides everything after it, and an entry that names no device ends the list
    (with a note). A MIG instance resolves to its whole parent GPU, because NVML reports power
    and energy per physical GPU only; the parent is listed once however many of its instances
    are visible, with a note that its energy includes the other instances on it. Indices are
    NVML's (PCI bus) order; CUDA uses the same order only with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` or
    identical GPUs, and a node with mixed models and neither gets a note.

Every function here returns its notes (one line each) instead of warning: the GPU sensor owns the
record's warnings. Nothing here raises except :func:`visible_gpus`, whose caller catches NVML's
errors.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbon_kfp.errors import log_debug

NVML_MODULE_ENV = "CARBON_KFP_NVML_MODULE"
"""Environment variable naming a module to use instead of ``pynvml`` (skips the driver check)."""

DRIVER_MARKERS: tuple[str, ...] = (
    "/proc/driver/nvidia/version",
    "/dev/nvidiactl",
    "/usr/lib/wsl/lib/libnvidia-ml.so.1",
)
"""Any of these existing means an NVIDIA driver is loaded, so importing ``pynvml`` is worth it."""

Note = Callable[[str], None]


def nvidia_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded on this machine (cheap: a few ``stat`` calls)."""
    return any(Path(marker).exists() for marker in DRIVER_MARKERS)


def parse_visible_devices(spec: str | None) -> tuple[str, ...] | None:
    """The device entries of a ``CUDA_VISIBLE_DEVICES`` value, in order.

    Returns:
        ``None`` when ``spec`` is ``None`` (unset: every device is visible); otherwise the
        comma-separated entries, stripped, up to (not including) the first empty entry or negative
        index, as CUDA reads them (``""`` and ``"-1"`` hide all devices).
    """
    if spec is None:
        return None
    entries: list[str] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry or (is_int(entry) and int(entry) < 0):
            break
        entries.append(entry)
    return tuple(entries)


def load_nvml(injected: Any, note: Note) -> Any:
    """The NVML module to use, initialised, or ``None`` (and no import) when there is none.

    Args:
        injected: a module or object with pynvml's API to use as is, or ``None``.
        note: called with one line for each reason NVML is unusable where a driver is present.
    """
    if injected is not None:
        nvml = injected
    elif os.environ.get(NVML_MODULE_ENV):
        name = os.environ[NVML_MODULE_ENV]
        try:
            nvml = importlib.import_module(name)
        except Exception as exc:
            note(f"{NVML_MODULE_ENV}={name!r} cannot be imported ({describe(exc)})")
            return None
    elif not nvidia_driver_present():
        log_debug(
            __name__, "no NVIDIA driver found (%s); GPU method 'none'", ", ".join(DRIVER_MARKERS)
        )
        return None
    else:
        try:
            nvml = importlib.import_module("pynvml")
        except Exception as exc:
            note(
                f"an NVIDIA driver is present but pynvml cannot be imported ({describe(exc)}); "
                "install nvidia-ml-py to measure GPU energy"
            )
            return None
    try:
        nvml.nvmlInit()
    except Exception as exc:
        note(f"nvmlInit failed ({describe(exc)}); GPU energy not measured")
        return None
    return nvml


@dataclass
class VisibleGpu:
    """One physical GPU this process may use.

    Attributes:
        uuid: its ``GPU-...`` UUID (the parent's for MIG instances).
        name: NVML's device name, e.g. ``"Tesla T4"``.
        handle: NVML's handle of the physical GPU.
        visible_as: the ``CUDA_VISIBLE_DEVICES`` entries (or NVML indices) that named it.
        mig_uuids: the MIG instances that resolved to it, if any.
    """

    uuid: str
    name: str
    handle: Any
    visible_as: list[str] = field(default_factory=list)
    mig_uuids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``GPU 0 (Tesla T4, GPU-...)``, for messages."""
        return f"GPU {','.join(self.visible_as)} ({self.name}, {self.uuid})"


def visible_gpus(nvml: Any, entries: tuple[str, ...] | None, note: Note) -> list[VisibleGpu]:
    """The physical GPUs that ``entries`` (from :func:`parse_visible_devices`) name, each once.

    Args:
        nvml: an initialised NVML.
        entries: visible-device entries, or ``None`` for every device NVML sees.
        note: called with one line per entry ignored, MIG parent, or index-order doubt.

    Raises:
        Exception: whatever NVML raises while listing all devices (the caller catches it).
    """
    by_uuid: dict[str, VisibleGpu] = {}

    def add(handle: Any, visible_as: str, mig_uuid: str | None) -> None:
        uuid = text(nvml.nvmlDeviceGetUUID(handle))
        gpu = by_uuid.get(uuid)
        if gpu is None:
            gpu = by_uuid[uuid] = VisibleGpu(uuid, text(nvml.nvmlDeviceGetName(handle)), handle)
        if visible_as not in gpu.visible_as:
            gpu.visible_as.append(visible_as)
        if mig_uuid is not None and mig_uuid not in gpu.mig_uuids:
            gpu.mig_uuids.append(mig_uuid)

    if entries is None:
        for index in range(int(nvml.nvmlDeviceGetCount())):
            add(nvml.nvmlDeviceGetHandleByIndex(index), str(index), None)
        return list(by_uuid.values())

    for entry in entries:
        try:
            handle, mig_uuid = _resolve(nvml, entry)
        except Exception as exc:
            note(
                f"CUDA_VISIBLE_DEVICES entry {entry!r} names no GPU that NVML sees "
                f"({describe(exc)}); as in CUDA, it and the entries after it are ignored"
            )
            break
        add(handle, entry, mig_uuid)
    if any(is_int(e) for e in entries):
        _check_index_order(nvml, note)
    for gpu in by_uuid.values():
        if gpu.mig_uuids:
            note(
                f"{gpu.label}: MIG instance(s) {', '.join(gpu.mig_uuids)} measured as the whole "
                "parent GPU; its energy includes any other MIG instances on it"
            )
    return list(by_uuid.values())


def _resolve(nvml: Any, entry: str) -> tuple[Any, str | None]:
    """NVML handle of the physical GPU an entry names, and the MIG UUID if it named one."""
    if is_int(entry):
        return nvml.nvmlDeviceGetHandleByIndex(int(entry)), None
    if entry.startswith("MIG-GPU-"):  # R450/R460 form: MIG-GPU-<gpu uuid>/<gi>/<ci>
        parent_uuid = "GPU-" + entry[len("MIG-GPU-") :].split("/", 1)[0]
        return _handle_by_uuid(nvml, parent_uuid), entry
    if entry.startswith("MIG-"):
        mig_handle = nvml.nvmlDeviceGetHandleByUUID(entry)
        return nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_handle), entry
    if entry.startswith("GPU-"):
        return _handle_by_uuid(nvml, entry), None
    raise ValueError("not an index, a GPU- UUID or a MIG- UUID")


def _handle_by_uuid(nvml: Any, uuid: str) -> Any:
    """Handle by full UUID, or by a unique prefix as CUDA accepts."""
    try:
        return nvml.nvmlDeviceGetHandleByUUID(uuid)
    except Exception:
        matches = []
        for index in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            if text(nvml.nvmlDeviceGetUUID(handle)).startswith(uuid):
                matches.append(handle)
        if len(matches) == 1:
            return matches[0]
        raise ValueError(f"{len(matches)} GPUs have a UUID starting {uuid!r}") from None


def _check_index_order(nvml: Any, note: Note) -> None:
    if os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID":
        return
    try:
        names = {
            text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i)))
            for i in range(int(nvml.nvmlDeviceGetCount()))
        }
    except Exception as exc:  # only a sanity check
        log_debug(__name__, "cannot list GPU models (%s)", describe(exc))
        return
    if len(names) > 1:
        note(
            "CUDA_VISIBLE_DEVICES uses indices on a node with mixed GPU models "
            f"({', '.join(sorted(names))}); CUDA orders them fastest-first unless "
            "CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML by PCI bus, so the measured GPUs may differ"
        )


def is_int(value: str) -> bool:
    """Whether ``value`` parses as an ``int``."""
    try:
        int(value)
    except ValueError:
        return False
    return True


def text(value: Any) -> str:
    """NVML's string answers are ``bytes`` in old pynvml versions, ``str`` in new ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def describe(exc: BaseException) -> str:
    """``"NVMLError_NotSupported: Not Supported"``: an exception for a one-line message."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
