"""The QC events of structure.json: what joins the title's QC verdict and the daily QC report.

Burned-in subtitles are a QC finding only where the provider's profile forbids them (profile section
`structure.burned_in_subtitles`: `default` policy and `providers: {name: policy}`, a policy being
`allowed`, `info`, `warn` or `fail`); a slate left in the programme is reported as info (its time
tells an editor where to trim). Credits are structure, not defects: no event.

The title's place in a series is checked too (``series_events``): another title of the catalog claiming the same
series/season/episode is `episode_claimed_twice` (warn, naming the others), and a re-delivery whose sidecar moves
the title to another series/season/episode than the one recorded before is `episode_changed` (warn, old and new),
reported with the delivery that made the change.
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


def _label(series: dict | None) -> str:
    if not series:
        return "no series"
    ep = series.get("episode")
    return f"{series.get('series_id')} S{series.get('season')}" + (f"E{ep}" if ep is not None else " (no episode)")


def _same_place(a: dict | None, b: dict | None) -> bool:
    key = ("series_id", "season", "episode")
    return (a is None) == (b is None) and (a is None or all(a.get(k) == b.get(k) for k in key))


def series_changes(previous: dict | None, series: dict | None, delivery_date: str | None) -> list[dict]:
    """The title's recorded series/season/episode changes: those of its previous structure.json plus this delivery's
    change if its series differs from the one recorded before ({from, to, delivery_date}; a first claim is no change)."""
    changes = list((previous or {}).get("series_changes") or [])
    if previous is not None and previous.get("series") and not _same_place(previous.get("series"), series):
        keep = ("series_id", "season", "episode")
        changes.append({"from": {k: previous["series"].get(k) for k in keep}, "to": {k: series.get(k) for k in keep} if series else None,
                        "delivery_date": delivery_date})
    return changes


def series_events(series: dict | None, claims: list[str], changes: list[dict], delivery_date: str | None, duration_s: float) -> list[dict]:
    """`episode_claimed_twice` when other titles claim the same episode; `episode_changed` when this delivery changed it."""
    out = []
    end = max(0.0, float(duration_s or 0.0))
    if series and claims:
        out.append({"kind": "episode_claimed_twice", "severity": "warn", "start_s": 0.0, "end_s": end,
                     "detail": f"{_label(series)} is also claimed by {len(claims)} other title(s): {', '.join(claims[:5])}"
                               + (" ..." if len(claims) > 5 else ""),
                     "metrics": {"series_id": series.get("series_id"), "season": series.get("season"), "episode": series.get("episode"),
                                 "other_titles": list(claims)}})
    last = changes[-1] if changes else None
    if last is not None and last.get("delivery_date") == delivery_date:
        out.append({"kind": "episode_changed", "severity": "warn", "start_s": 0.0, "end_s": end,
                     "detail": f"re-delivery moves the title from {_label(last['from'])} to {_label(last['to'])}"
                               + (f" (delivery {delivery_date})" if delivery_date else ""),
                     "metrics": {"from": last["from"], "to": last["to"]}})
    return out
