"""The QC events of structure.json: what joins the title's QC verdict and the daily QC report.

Burned-in subtitles are a QC finding only where the provider's profile forbids them (profile section
`structure.burned_in_subtitles`: `default` policy and `providers: {name: policy}`, a policy being
`allowed`, `info`, `warn` or `fail`); a slate left in the programme is reported as info (its time
tells an editor where to trim). Credits are structure, not defects: no event.
"""

from __future__ import annotations

POLICIES = ("allowed", "info", "warn", "fail")


def burned_in_policy(provider: str | None, cfg: dict) -> str:
    providers = cfg.get("providers") or {}
    policy = providers.get(provider, cfg.get("default", "allowed")) if provider else cfg.get("default", "allowed")
    if policy not in POLICIES:
        raise ValueError(f"structure.burned_in_subtitles: policy {policy!r} is not one of {', '.join(POLICIES)}")
    return policy


def structure_events(doc: dict, provider: str | None, cfg: dict) -> list[dict]:
    out = []
    burned = doc.get("burned_in_subtitles") or {}
    policy = burned_in_policy(provider, cfg)
    if burned.get("lines") and policy != "allowed":
        out.append({"kind": "burned_in_subtitles", "severity": policy, "start_s": float(burned["first_s"]), "end_s": float(burned["last_s"]),
                    "detail": f"burned-in subtitles in the picture: {burned['lines']} line(s) over {burned['seconds']:.1f} s "
                              f"from {burned['first_s']:.1f} s (provider {provider or 'default'}: {policy})",
                    "metrics": {"lines": burned["lines"], "seconds": burned["seconds"], "languages": burned.get("languages") or []}})
    for s in doc.get("slates") or []:
        out.append({"kind": "slate", "severity": "info", "start_s": float(s["start_s"]), "end_s": float(s["end_s"]),
                    "detail": f"slate from {s['start_s']:.1f} s to {s['end_s']:.1f} s: {str(s.get('text') or '')[:80]!r}", "metrics": {}})
    return out
