"""Test support: the real Definitions' assets for `materialize`, and media generators with exact
ground truth (shared with the benchmarks, which import them from here)."""

from __future__ import annotations

from dagster import AssetsDefinition, Definitions


def build_defs(settings) -> Definitions:
    from prism_assets.definitions import build_definitions

    return build_definitions(settings)


def assets_of(defs: Definitions, *keys: str) -> list[AssetsDefinition]:
    """The AssetsDefinitions (one per step) that materialize the given asset keys, in order."""
    out: list[AssetsDefinition] = []
    for k in keys:
        ad = defs.get_assets_def(k)
        if all(ad is not a for a in out):
            out.append(ad)
    return out


def signal_assets(settings, *keys: str) -> list[AssetsDefinition]:
    return assets_of(build_defs(settings), *keys)


def video_without_audio(src, dest, frames: int = 48, fps: int = 24):
    """The first `frames` pictures of `src` re-encoded without any audio, in process (PyAV, no
    subprocess): a title whose `has_audio` check fails."""
    from fractions import Fraction

    import av

    with av.open(str(src)) as inp, av.open(str(dest), "w", format="mp4") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream("libx264", rate=fps)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            f = frame.reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vout.encode(f):
                out.mux(p)
        for p in vout.encode():
            out.mux(p)
    return dest
