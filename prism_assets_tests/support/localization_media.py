"""Titles with several audio and subtitle tracks and exact truth, for the localization tests and
benchmarks/localization.py.

One shared music-and-effects bed (percussive hits and notes, seeded), speech per language rendered
by espeak-ng and placed at known times, dub tracks that carry the bed `offset_ms` later (and
stretched for a drifting one; sped up or down by ffmpeg for one made from a frame-rate-converted
master), an M&E track with the bed alone; a picture of shots with cuts at
known times; subtitle files made from the speech times (in at the onset, out 0.3 s after the line)
with seeded errors; muxed into MP4 (mov_text) or MKV (SubRip) with language tags.
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SR = 48000
SENTENCES = {
    "en": ["The ship leaves the harbour before dawn.", "Nobody on board knows where we are going.", "I told you to bring the maps.",
           "The storm will reach the coast tonight.", "We have three days of water left.", "Look at the lights over there.",
           "My father built this boat with his hands.", "Keep the radio on and wait for the signal.", "The captain never sleeps at sea.",
           "Tomorrow we will see the island.", "Hold the rope and do not let go.", "They are following us since midnight."],
    "de": ["Das Schiff verlässt den Hafen vor der Dämmerung.", "Niemand an Bord weiß, wohin wir fahren.", "Ich habe dir gesagt, bring die Karten mit.",
           "Der Sturm erreicht heute Nacht die Küste.", "Wir haben noch Wasser für drei Tage.", "Schau dir die Lichter dort drüben an.",
           "Mein Vater hat dieses Boot mit seinen Händen gebaut.", "Lass das Funkgerät an und warte auf das Signal.", "Der Kapitän schläft nie auf See.",
           "Morgen sehen wir die Insel.", "Halt das Seil fest und lass nicht los.", "Sie folgen uns seit Mitternacht."],
    "fr": ["Le bateau quitte le port avant l'aube.", "Personne à bord ne sait où nous allons.", "Je t'avais dit d'apporter les cartes.",
           "La tempête atteindra la côte ce soir.", "Il nous reste de l'eau pour trois jours.", "Regarde les lumières là-bas.",
           "Mon père a construit ce bateau de ses mains.", "Laisse la radio allumée et attends le signal.", "Le capitaine ne dort jamais en mer.",
           "Demain nous verrons l'île.", "Tiens la corde et ne la lâche pas.", "Ils nous suivent depuis minuit."],
    "es": ["El barco sale del puerto antes del amanecer.", "Nadie a bordo sabe adónde vamos.", "Te dije que trajeras los mapas.",
           "La tormenta llegará a la costa esta noche.", "Nos queda agua para tres días.", "Mira las luces de allí.",
           "Mi padre construyó este barco con sus manos.", "Deja la radio encendida y espera la señal.", "El capitán nunca duerme en el mar.",
           "Mañana veremos la isla.", "Sujeta la cuerda y no la sueltes.", "Nos siguen desde medianoche."],
    "it": ["La nave lascia il porto prima dell'alba.", "Nessuno a bordo sa dove stiamo andando.", "Ti avevo detto di portare le mappe.",
           "La tempesta arriverà sulla costa stanotte.", "Abbiamo acqua per tre giorni.", "Guarda quelle luci laggiù.",
           "Mio padre ha costruito questa barca con le sue mani.", "Lascia la radio accesa e aspetta il segnale.", "Il capitano non dorme mai in mare.",
           "Domani vedremo l'isola.", "Tieni la corda e non lasciarla.", "Ci seguono da mezzanotte."],
    "pt": ["O navio deixa o porto antes do amanhecer.", "Ninguém a bordo sabe para onde vamos.", "Eu disse para você trazer os mapas.",
           "A tempestade vai chegar à costa esta noite.", "Temos água para mais três dias.", "Olhe aquelas luzes ali.",
           "Meu pai construiu este barco com as próprias mãos.", "Deixe o rádio ligado e espere o sinal.", "O capitão nunca dorme no mar.",
           "Amanhã vamos ver a ilha.", "Segure a corda e não solte.", "Eles estão nos seguindo desde a meia-noite."],
}
OTHER_TITLE_EN = ["Welcome back to the kitchen, today we bake bread.", "First weigh the flour and the salt.", "Add warm water slowly while you stir.",
                  "Let the dough rest for one hour.", "Now shape it into a round loaf.", "The oven should be very hot.",
                  "Bake it until the crust is golden.", "Tap the bottom, it should sound hollow.", "Let it cool before you cut it.",
                  "Butter and honey are all you need.", "Next week we make a cake.", "Thank you for cooking with us."]
VOICES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es", "ko": "ko", "ja": "ja", "it": "it", "pt": "pt-br"}
ISO2 = {"en": "eng", "de": "ger", "fr": "fre", "es": "spa", "ko": "kor", "ja": "jpn", "it": "ita", "pt": "por"}


@dataclass
class AudioSpec:
    role: str  # original | dub | music_and_effects
    language: str | None  # speech language (None: no speech)
    offset_ms: float = 0.0  # the bed this much later than in the original
    stretch: float = 0.0  # relative: the dub's timeline runs (1 + stretch) slower (drift = stretch * 3.6e6 ms/h)
    tag: str | None = None  # container language tag (None: from `language`; "" : none)
    voice: str | None = None  # espeak-ng voice (default: the language's, e.g. "en-us+f3" for another speaker)
    speed: int = 150  # words per minute
    speed_ratio: float = 1.0  # the track's duration / the original's (a frame-rate conversion: 24/25 for a PAL speed-up)
    speed_filter: str = "asetrate"  # how ffmpeg changes the speed: asetrate (pitch follows, as a PAL transfer) | atempo (pitch kept)


@dataclass
class SubSpec:
    language: str  # declared (file name / stream tag)
    text_language: str  # the text actually written
    timed_on: int = 0  # audio track whose speech times the cues follow
    offset_ms: float = 0.0
    stretch: float = 0.0  # cues timed for another frame rate: time t becomes t * (1 + stretch)
    errors: tuple[str, ...] = ()  # "overlap", "fast" seeded in the cues
    other_title: bool = False  # another title's sentences
    where: str = "sidecar"  # sidecar | stream
    fmt: str = "srt"  # srt | vtt | ass (sidecar)
    encoding: str = "utf-8"


@dataclass
class Truth:
    audio: list[dict] = field(default_factory=list)
    subtitles: list[dict] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)
    duration_s: float = 0.0


def speak(text: str, voice: str, path: Path, speed: int = 150) -> np.ndarray:
    """espeak-ng speech of `text` in `voice`, at SR Hz (float, -1..1), trimmed to its loud part (> 0.01): the
    placement of every generated line is exact. Shared by the media generators of the tests."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True, timeout=60)
    with wave.open(str(path), "rb") as w:
        rate, n = w.getframerate(), w.getnframes()
        x = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float64) / 32768.0
    x = np.interp(np.arange(int(len(x) * SR / rate)) * rate / SR, np.arange(len(x)), x)
    loud = np.flatnonzero(np.abs(x) > 0.01)
    return x[loud[0]:loud[-1] + 1] if len(loud) else x


