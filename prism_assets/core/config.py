"""Settings dataclasses read from a profile section: unknown keys are an error, not ignored."""

from __future__ import annotations

import dataclasses


def known_settings(cls, cfg: dict | None, what: str) -> dict:
    """A copy of `cfg` after checking every key is a field of the dataclass `cls`; an unknown key
    (a typo in a profile) is a one-line `ValueError("unknown <what>: a, b")`."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(unknown)}")
    return cfg
