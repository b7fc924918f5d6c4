"""What each audio track of a title is: its language (only when there is speech to decide on) and
its role (`original`, `dub`, `music_and_effects`, `commentary`, `audio_description`, `silent`, `unknown`), each with the evidence.

Pure decisions over measurements made elsewhere (speech from the VAD, the language model's answer,
the container's tags, the dub alignment of sync.py), so they are tested exactly and explained in
the output: a role is never a bare label, `unknown` included (it says what was missing).

A track with no audio at all (audio.json `silent`: no block above the -70 LUFS gate; `digital_silence`: every
sample zero) is `silent`, never music and effects (no speech on it, but no music or effects either).

An audio description (AD: narration for the blind over the original mix, its speech in the original's
dialogue gaps) is `audio_description`, from its metadata (disposition `visual_impaired`, a title or
handler name "AD", "Audio Description", "described", ...) or from its content (`described_evidence`:
the original's mix, its dialogue included, nearly unchanged, plus speech confined to the original's
dialogue gaps). Commentary stays `commentary`: disposition `comment`, a title "commentary", or speech
over the original that is not confined to its gaps.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.language import MIN_SPEECH_S, base_language, decide_on_speech

ROLES = ("original", "dub", "music_and_effects", "commentary", "audio_description", "silent", "unknown")
ME_MAX_SPEECH_RATIO = 0.02  # a music-and-effects track: speech on at most 2 % of its length

TITLE_HINTS = (  # container track titles / handler names, case-insensitive
    ("music_and_effects", re.compile(r"\b(m\s*&\s*e|m\+e|music\s*(and|&)\s*effects|international\s+track|\bi\.?t\.?\b)", re.I)),
    ("commentary", re.compile(r"\b(commentary|director'?s?\s+track|kommentar|commentaire)\b", re.I)),
    ("audio_description", re.compile(r"((?-i:\bAD\b)|\baudio[\s-]*descri(ption|bed)|\bdescri(bed|ptive)\s+(video|audio)|\bdescribed\b|\bvideo\s+description"
                                     r"|\bDVS\b|\baudiodes[ck]ri[pb]|\baudio-?descripci|\bh[öo]rfilm)", re.I)),
)
DISPOSITION_HINTS = (("visual_impaired", "audio_description"), ("descriptions", "audio_description"), ("comment", "commentary"))


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
    handler_name: str | None = None  # audio.json `handler_name` (MP4/MOV)
    dispositions: tuple[str, ...] = ()  # audio.json `dispositions` (visual_impaired, comment, ...)
    described: "DescribedEvidence | None" = None  # the track against the original's mix (described_evidence)


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
    (core.language.decide_on_speech, the rule audio.json uses too)."""
    return decide_on_speech(t.speech_s, t.detected_language, t.language_probability)


def decide_roles(tracks: list[TrackEvidence], original_language: str | None = None) -> list[TrackDecision]:
    """A role per track. The original is the track whose language is the title's original language
    (sidecar), else the default-flagged track, else the first track with speech; dubs are the other
    speech tracks aligned with it in another language."""
    decisions = {t.index: TrackDecision(t.index, *decide_language(t), "unknown") for t in tracks}
    hinted = {t.index: h for t in tracks if (h := metadata_hint(t)) is not None}
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
        elif hinted.get(t.index, ("",))[0] in ("commentary", "audio_description"):
            decisions[t.index].role = hinted[t.index][0]
            decisions[t.index].evidence.append(hinted[t.index][1])
            if t.described is not None:
                decisions[t.index].evidence += content_role(t.described)[1]
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
        if _decide_on_content(t, d, lang, orig_lang):  # audio description / commentary from the content
            continue
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


# ---------------------------------------------------------------------------------------------- audio description


def metadata_hint(t: TrackEvidence) -> tuple[str, str] | None:
    """(role, why) from the container: a disposition (visual_impaired / descriptions -> audio description,
    comment -> commentary) first, then the track title, then the handler name (TITLE_HINTS)."""
    for disp, role in DISPOSITION_HINTS:
        if disp in (t.dispositions or ()):
            return role, f"disposition {disp}"
    for what, text in (("track title", t.title), ("handler name", t.handler_name)):
        for role, pattern in TITLE_HINTS:
            if text and pattern.search(text):
                return role, f"{what} {text!r}"
    return None


AD_MIN_SIMILARITY = 0.8  # the original's dialogue windows nearly unchanged in the track
AD_MIN_IN_GAPS = 0.8  # share of the extra speech in the original's dialogue gaps
MIN_EXTRA_SPEECH_S = 2.0
DIVERGE_RHO = 0.6  # a window whose correlation with the original is below this carries something else


@dataclass
class DescribedEvidence:
    """A track measured against the original's mix (`described_evidence`)."""

    mix_similarity: float | None  # median correlation with the original in the original's dialogue windows
    extra_speech_s: float  # the track's speech where it diverges from the original
    extra_in_gaps: float | None  # share of that extra speech in the original's dialogue gaps
    mix_gain_db: float | None  # the track's level against the original where they agree
    lag_ms: float  # fine alignment found (on top of the given offset)
    windows: int


def _in_regions(starts: np.ndarray, window_s: float, regions, share: float = 0.5) -> np.ndarray:
    cover = np.zeros(len(starts))
    for a, b in regions or []:
        cover += np.clip(np.minimum(starts + window_s, b) - np.maximum(starts, a), 0, None)
    return cover >= share * window_s