def syllable_speech(dur: float, seed: int, sr: int = 16000) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Syllable-modulated noise in stretches of 1-3 s: one language's dialogue, different per seed; with its (start, end)
    stretches. Sync tests align tracks on it without a speech model."""
    rng = np.random.default_rng(seed)
    x, segs, t = np.zeros(int(dur * sr)), [], 1.0
    while t < dur - 3:
        d = rng.uniform(1, 3)
        i, k = int(t * sr), int(d * sr)
        x[i:i + k] += rng.normal(0, 0.8, k) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(k) / sr + rng.uniform(0, 6)))
        segs.append((t, t + d))
        t += d + rng.uniform(0.5, 3)
    return x, segs


def bed(dur: float, seed: int = 1, sr: int = SR, level: float = 0.12) -> np.ndarray:
    """Percussive hits at random times and notes of random length (what music and effects share),
    `level` times the raw mix, at `sr` Hz."""
    SR = sr  # noqa: N806 - the module's rate unless asked otherwise
    rng = np.random.default_rng(seed)
    n = int(dur * SR)
    x = np.zeros(n)
    t = 0.0
    while t < dur - 0.5:
        i, k = int(t * SR), int(0.15 * SR)
        x[i:i + k] += rng.normal(0, 1, k) * np.exp(-np.arange(k) / (0.02 * SR)) * rng.uniform(0.3, 1)
        t += rng.uniform(0.15, 0.9)
    t = 0.0
    while t < dur - 1:
        d = rng.uniform(0.3, 1.2)
        i = int(t * SR)
        k = min(int(d * SR), n - i)
        x[i:i + k] += 0.3 * np.sin(2 * np.pi * rng.choice([220, 262, 330, 392, 440, 523]) * np.arange(k) / SR)
        t += d
    return level * x


def placed(sig: np.ndarray, n: int, offset_s: float, stretch: float = 0.0) -> np.ndarray:
    t = np.arange(n) / SR
    return np.interp((t - offset_s) / (1 + stretch) * SR, np.arange(len(sig)), sig, left=0, right=0)


def speed_changed(x: np.ndarray, ratio: float, how: str, stem: Path) -> tuple[np.ndarray, float]:
    """`x` (SR Hz) made `ratio` times as long by ffmpeg, as a frame-rate conversion does: `asetrate`
    (the samples played at SR / ratio, then resampled to SR: pitch moves with the speed) or `atempo`
    (pitch kept). Returns the signal and the exact ratio applied (asetrate takes whole rates)."""
    if how == "asetrate":
        rate = round(SR / ratio)
        filt, exact = f"asetrate={rate},aresample={SR}", SR / rate
    elif how == "atempo":
        filt, exact = f"atempo={1 / ratio:.9f}", ratio
    else:
        raise ValueError(f"speed_filter {how!r}: asetrate or atempo")
    src, dst = _wav(stem.with_suffix(".in.wav"), x), stem.with_suffix(".out.wav")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af", filt, "-ar", str(SR), "-ac", "1", "-c:a", "pcm_s16le", str(dst)],
                   check=True, capture_output=True, timeout=300)
    with wave.open(str(dst), "rb") as w:
        y = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return y, exact


def shifted(x: np.ndarray, n: int, offset_s: float) -> np.ndarray:
    """`x` starting `offset_s` late (early: its start cut), cut or padded to `n` samples."""
    i = int(round(offset_s * SR))
    y = np.zeros(n)
    src = x[max(0, -i):]
    y[max(0, i):max(0, i) + len(src)] = src[:n - max(0, i)]
    return y


def schedule(dur: float, n_sentences: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [1.5 + i * (dur - 6.0) / n_sentences + float(rng.uniform(0, 0.8)) for i in range(n_sentences)]


def _wav(path: Path, x: np.ndarray) -> Path:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return path


def _ts(t: float, sep: str = ",") -> str:
    ms = max(0, round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def _lines(text: str, width: int = 42) -> str:
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, len(text) // 2 + 6)
    return text[:cut] + "\n" + text[cut + 1:] if cut > 0 else text


def write_subtitles(cues: list[tuple[float, float, str]], fmt: str) -> str:
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(f"{_ts(s, '.')} --> {_ts(e, '.')}\n{t}\n\n" for s, e, t in cues)
    if fmt == "ass":
        head = ("[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, Bold, Alignment\n"
                "Style: Default,Arial,20,&H00FFFFFF,0,2\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n")

        def at(t):
            cs = round(t * 100)
            return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"
        return head + "".join(f"Dialogue: 0,{at(s)},{at(e)},Default,,0,0,0,,{t.replace(chr(10), chr(92) + 'N')}\n" for s, e, t in cues)
    return "".join(f"{i}\n{_ts(s)} --> {_ts(e)}\n{t}\n\n" for i, (s, e, t) in enumerate(cues, 1))


def make_title(work: Path, name: str, audio: list[AudioSpec], subs: list[SubSpec], *, container: str = "mkv", dur: float = 48.0,
               seed: int = 0, shot_s: float = 6.0) -> tuple[Path, Truth]:
    """The title file (plus sidecar subtitle files beside it) and its truth."""
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f".{name}"
    tmp.mkdir(exist_ok=True)
    n = int(dur * SR)
    music = bed(dur + 15, seed + 1)
    starts = schedule(dur, 8, seed + 2)
    truth = Truth(duration_s=dur)
    speech_times: dict[int, list[tuple[float, float, str]]] = {}
    wavs = []
    for k, a in enumerate(audio):
        converted = a.speed_ratio != 1.0  # mixed at the original's speed, then sped up/down by ffmpeg, then offset
        pre_off, pre_n = (0.0, int(n / a.speed_ratio) + SR) if converted else (a.offset_ms / 1000.0, n)
        x = placed(music, pre_n, pre_off, a.stretch)
        spans = []
        if a.language:
            for i, t0 in enumerate(starts):
                text = SENTENCES[a.language][(i + seed) % len(SENTENCES[a.language])]
                s = speak(text, a.voice or VOICES[a.language], tmp / f"s{k}_{i}.wav", a.speed)
                at = t0 * (1 + a.stretch) + pre_off
                i0 = int(at * SR)
                if i0 + len(s) >= pre_n:
                    break
                if i0 < 0:  # a dub that starts early: its first line falls before the title
                    continue
                x[i0:i0 + len(s)] += 0.9 * s
                spans.append((round(at, 3), round(at + len(s) / SR, 3), (i + seed) % len(SENTENCES[a.language])))
        ratio = 1.0
        if converted:
            x, ratio = speed_changed(x, a.speed_ratio, a.speed_filter, tmp / f"speed{k}")
            x = shifted(x, n, a.offset_ms / 1000.0)
            o = a.offset_ms / 1000.0
            spans = [(round(s * ratio + o, 3), round(e * ratio + o, 3), line) for s, e, line in spans if s * ratio + o >= 0 and e * ratio + o < dur]
        speech_times[k] = spans
        wavs.append(_wav(tmp / f"a{k}.wav", x))
        truth.audio.append({"track": k, "role": a.role, "language": a.language, "offset_ms": a.offset_ms if k else None,
                            "drift_ms_per_hour": a.stretch * 3.6e6 if k else None, "speed_ratio": ratio if k else None,
                            "speech": [(s, e) for s, e, _ in spans]})
    # picture: shots of testsrc2 in different hues, cut every shot_s seconds
    cuts = [round(shot_s * i, 3) for i in range(1, int(dur / shot_s)) if shot_s * i < dur - 1]
    truth.cuts = cuts
    edges = [0.0] + cuts + [dur]
    parts = "".join(f"testsrc2=s=320x240:r=25:d={b - a:.3f},hue=h={(i * 67) % 360}[v{i}];" for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])))
    video = tmp / "v.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-filter_complex", parts + "".join(f"[v{i}]" for i in range(len(edges) - 1))
                    + f"concat=n={len(edges) - 1}:v=1:a=0[out]", "-map", "[out]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(video)], check=True, capture_output=True, timeout=300)
    out = work / f"{name}.{container}"
    sidecars = []
    stream_subs = []
    for j, sp in enumerate(subs):
        base = speech_times[sp.timed_on]
        if sp.other_title:
            texts = OTHER_TITLE_EN
        else:
            texts = SENTENCES[sp.text_language]
        cues = []
        for s, e, line in base:  # the line spoken there, in the subtitle's language
            text = texts[line % len(texts)]
            o, k = sp.offset_ms / 1000.0, 1 + sp.stretch
            cues.append([s * k + o, max(e + 0.3, s + 1.0) * k + o, _lines(text)])
        seeded = []
        if "overlap" in sp.errors and len(cues) > 3:
            cues[2][1] = cues[3][0] + 0.6
            seeded.append({"kind": "overlap", "at_s": cues[2][0]})
        if "fast" in sp.errors and len(cues) > 5:
            cues[5][1] = cues[5][0] + 0.9  # its whole line in 0.9 s: over 40 characters a second
            seeded.append({"kind": "reading_speed", "at_s": cues[5][0]})
        if sp.offset_ms:
            seeded.append({"kind": "cue_offset", "offset_ms": sp.offset_ms})
        if sp.stretch and abs(sp.stretch * (base[-1][0] - base[0][0])) > 0.2:
            seeded.append({"kind": "cue_drift", "drift_ms_per_hour": sp.stretch * 3.6e6})
        if sp.text_language != sp.language:
            seeded.append({"kind": "wrong_language"})
        if sp.other_title:
            seeded.append({"kind": "text_mismatch"})
        cues = [(round(s, 3), round(e, 3), t) for s, e, t in cues]
        dup = any(o.language == sp.language and o.where == "sidecar" for o in subs[:j])
        label = f"{name}{'.alt' if dup else ''}.{sp.language}"
        if sp.where == "sidecar":
            path = work / f"{label}.{sp.fmt}"
            path.write_bytes(write_subtitles(cues, sp.fmt).encode(sp.encoding))
            sidecars.append(path)
            where = path.name
        else:
            path = tmp / f"sub{j}.srt"
            path.write_text(write_subtitles(cues, "srt"))
            stream_subs.append((path, sp.language))
            where = f"stream {len(stream_subs) - 1}"
        truth.subtitles.append({"n": j, "language": sp.language, "where": where, "seeded": seeded, "timed_on": sp.timed_on, "cues": len(cues)})
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video)] + [a for w in wavs for a in ("-i", str(w))] \
        + [a for p, _ in stream_subs for a in ("-i", str(p))] + ["-map", "0:v"]
    for k in range(len(wavs)):
        cmd += ["-map", f"{k + 1}:a"]
    for j in range(len(stream_subs)):
        cmd += ["-map", f"{len(wavs) + 1 + j}:s"]
    cmd += ["-c:v", "copy", "-c:a", "aac", "-b:a", "96k", "-ac", "2", "-c:s", "mov_text" if container == "mp4" else "srt"]
    for k, a in enumerate(audio):
        tag = a.tag if a.tag is not None else (ISO2.get(a.language) if a.language else "")
        if tag:
            cmd += [f"-metadata:s:a:{k}", f"language={tag}"]
        cmd += [f"-disposition:a:{k}", "default" if k == 0 else "0"]
    for j, (_, lang) in enumerate(stream_subs):
        cmd += [f"-metadata:s:s:{j}", f"language={ISO2.get(lang, lang)}"]
    cmd += ["-t", f"{dur}", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()
    return out, truth
