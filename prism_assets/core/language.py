"""Language tags, one place: what a stream's tag means, ISO 639 helpers, and the rule that decides a
track's spoken language.

- **No language:** `und` (undetermined), `zxx` (no linguistic content), `mis` (uncoded), `mul`
  (several), the non-standard `unk`, and an empty tag all mean "no language" everywhere (the stream
  readers of the picture, the sound and the subtitles once disagreed on `unk` and `zxx`).
- **Valid tags:** a two-letter primary subtag must be an ISO 639-1 code (`xx-INVALID` is not a
  language); three-letter codes (ISO 639-2/3, ~7,900 of them) are checked for their form; further
  subtags must have a BCP 47 form (`language_problem` says why a tag is refused, in one line).
- **Comparable tags:** `iso639_1` maps ISO 639-2 (B and T) to ISO 639-1 (`ger`/`deu` -> `de`),
  `base_language` makes `eng`, `en` and `en-GB` one language, `normal_language` makes a tag safe for a
  file name (`pt_BR` -> `pt-br`).
- **Decided language** (`decide_on_speech`): the speech model's answer only on at least
  `MIN_SPEECH_S` of speech with probability at least `MIN_LANGUAGE_PROBABILITY`; else none, with why.
"""

from __future__ import annotations

import re

NO_LANGUAGE = frozenset({"", "und", "unk", "zxx", "mis", "mul"})
MIN_SPEECH_S = 5.0  # a language is decided on at least this much VAD speech: below it, null (no guess)
MIN_LANGUAGE_PROBABILITY = 0.5

# ISO 639-1 (all 183 codes, + `sh`)
ISO639_1 = frozenset("""aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en
eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km
kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi
pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur
uz ve vi vo wa wo xh yi yo za zh zu""".split())
SUBTAG = re.compile(r"^(?:[a-z]{2}|\d{3}|[a-z]{4}|[a-z0-9]{5,8}|\d[a-z0-9]{3})$")
SAFE_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")
ISO639_2 = {"eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es", "ita": "it", "por": "pt", "kor": "ko",
            "jpn": "ja", "zho": "zh", "chi": "zh", "rus": "ru", "ara": "ar", "hin": "hi", "nld": "nl", "dut": "nl", "swe": "sv",
            "pol": "pl", "tur": "tr", "ukr": "uk", "ces": "cs", "cze": "cs", "dan": "da", "fin": "fi", "nor": "no", "ell": "el",
            "gre": "el", "heb": "he", "hun": "hu", "ind": "id", "tha": "th", "vie": "vi", "ron": "ro", "rum": "ro"}


def no_language(tag) -> bool:
    """True for a tag that names no language (und, zxx, mis, mul, unk, empty, None)."""
    return tag is None or str(tag).strip().lower() in NO_LANGUAGE


def stream_language(stream) -> str | None:
    """A container stream's language tag as written (PyAV stream metadata), None when it names no language."""
    tag = (getattr(stream, "metadata", None) or {}).get("language")
    return None if no_language(tag) else str(tag).strip()


def language_problem(tag: str | None) -> str | None:
    """Why a language tag is not a language (one line), or None for a usable one (or none at all)."""
    if no_language(tag):
        return None
    parts = str(tag).strip().replace("_", "-").lower().split("-")
    head = parts[0]
    if len(head) == 2 and head not in ISO639_1:
        return f"language tag {tag!r}: {head!r} is not an ISO 639-1 language code: ignored"
    if not re.fullmatch(r"[a-z]{2,3}", head):
        return f"language tag {tag!r} is not a language code (ISO 639 / BCP 47): ignored"
    if len(parts) > 4 or not all(SUBTAG.fullmatch(p) for p in parts[1:]):
        return f"language tag {tag!r} is not a BCP 47 tag: ignored"
    return None


def valid_language(tag: str | None) -> str | None:
    """The tag when it is a language, else None (no language, or invalid: see language_problem)."""
    if no_language(tag) or language_problem(tag):
        return None
    return str(tag).strip()


def iso639_1(tag: str | None) -> str | None:
    """Container tags are ISO 639-2 (eng, deu/ger, kor...); detection gives ISO 639-1 (en, de, ko)."""
    if not tag:
        return None
    tag = tag.lower()
    if len(tag) == 2:
        return tag
    try:
        from langcodes import Language  # optional

        return Language.get(tag).language
    except Exception:  # noqa: BLE001  (not installed, or a tag it cannot read: the table below)
        pass
    return ISO639_2.get(tag)


def base_language(lang: str | None) -> str | None:
    """ISO 639-1 for comparison: 'eng', 'en' and 'en-GB' are one language."""
    if no_language(lang):
        return None
    base = str(lang).lower().replace("_", "-").split("-")[0]
    return iso639_1(base) or base


def normal_language(tag: str | None) -> str | None:
    """A language tag made safe for a file name and comparable: lower case, `_` -> `-`, ISO 639-2
    codes as ISO 639-1 where one exists (`ger` -> `de`, `pt-BR` -> `pt-br`); None for no language and
    anything that is not a language tag."""
    if no_language(tag):
        return None
    t = str(tag).strip().replace("_", "-").lower()
    if not SAFE_LANGUAGE.fullmatch(t):
        return None
    head, _, region = t.partition("-")
    return (iso639_1(head) or head) + (f"-{region}" if region else "")


def decide_on_speech(speech_s: float, detected: str | None, probability: float | None) -> tuple[str | None, str]:
    """(language, why): the model's answer when it was given on enough speech with enough
    confidence, else None. A music or effects track gets no language (Whisper's language head
    always answers, even on music)."""
    if speech_s < MIN_SPEECH_S:
        return None, f"not decided: {speech_s:.1f} s of speech (needs {MIN_SPEECH_S:.0f} s)"
    if detected is None:
        return None, "not decided: no language model answer"
    if probability is not None and probability < MIN_LANGUAGE_PROBABILITY:
        return None, f"not decided: {detected} at p={probability:.2f} (needs {MIN_LANGUAGE_PROBABILITY})"
    how = f", p={probability:.2f}" if probability is not None else " (language fixed by the profile)"
    return detected, f"detected on {speech_s:.0f} s of speech{how}"
