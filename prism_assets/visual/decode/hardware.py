"""Hardware video decoding for the visual pass (NVDEC on GPU nodes), chosen per device kind like the CLIP engine.

Setting `visual.hardware_decode`: a device type (`none`, `cuda`, `vaapi`, `qsv`, `vulkan`, `drm`) or a map per device
kind, e.g. `{cpu: none, cuda: cuda}` (the prod profile: NVDEC where the node has a GPU, software decoding elsewhere).
A chosen decoder that cannot start is one clear error, never a silent fall back to software: the step fails and
says so (`hwaccel_for` opens the device once before the lanes start). The choice is recorded in the pass's metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEVICE_KINDS = ("cpu", "cuda")
DEVICE_TYPES = ("none", "cuda", "vaapi", "qsv", "vulkan", "drm")
DEFAULT = {"cpu": "none", "cuda": "none"}


class HardwareDecodeError(ValueError):
    """A hardware-decode setting that cannot be used; str() is one line."""


def select_hwaccel(setting: Any, device_kind: str) -> str:
    """The hardware decoder for a device kind ("cpu" | "cuda") from the setting (a name, a per-kind map, or None)."""
    if device_kind not in DEVICE_KINDS:
        raise HardwareDecodeError(f"unknown device kind {device_kind!r}: expected cpu or cuda")
    if isinstance(setting, Mapping):
        unknown = sorted(set(setting) - set(DEVICE_KINDS))
        if unknown:
            raise HardwareDecodeError(f"visual.hardware_decode: unknown device kinds {unknown}: expected cpu, cuda")
        setting = setting.get(device_kind)
    name = str(setting).strip().lower() if setting not in (None, "", False) else DEFAULT[device_kind]
    if name not in DEVICE_TYPES:
        raise HardwareDecodeError(f"visual.hardware_decode {name!r}: expected one of {', '.join(DEVICE_TYPES)}")
    return name


def hwaccel_for(name: str, codec=None):
    """PyAV's HWAccel for `name` (None for `none`), its device opened once against `codec` (a stream's codec) so that a
    node without it fails here, in one line, instead of in every decode lane."""
    if name == "none":
        return None
    from av.codec.hwaccel import HWAccel, hwdevices_available

    if name not in hwdevices_available():
        raise HardwareDecodeError(f"hardware decode {name!r}: not in this FFmpeg build (it has: {', '.join(hwdevices_available()) or 'none'})")
    accel = HWAccel(device_type=name, allow_software_fallback=False)
    if codec is not None:
        try:
            accel.create(codec)
        except Exception as exc:  # noqa: BLE001 - any failure to open the device is the same one-line error
            raise HardwareDecodeError(f"hardware decode {name!r} not available on this node ({type(exc).__name__}: {exc}); "
                                      "set visual.hardware_decode to none for software decoding") from None
    return accel
