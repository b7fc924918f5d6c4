"""What each audio track of a title is: its language (only when there is speech to decide on) and
its role (`original`, `dub`, `music_and_effects`, `commentary`, `silent`, `unknown`), each with the evidence.

Pure decisions over measurements made elsewhere (speech from the VAD, the language model's answer,
the container's tags, the dub alignment of sync.py), so they are tested exactly and explained in
the output: a role is never a bare label, `unknown` included (it says what was missing).

A track with no audio at all (audio.json `silent`: no block above the -70 LUFS gate; `digital_silence`: every
sample zero) is `silent`, never music and effects (no speech on it, but no music or effects either).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from ..audio.analysis import MIN_SPEECH_S, iso639_1
from ..audio.analysis import decide_language as decide_on_speech

ROLES = ("original", "dub", "music_and_effects", "commentary", "silent", "unknown")
ME_MAX_SPEECH_RATIO = 0.02  # a music-and-effects track: speech on at most 2 % of its length

TITLE_HINTS = (  # container track titles / handler names, case-insensitive
    ("music_and_effects", re.compile(r"\b(m\s*&\s*e|m\+e|music\s*(and|&)\s*effects|international\s+track|\bi\.?t\.?\b)", re.I)),
    ("commentary", re.compile(r"\b(commentary|director'?s?\s+track|kommentar|commentaire)\b", re.I)),
)


@dataclass
class TrackEvidence:
    index: int
    duration_s: float
    speech_s: float
    container_language: str | None = None
    title: str | None = None
    default: bool = False
    detected_language: str | None = None
    language_probability: float | None = None
    sync_confidence: float | None = None  # alignment with the original's music and effects (sync.py)
    silent: bool = False  # audio.json: no block above the -70 LUFS gate
    digital_silence: bool = False  # audio.json: every sample zero


@dataclass
class TrackDecision:
    index: int
    language: str | None
    language_note: str
    role: str
    evidence: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def decide_language(t: TrackEvidence) -> tuple[str | None, str]:
    """(language, why): the detected language when it was decided on enough speech, else None
    (the rule of audio.analysis.decide_language, which audio.json uses too)."""
    return decide_on_speech(t.speech_s, t.detected_language, t.language_probability)


def base_language(lang: str | None) -> str | None:
    """ISO 639-1 for comparison: 'eng', 'en' and 'en-GB' are one language (audio.analysis.iso639_1)."""
    if not lang:
        return None
    base = lang.lower().replace("_", "-").split("-")[0]
    return iso639_1(base) or base


def decide_roles(tracks: list[TrackEvidence], original_language: str | None = None) -> list[TrackDecision]:
    """A role per track. The original is the track whose language is the title's original language
    (sidecar), else the default-flagged track, else the first track with speech; dubs are the other
    speech tracks aligned with it in another language."""
    decisions = {t.index: TrackDecision(t.index, *decide_language(t), "unknown") for t in tracks}
    hinted: dict[int, tuple[str, str]] = {}
    for t in tracks:
        for role, pattern in TITLE_HINTS:
            if t.title and pattern.search(t.title):
                hinted[t.index] = (role, f"track title {t.title!r}")
                break
    speech = {t.index: t.speech_s / t.duration_s if t.duration_s > 0 else 0.0 for t in tracks}
    # silent: no audio at all (whatever its title says); never a candidate for any other role
    for t in tracks:
        if t.silent or t.digital_silence:
            d = decisions[t.index]
            d.role = "silent"
            d.evidence.append(f"digitally silent: every sample of its {t.duration_s:.0f} s is zero" if t.digital_silence
                              else f"silent: no audio above the -70 LUFS gate in {t.duration_s:.0f} s")
            if t.index in hinted:
                d.evidence.append(f"{hinted[t.index][1]} names it {hinted[t.index][0].replace('_', ' ')}, but it carries no sound")
    # music and effects: named so, or (nearly) no speech over a track of real length
    for t in tracks:
        if decisions[t.index].role == "silent":
            continue
        if hinted.get(t.index, ("",))[0] == "music_and_effects" or (t.duration_s >= 10 and speech[t.index] <= ME_MAX_SPEECH_RATIO):
            d = decisions[t.index]
            d.role = "music_and_effects"
            d.evidence.append(hinted[t.index][1] if t.index in hinted else f"speech on {speech[t.index]:.1%} of {t.duration_s:.0f} s")
        elif hinted.get(t.index, ("",))[0] == "commentary":
            decisions[t.index].role = "commentary"
            decisions[t.index].evidence.append(hinted[t.index][1])
    candidates = [t for t in tracks if decisions[t.index].role == "unknown" and t.speech_s >= MIN_SPEECH_S]
    original = None
    want = base_language(original_language)
    if want:
        original = next((t for t in candidates if base_language(decisions[t.index].language or t.container_language) == want), None)
        why = f"language {want} is the title's original language"
    if original is None:
        original = next((t for t in candidates if t.default), None)
        why = "the container's default track"
    if original is None and candidates:
        original, why = candidates[0], "the first track with speech"
    if original is None:
        return _explain_unknown(tracks, decisions, speech)
    decisions[original.index].role = "original"
    decisions[original.index].evidence.append(why)
    orig_lang = base_language(decisions[original.index].language or original.container_language)
    for t in candidates:
        if t is original:
            continue
        d = decisions[t.index]
        lang = base_language(d.language or t.container_language)
        aligned = t.sync_confidence is not None and t.sync_confidence >= 0.2
        if lang and orig_lang and lang != orig_lang and aligned:
            d.role = "dub"
            d.evidence += [f"speech in {lang}, the original in {orig_lang}", f"aligned with the original's music and effects (confidence {t.sync_confidence:.2f})"]
        elif lang and orig_lang and lang == orig_lang and aligned:
            d.role = "commentary" if speech[t.index] > speech[original.index] * 1.3 else "unknown"
            d.evidence.append(f"same language as the original ({lang}) over the same music and effects"
                              + (f", more speech ({speech[t.index]:.0%} vs {speech[original.index]:.0%})" if d.role == "commentary" else ""))
        else:
            d.evidence.append("speech, but " + ("not aligned with the original" if not aligned else "its language is not known"))
    return _explain_unknown(tracks, decisions, speech)


def _explain_unknown(tracks: list[TrackEvidence], decisions: dict[int, TrackDecision], speech: dict[int, float]) -> list[TrackDecision]:
    """Every decision in track order, each with at least one evidence line: an `unknown` without one says why no
    rule decided it (too little speech to be an original or a dub, too much or too short for music and effects)."""
    for t in tracks:
        d = decisions[t.index]
        if d.evidence:
            continue
        if t.duration_s <= 0:
            d.evidence.append("no decoded audio (duration 0 s): nothing to decide on")
        elif t.speech_s < MIN_SPEECH_S:
            why = [f"speech {t.speech_s:.1f} s, under the {MIN_SPEECH_S:.0f} s an original or a dub needs"]
            if t.duration_s < 10:
                why.append(f"a {t.duration_s:.1f}-s track is too short to call music and effects by its speech")
            else:
                why.append(f"speech on {speech[t.index]:.1%} of {t.duration_s:.0f} s, over the {ME_MAX_SPEECH_RATIO:.0%} music and effects allow")
            d.evidence.append("; ".join(why))
        else:
            d.evidence.append(f"speech {t.speech_s:.1f} s, but no rule decided its role")
    return [decisions[t.index] for t in tracks]