def described_evidence(original: np.ndarray, other: np.ndarray, rate: int, original_speech, other_speech=None, offset_s: float = 0.0,
                       window_s: float = 0.5, max_lag_ms: float = 20.0) -> DescribedEvidence:
    """`other` against the original's mix (mono, same rate, e.g. the 16 kHz WAVs): per `window_s` window the
    correlation of the two (after the offset, refined by up to `max_lag_ms`); the windows inside the
    original's speech regions say whether its dialogue is in `other` unchanged (`mix_similarity`); the
    windows where `other` diverges (correlation < 0.6) and has speech (`other_speech`, else any sound)
    are its extra speech, and `extra_in_gaps` says how much of it lies in the original's dialogue gaps.
    Regions are (start_s, end_s) in each signal's own time; `offset_s`: other is late by this much."""
    from scipy.signal import correlate

    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(other, dtype=np.float64)
    off = int(round(offset_s * rate))
    b = b[off:] if off >= 0 else np.concatenate([np.zeros(-off), b])
    w, lag_max = int(window_s * rate), int(max_lag_ms * rate / 1000)
    n = min(len(a), len(b)) // w
    if n < 4:
        return DescribedEvidence(None, 0.0, None, None, 0.0, n)
    ea = (a[: n * w].reshape(n, w) ** 2).sum(axis=1)
    score = np.zeros(2 * lag_max + 1)
    for i in np.argsort(ea)[::-1][: min(40, n)]:  # the loudest windows of the original decide the fine lag
        s0, s1 = i * w, (i + 1) * w
        seg = b[max(0, s0 - lag_max): s1 + lag_max]
        pad = (max(0, lag_max - s0), max(0, s1 + lag_max - len(b)))
        seg = np.pad(seg, pad)
        c = correlate(seg, a[s0:s1], mode="valid")
        score += c / (np.sqrt(ea[i] * max((seg * seg).sum(), 1e-20)) or 1.0)
    lag = int(np.argmax(score)) - lag_max
    b = b[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag), b])
    n = min(len(a), len(b)) // w
    A, B = a[: n * w].reshape(n, w), b[: n * w].reshape(n, w)
    ea, eb = (A * A).sum(axis=1), (B * B).sum(axis=1)
    floor = w * 10 ** (-60 / 10)  # -60 dBFS mean square
    active = (ea > floor) & (eb > floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(active, (A * B).sum(axis=1) / np.sqrt(ea * eb), np.nan)
    starts = np.arange(n) * window_s
    dialogue = _in_regions(starts, window_s, original_speech)
    others = _in_regions(starts, window_s, other_speech) if other_speech is not None else eb > floor
    extra = (eb > floor) & others & ~(rho >= DIVERGE_RHO)
    ref = dialogue & active
    sim = float(np.nanmedian(rho[ref])) if ref.any() else (float(np.nanmedian(rho[active])) if active.any() else None)
    agree = active & (rho >= 0.9)
    gain = float(10 * np.log10(eb[agree].sum() / ea[agree].sum())) if agree.any() else None
    return DescribedEvidence(mix_similarity=None if sim is None else round(sim, 3), extra_speech_s=round(float(extra.sum()) * window_s, 2),
                             extra_in_gaps=round(float((extra & ~dialogue).sum() / extra.sum()), 3) if extra.any() else None,
                             mix_gain_db=None if gain is None else round(gain, 2), lag_ms=round(1000 * lag / rate, 2), windows=n)


def content_role(e: DescribedEvidence) -> tuple[str | None, list[str]]:
    """(audio_description | commentary | None, evidence lines) from `described_evidence`: AD = the original's
    mix with its dialogue nearly unchanged plus extra speech confined to its dialogue gaps; commentary =
    extra speech not confined to the gaps (over the original's dialogue)."""
    if e.mix_similarity is None or e.extra_speech_s < MIN_EXTRA_SPEECH_S or e.extra_in_gaps is None:
        return None, [f"content: {e.extra_speech_s:.1f} s of speech beyond the original's mix, too little to tell audio description from commentary"]
    gain = f", its mix at {e.mix_gain_db:+.1f} dB" if e.mix_gain_db is not None else ""
    lines = [f"content: the original's dialogue windows at correlation {e.mix_similarity:.2f} with the original{gain}; "
             f"{e.extra_speech_s:.1f} s of extra speech, {e.extra_in_gaps:.0%} of it in the original's dialogue gaps"]
    if e.mix_similarity >= AD_MIN_SIMILARITY and e.extra_in_gaps >= AD_MIN_IN_GAPS:
        return "audio_description", lines
    if e.extra_in_gaps < AD_MIN_IN_GAPS:
        return "commentary", lines
    return None, lines


def _decide_on_content(t: TrackEvidence, d: TrackDecision, lang: str | None, orig_lang: str | None) -> bool:
    """Sets d's role from the content evidence when it decides: audio description in any language;
    commentary only over an original in the same language (a dub's speech also diverges in the dialogue)."""
    if t.described is None:
        return False
    role, lines = content_role(t.described)
    if role == "audio_description" or (role == "commentary" and lang and orig_lang and lang == orig_lang):
        d.role = role
        d.evidence += lines
        return True
    return False
