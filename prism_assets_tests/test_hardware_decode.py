"""Hardware video decoding (visual/decode/hardware.py): chosen per device kind by configuration (the GPU profile's
NVDEC), never a silent fall back to software when the chosen decoder cannot start."""

from __future__ import annotations

from pathlib import Path

import pytest

from prism_assets.visual.decode.hardware import HardwareDecodeError, hwaccel_for, select_hwaccel

pytestmark = pytest.mark.unit

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "qc_composite.mp4"


def has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def test_selection_per_device_kind():
    assert select_hwaccel({"cpu": "none", "cuda": "cuda"}, "cuda") == "cuda"
    assert select_hwaccel({"cpu": "none", "cuda": "cuda"}, "cpu") == "none"
    assert select_hwaccel("CUDA", "cpu") == "cuda"  # a plain name applies to every kind
    assert select_hwaccel(None, "cuda") == "none" and select_hwaccel({}, "cuda") == "none"
    with pytest.raises(HardwareDecodeError, match="unknown device kinds"):
        select_hwaccel({"gpu": "cuda"}, "cuda")
    with pytest.raises(HardwareDecodeError, match="expected one of"):
        select_hwaccel("nvdec", "cuda")
    with pytest.raises(HardwareDecodeError, match="unknown device kind"):
        select_hwaccel("none", "tpu")


def test_profiles_choose_nvdec_only_for_gpu_nodes_of_prod():
    from prism_assets.resources import PrismProfile

    for name, on_gpu in (("prod", "cuda"), ("dev", "none")):
        setting = PrismProfile(name=name).section("visual").get("hardware_decode")
        assert select_hwaccel(setting, "cuda") == on_gpu
        assert select_hwaccel(setting, "cpu") == "none"


def test_none_is_software_decoding():
    assert hwaccel_for("none") is None


@pytest.mark.skipif(has_cuda(), reason="a CUDA device is present: NVDEC would start")
def test_a_decoder_that_cannot_start_is_one_line_not_a_fallback(tmp_path):
    import av

    from prism_assets.visual.decode import VisualDecodeError, run_visual_pass

    with av.open(str(MEDIA)) as c:
        with pytest.raises(HardwareDecodeError) as err:
            hwaccel_for("cuda", c.streams.video[0].codec_context.codec)
    msg = str(err.value)
    assert "\n" not in msg and "cuda" in msg and "hardware_decode" in msg
    with pytest.raises(VisualDecodeError, match="hardware decode 'cuda'"):
        run_visual_pass(MEDIA, tmp_path / "w", hwaccel="cuda")
