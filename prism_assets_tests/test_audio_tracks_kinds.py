"""Audio track kinds and multichannel (issue 27 item 3), on generated media with exact truth.

- audio description: a role of its own, from metadata alone (disposition visual_impaired read from
  the container, the title "Audio Description") and from content alone (the original's mix plus
  espeak-ng narration placed in the original's dialogue gaps); commentary stays commentary;
- 5.1 loudness: the decode pass equals ffmpeg ebur128 within 0.2 LU and differs from an unweighted
  sum when the surrounds are loud (BS.1770 weights: surrounds 1.41, LFE out);
- channel QC: a silent surround, dialogue swapped out of the centre, a full-band LFE fire; a clean
  5.1 fires nothing and its dialogue source is its centre; the 5.1's downmix against a stereo track.

Media: espeak-ng speech, tones and seeded noise assembled with numpy, muxed by ffmpeg (5.1 layout,
Matroska dispositions); every file is 20 s or shorter.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from prism_assets.audio.channels import ChannelThresholds, channel_events, downmix_events
from prism_assets.audio.decode import run_audio_pass
from prism_assets.audio.loudness import R128Meter, channel_weights, measure
from prism_assets.localization.roles import DescribedEvidence, TrackEvidence, content_role, decide_roles, described_evidence

from .support.ffmpeg_ref import ffmpeg_r128

RATE = 48000
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("ffmpeg", "espeak-ng")), reason="ffmpeg and espeak-ng are required")
LINES = ["Good evening. The train leaves at nine from platform four.", "She opened the door slowly and looked outside.",
         "Nobody answered, so he left the keys on the table.", "A man in a grey coat crosses the empty station.",
         "She smiles, and turns off the light.", "I have been watching this scene for twenty years and it still surprises me.",
         "The lighting here was done with a single lamp."]


def speech(text: str, rate: int = RATE, voice: str = "en") -> np.ndarray:
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", "190", "--stdout", text], capture_output=True, check=True, timeout=60).stdout
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "-", "-ar", str(rate), "-ac", "1", "-f", "f32le", "-"], input=wav,
                         capture_output=True, check=True, timeout=60).stdout
    x = np.frombuffer(raw, np.float32).copy()
    nz = np.flatnonzero(np.abs(x) > 1e-3)  # trim espeak's leading/trailing silence: the regions are exact
    return x[nz[0]: nz[-1] + 1] * 0.6


def mux(path: Path, tracks: list[dict], seconds: float) -> Path:
    """Audio-only Matroska of float32 (channels, n) tracks: `layout`, `codec`, `title`, `language`, `disposition`."""
    args, maps = [], []
    for i, t in enumerate(tracks):
        raw = path.with_suffix(f".{i}.f32")
        raw.write_bytes(np.ascontiguousarray(t["x"].T, dtype=np.float32).tobytes())
        args += ["-f", "f32le", "-ar", str(RATE), "-ac", str(t["x"].shape[0]), "-channel_layout", t.get("layout", "stereo"), "-i", str(raw)]
        maps += ["-map", str(i)]
    meta = []
    for i, t in enumerate(tracks):
        meta += [f"-c:a:{i}", t.get("codec", "flac")]
        if t.get("codec") == "aac":
            meta += [f"-b:a:{i}", "192k"]
        for k in ("title", "language"):
            if t.get(k):
                meta += [f"-metadata:s:a:{i}", f"{k}={t[k]}"]
        meta += [f"-disposition:a:{i}", t.get("disposition", "0")]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args, *maps, *meta, "-t", str(seconds), str(path)], check=True, capture_output=True, timeout=120)
    return path


def wav16(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0


def bed(n: int, seed: int, level: float = 0.02) -> np.ndarray:
    """A music-like bed: a slow chord plus seeded noise (a film's music and effects stand-in)."""
    t = np.arange(n) / RATE
    rng = np.random.default_rng(seed)
    chord = sum(np.sin(2 * np.pi * f * t + k) for k, f in enumerate((196.0, 247.0, 294.0))) / 3
    return (level * (chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.2 * t))) + level * 0.3 * rng.standard_normal(n)).astype(np.float32)


# --------------------------------------------------------------------------------------------- audio description


@pytest.fixture(scope="module")
def described_title(tmp_path_factory):
    """20 s: original (bed + 3 dialogue lines), its audio description (the original + 2 narrations in its
    gaps), a commentary (the original 10 dB down + a commentator over its dialogue), a German-like dub."""
    if not all(shutil.which(t) for t in ("ffmpeg", "espeak-ng")):
        pytest.skip("ffmpeg and espeak-ng are required")
    d = tmp_path_factory.mktemp("ad")
    dur = 20.0
    n = int(dur * RATE)
    lines = [speech(s) for s in LINES[:5]]
    pos, dialogue, narration, t = [], [], [], 0.5
    for i, x in enumerate(lines):  # dialogue, narration, dialogue, narration, dialogue
        pos.append(t)
        (dialogue if i % 2 == 0 else narration).append((t, t + len(x) / RATE))
        t += len(x) / RATE + 0.7
    assert t <= dur, t
    music = bed(n, 1)
    orig = music.copy()
    ad = music.copy()
    for i, (x, p) in enumerate(zip(lines, pos)):
        s = int(p * RATE)
        (orig if i % 2 == 0 else ad)[s: s + len(x)] += x
        if i % 2 == 0:
            ad[s: s + len(x)] += x
    com = 0.32 * orig
    comm = speech(LINES[5])  # over the first dialogue line and the gap after it
    c0 = int((dialogue[0][0] + 0.5) * RATE)
    com[c0: c0 + len(comm)] += comm
    commentary = [(dialogue[0][0] + 0.5, dialogue[0][0] + 0.5 + len(comm) / RATE)]
    comm2 = speech(LINES[6])
    c1 = int((dialogue[1][0] + 0.3) * RATE)
    com[c1: c1 + len(comm2)] += comm2
    commentary.append((dialogue[1][0] + 0.3, dialogue[1][0] + 0.3 + len(comm2) / RATE))
    dub = music.copy()
    for (a, b), line in zip(dialogue, [LINES[3], LINES[1], LINES[2]]):
        x = speech(line, voice="de")[: int((b - a) * RATE)]
        dub[int(a * RATE): int(a * RATE) + len(x)] += x
    st = lambda x: np.vstack([x, x])  # noqa: E731
    path = mux(d / "described.mkv", [
        {"x": st(orig), "codec": "aac", "language": "eng", "disposition": "default"},
        {"x": st(ad), "codec": "aac", "language": "eng", "title": "English", "disposition": "visual_impaired"},
        {"x": st(com), "codec": "aac", "language": "eng", "disposition": "0"},
        {"x": st(dub), "codec": "aac", "language": "ger"},
        {"x": st(ad), "codec": "aac", "language": "eng", "title": "Audio Description"},
    ], dur)
    ap = run_audio_pass(path, d / "w")
    wavs = {t["track"]: wav16(ap.speech_files[f"speech_{t['track']}.wav"]) for t in ap.tracks}
    return {"ap": ap, "wavs": wavs, "dialogue": dialogue, "narration": narration, "commentary": commentary}


@needs_tools
@pytest.mark.integration
def test_dispositions_and_titles_are_read_from_the_container(described_title):
    tracks = described_title["ap"].tracks
    assert "default" in tracks[0]["dispositions"] and "visual_impaired" not in tracks[0]["dispositions"]
    assert "visual_impaired" in tracks[1]["dispositions"] and tracks[1]["title"] == "English"
    assert tracks[4]["title"] == "Audio Description" and tracks[4]["dispositions"] == []


@needs_tools
@pytest.mark.integration
def test_audio_description_from_metadata_alone(described_title):
    """Evidence without any content measurement: the disposition (track 1) and the title (track 4) decide;
    before, the AD's extra speech over the same mix made it `commentary`."""
    tracks = described_title["ap"].tracks
    ev = [TrackEvidence(t["track"], t["duration_s"], speech_s=s, detected_language=lang, language_probability=0.9, container_language=t["language_tag"],
                        title=t["title"], default="default" in t["dispositions"], dispositions=tuple(t["dispositions"]), handler_name=t["handler_name"],
                        sync_confidence=None if t["track"] == 0 else 0.8)
          for t, s, lang in zip(tracks, (9.0, 14.0, 14.0, 9.0, 14.0), ("en", "en", "en", "de", "en"))]
    got = {d.index: d for d in decide_roles(ev, "en")}
    assert [got[i].role for i in range(5)] == ["original", "audio_description", "commentary", "dub", "audio_description"]
    assert got[1].evidence == ["disposition visual_impaired"] and got[4].evidence == ["track title 'Audio Description'"]
    assert "more speech" in got[2].evidence[0]  # the old same-language rule still names a commentary without metadata
    # the same tracks without their metadata: the AD falls back to that rule (why the content evidence exists)
    bare = [TrackEvidence(e.index, e.duration_s, e.speech_s, detected_language=e.detected_language, language_probability=0.9,
                          default=e.default, sync_confidence=e.sync_confidence) for e in ev]
    assert decide_roles(bare, "en")[1].role == "commentary"


@needs_tools
@pytest.mark.integration
def test_audio_description_and_commentary_from_content(described_title):
    w, dlg, nar, com = described_title["wavs"], described_title["dialogue"], described_title["narration"], described_title["commentary"]
    sr = 16000
    ad = described_evidence(w[0], w[1], sr, dlg, other_speech=sorted(dlg + nar))
    assert ad.mix_similarity >= 0.9 and ad.extra_in_gaps >= 0.9, ad
    truth_s = sum(b - a for a, b in nar)
    assert abs(ad.extra_speech_s - truth_s) <= 1.5, (ad, truth_s)
    assert abs(ad.mix_gain_db) < 0.5
    cm = described_evidence(w[0], w[2], sr, dlg, other_speech=sorted(dlg + com))
    assert cm.extra_in_gaps < 0.6 and cm.extra_speech_s >= 3.0, cm
    assert -11.5 < cm.mix_gain_db < -8.5  # the original under the commentator at 0.32 (-9.9 dB)
    dub = described_evidence(w[0], w[3], sr, dlg, other_speech=dlg)
    assert dub.mix_similarity < 0.6, dub
    assert content_role(ad)[0] == "audio_description" and content_role(cm)[0] == "commentary"
    # roles with the content evidence and no metadata at all: AD, commentary and the dub each their own
    ev = [TrackEvidence(0, 20.0, 9.0, detected_language="en", language_probability=0.9, default=True),
          TrackEvidence(1, 20.0, 14.0, detected_language="en", language_probability=0.9, sync_confidence=0.9, described=ad),
          TrackEvidence(2, 20.0, 14.0, detected_language="en", language_probability=0.9, sync_confidence=0.6, described=cm),
          TrackEvidence(3, 20.0, 9.0, detected_language="de", language_probability=0.9, sync_confidence=0.6, described=dub)]
    got = decide_roles(ev, "en")
    assert [d.role for d in got] == ["original", "audio_description", "commentary", "dub"]
    assert "in the original's dialogue gaps" in got[1].evidence[0] and "extra speech" in got[2].evidence[0]


def test_content_role_needs_enough_extra_speech():
    little = DescribedEvidence(mix_similarity=0.98, extra_speech_s=0.5, extra_in_gaps=1.0, mix_gain_db=0.0, lag_ms=0.0, windows=40)
    assert content_role(little)[0] is None and "too little" in content_role(little)[1][0]
    changed_dialogue = DescribedEvidence(mix_similarity=0.3, extra_speech_s=6.0, extra_in_gaps=0.95, mix_gain_db=None, lag_ms=0.0, windows=40)
    assert content_role(changed_dialogue)[0] is None  # in the gaps, but the dialogue itself differs: no AD
    # a commentary disposition is commentary whatever its content says
    t = TrackEvidence(1, 60.0, 30.0, detected_language="en", language_probability=0.9, dispositions=("comment",), sync_confidence=0.9,
                      described=DescribedEvidence(0.97, 8.0, 1.0, 0.0, 0.0, 120))
    d = decide_roles([TrackEvidence(0, 60.0, 20.0, detected_language="en", language_probability=0.9, default=True), t], "en")[1]
    assert d.role == "commentary" and d.evidence[0] == "disposition comment" and "dialogue gaps" in d.evidence[1]


# --------------------------------------------------------------------------------------------- 5.1


def surround(n: int, seed: int, dialogue: np.ndarray) -> dict[str, np.ndarray]:
    """A clean 5.1 stand-in: stereo bed in L/R, dialogue (and a little bed) in C, low-passed rumble in the
    LFE, decorrelated ambience in the surrounds."""
    rng = np.random.default_rng(seed)
    b1, b2 = bed(n, seed, 0.02), bed(n, seed + 1, 0.02)
    lfe = (0.25 * sosfilt(butter(4, 80, fs=RATE, output="sos"), rng.standard_normal(n))).astype(np.float32)
    return {"FL": b1, "FR": 0.7 * b1 + 0.3 * b2, "FC": dialogue + 0.2 * b1, "LFE": lfe,
            "BL": (0.01 * rng.standard_normal(n)).astype(np.float32), "BR": (0.01 * rng.standard_normal(n)).astype(np.float32)}


ORDER = ["FL", "FR", "FC", "LFE", "BL", "BR"]


@pytest.fixture(scope="module")
def five_one(tmp_path_factory):
    if not all(shutil.which(t) for t in ("ffmpeg", "espeak-ng")):
        pytest.skip("ffmpeg and espeak-ng are required")
    d = tmp_path_factory.mktemp("surround")
    dur = 12.0
    n = int(dur * RATE)
    dlg = np.zeros(n, np.float32)
    for p, line in ((0.5, LINES[0]), (6.0, LINES[1])):
        x = speech(line)
        dlg[int(p * RATE): int(p * RATE) + len(x)] += x
    clean = surround(n, 3, dlg)
    variants = {
        "clean": clean,
        "silent_bl": {**clean, "BL": np.zeros(n, np.float32)},
        "swap_fl_fc": {**clean, "FL": clean["FC"], "FC": clean["FL"]},  # dialogue on the left, the left bed in the centre
        "lfe_full_band": {**clean, "LFE": clean["BL"] * 8, "BL": clean["LFE"]},  # a surround and the LFE swapped
        "centre_silent": {**clean, "FL": clean["FL"] + 0.7 * dlg, "FR": clean["FR"] + 0.7 * dlg, "FC": np.zeros(n, np.float32)},
    }
    out = {}
    for name, ch in variants.items():
        x = np.vstack([ch[c] for c in ORDER])
        down = np.vstack([x[0] + 0.7071 * x[2] + 0.7071 * x[4], x[1] + 0.7071 * x[2] + 0.7071 * x[5]])
        tracks = [{"x": x, "layout": "5.1", "language": "eng"}]
        if name == "clean":  # with its proper stereo downmix, and a wrong stereo (another mix, 12 dB down) in German
            other = np.vstack([np.roll(down[0], RATE * 5), np.roll(down[1], RATE * 5)]) * 0.25
            tracks += [{"x": down, "language": "eng"}, {"x": other, "language": "ger"}]
        path = mux(d / f"{name}.mkv", tracks, dur)
        ap = run_audio_pass(path, d / f"w_{name}")
        out[name] = {"path": path, "ap": ap, "x": x}
    return out


def _events(track: dict) -> list[dict]:
    th = ChannelThresholds()
    t = {**track, "silent": track["integrated_lufs"] is None}
    return channel_events(t, th) + downmix_events(t, th)


@needs_tools
@pytest.mark.integration
def test_clean_five_one_fires_nothing_and_its_dialogue_is_the_centre(five_one):
    ap = five_one["clean"]["ap"]
    t = ap.tracks[0]
    assert t["channel_names"] == ORDER and not t["channel_layout_assumed"]
    assert _events(t) == []
    assert t["dialogue_source"] == "centre" and t["dialogue_file"] == "dialogue_0.wav"
    assert "dialogue_0.wav" in ap.speech_files and ap.tracks[1]["dialogue_source"] == "mix"
    # the dialogue WAV is the centre alone: louder dialogue, much less bed than the mix WAV in a dialogue gap
    mix, centre = wav16(ap.speech_files["speech_0.wav"]), wav16(ap.speech_files["dialogue_0.wav"])
    assert abs(len(mix) - len(centre)) <= 16
    gap = slice(int(4.0 * 16000), int(5.5 * 16000))  # between the two dialogue lines: bed only
    assert 10 * np.log10(np.mean(centre[gap] ** 2) / np.mean(mix[gap] ** 2)) < -10
    rep = t["channel_report"]
    lim = ChannelThresholds().speech_depth_db
    assert rep["channels"][2]["speech_depth_db"] > lim + 2 and max(c["speech_depth_db"] for c in rep["channels"] if c["name"] in ("FL", "FR", "BL", "BR")) < lim - 2
    assert rep["lfe_above_200hz_ratio"] < 0.05


@needs_tools
@pytest.mark.integration
def test_silent_and_swapped_channels_fire(five_one):
    ev = {name: _events(five_one[name]["ap"].tracks[0]) for name in ("silent_bl", "swap_fl_fc", "lfe_full_band", "centre_silent")}
    kinds = {name: sorted((e["kind"], e["metrics"].get("channel") or e["metrics"].get("pattern")) for e in es) for name, es in ev.items()}
    assert kinds["silent_bl"] == [("channel_silent", "BL")]
    assert kinds["swap_fl_fc"] == [("channel_swap", "dialogue_off_centre")]
    assert ev["swap_fl_fc"][0]["metrics"]["dialogue_channel"] == "FL" and ev["swap_fl_fc"][0]["severity"] == "warn"
    assert kinds["lfe_full_band"] == [("channel_swap", "lfe_full_band")]
    assert kinds["centre_silent"] == [("channel_silent", "FC"), ("channel_swap", "dialogue_off_centre")]
    e = ev["silent_bl"][0]
    assert e["track"] == 0 and e["start_s"] == 0.0 and abs(e["end_s"] - 12.0) < 0.05 and e["metrics"]["digital_silence"]
    # the dialogue source falls back to the mix where the centre does not carry the dialogue
    assert five_one["swap_fl_fc"]["ap"].tracks[0]["dialogue_source"] == "mix"
    assert five_one["centre_silent"]["ap"].tracks[0]["dialogue_source"] == "mix"
    assert five_one["silent_bl"]["ap"].tracks[0]["dialogue_source"] == "centre"


@needs_tools
@pytest.mark.integration
def test_downmix_against_the_stereo_tracks(five_one):
    tracks = five_one["clean"]["ap"].tracks
    dm = tracks[0]["downmix"]
    assert dm["against_track"] == 1  # the stereo track in the 5.1's language
    assert abs(dm["loudness_diff_lu"]) < 0.3 and dm["envelope_correlation"] > 0.98, dm
    assert tracks[1]["downmix"] is None and tracks[2]["downmix"] is None
    # the same 5.1 paired with the wrong stereo (12 dB down, 5 s later): a mismatch on both counts
    from prism_assets.audio.channels import compare_downmix

    ap = five_one["clean"]["ap"]
    blocks = ap.loudness
    stereo = {2: {"blocks": blocks[blocks["track"] == 2]["power"].to_numpy(), "start_s": 0.0, "language": "ger", "integrated_lufs": tracks[2]["integrated_lufs"]}}
    multi = {0: {"blocks": None, "start_s": 0.0, "language": "eng"}}
    x = five_one["clean"]["x"]
    m = R128Meter(RATE, np.ones(2), true_peak=False)
    m.feed(np.vstack([x[0] + 0.7071 * x[2] + 0.7071 * x[4], x[1] + 0.7071 * x[2] + 0.7071 * x[5]]).astype(np.float32))
    multi[0]["blocks"] = m.result().block_power
    bad = compare_downmix(multi, stereo)[0]
    assert bad["loudness_diff_lu"] > 10 and bad["envelope_correlation"] < 0.7, bad
    (e,) = downmix_events({"track": 0, "start_s": 0.0, "duration_s": 12.0, "downmix": bad}, ChannelThresholds())
    assert e["kind"] == "downmix_mismatch" and "louder than track 2" in e["detail"] and "correlation" in e["detail"]


@needs_tools
@pytest.mark.integration
def test_five_one_loudness_weights_match_ffmpeg(tmp_path):
    """Loud surrounds and a loud LFE: BS.1770 weighs the surrounds 1.41 and drops the LFE, as ffmpeg's ebur128
    does; an unweighted sum of all six channels is far off."""
    n = 8 * RATE
    rng = np.random.default_rng(7)
    x = np.vstack([0.02 * rng.standard_normal(n), 0.02 * rng.standard_normal(n), 0.02 * rng.standard_normal(n),
                   0.3 * rng.standard_normal(n), 0.15 * rng.standard_normal(n), 0.15 * rng.standard_normal(n)]).astype(np.float32)
    for layout, names in (("5.1", ORDER), ("5.1(side)", ["FL", "FR", "FC", "LFE", "SL", "SR"])):
        p = mux(tmp_path / f"loud_{layout.replace('(', '_').replace(')', '')}.mkv", [{"x": x, "layout": layout}], 8.0)
        ap = run_audio_pass(p, tmp_path / f"w{layout}")
        t = ap.tracks[0]
        assert t["channel_names"] == names
        ref = ffmpeg_r128(p)["integrated_lufs"]
        assert abs(t["integrated_lufs"] - ref) <= 0.2, (layout, t["integrated_lufs"], ref)
        naive = R128Meter(RATE, np.ones(6))
        naive.feed(x)
        assert abs(naive.result().integrated_lufs - ref) > 2.0  # the LFE counted, surrounds at 1.0
        unweighted_surrounds = R128Meter(RATE, np.where(channel_weights(names) > 1, 1.0, channel_weights(names)))
        unweighted_surrounds.feed(x)
        assert 1.2 < t["integrated_lufs"] - unweighted_surrounds.result().integrated_lufs < 1.6  # +1.5 dB surrounds dominate
    # a 6-channel stream with no layout (unspecified order, PyAV names NONE) is read as ffmpeg's default 5.1, as ffmpeg does
    unknown = tmp_path / "unknown_order.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "loud_5.1.mkv"), "-af", "pan=6C|" + "|".join(f"c{i}=c{i}" for i in range(6)),
                    "-c:a", "pcm_s24le", str(unknown)], check=True, capture_output=True, timeout=60)
    t = run_audio_pass(unknown, tmp_path / "wu").tracks[0]
    assert t["channel_layout_assumed"] and t["channel_names"] == ORDER and t["channel_layout"] == "6 channels"
    assert abs(t["integrated_lufs"] - ffmpeg_r128(unknown)["integrated_lufs"]) <= 0.2
    assert measure(x, RATE).integrated_lufs == pytest.approx(measure(x, RATE, ORDER).integrated_lufs)
    assert abs(measure(np.vstack([x, x[4:6]]), RATE).integrated_lufs - measure(np.vstack([x, x[4:6]]), RATE, ORDER + ["SL", "SR"]).integrated_lufs) < 1e-9


# --------------------------------------------------------------------------------------------- through Dagster


@needs_tools
@pytest.mark.integration
def test_audio_assets_on_a_five_one_title(settings, five_one):
    """audio_pass -> transcript (from the centre's dialogue WAV) -> audio.json with its channel QC event, which
    audio_analysis contributes to the title's QC verdict."""
    from datetime import date

    from dagster import DagsterInstance, materialize

    from prism_assets.audio.analysis import AUDIO_ANALYSIS
    from prism_assets.catalog import Catalog, DeliveryRecord
    from prism_assets.core.domain import load_domains, qc_sources
    from prism_assets.definitions import build_resources
    from prism_assets.partitions import TAG_DELIVERY_DATE, TAG_DELIVERY_URI
    from prism_assets.qc.events import validate_events, verdict_of

    from .conftest import read_artifact
    from .support import signal_assets

    path, tid = five_one["silent_bl"]["path"], "surround51"
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("titles", [tid])
    Catalog(settings.catalog_url).record_deliveries([DeliveryRecord(tid, date(2026, 11, 20), str(path))])
    res = materialize(signal_assets(settings, "source_video", "audio_stats", "transcript", "audio_analysis"), resources=build_resources(settings),
                      partition_key=tid, instance=instance, raise_on_error=False, tags={TAG_DELIVERY_URI: str(path), TAG_DELIVERY_DATE: "2026-11-20"})
    assert res.success
    evals = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in res.get_asset_check_evaluations()}
    assert evals[("audio_analysis", "channel_events_valid")] and evals[("audio_speech", "speech_file_per_track")]
    assert all(evals.values()), {k: v for k, v in evals.items() if not v}
    speech = read_artifact(settings, "audio_speech", tid)[2]
    assert speech["tracks"][0]["dialogue_file"] == "dialogue_0.wav" and speech["tracks"][0]["dialogue_source"] == "centre"
    tr = read_artifact(settings, "transcript", tid)[2]["tracks"][0]
    regions = [(r["start_s"], r["end_s"]) for r in tr["speech_regions"]]
    assert any(a < 1.5 and b > 2.0 for a, b in regions) and any(a < 7.0 and b > 7.5 for a, b in regions), regions  # lines at 0.5 s and 6 s
    an = read_artifact(settings, "audio_analysis", tid)[2]
    t = an["tracks"][0]
    assert t["channels"] == 6 and t["dialogue_source"] == "centre" and t["channel_report"]["names"] == ORDER
    assert [(e["kind"], e["severity"], e["metrics"]["channel"]) for e in an["events"]] == [("channel_silent", "warn", "BL")]
    # the hook the QC asset collects (audio_analysis is also one of its inputs): the event joins the verdict
    hook = qc_sources(load_domains(settings.domains))["audio_analysis"]
    assert hook is AUDIO_ANALYSIS.outputs[0].qc_events
    evs = validate_events(hook(an), "audio_analysis")
    assert verdict_of(evs) == "warn" and evs[0]["metrics"]["source"] == "audio_analysis" and evs[0]["track"] == 0


@needs_tools
@pytest.mark.integration
def test_the_localization_profiles_call_an_untitled_visual_impaired_track_and_a_content_ad_audio_description(described_title):
    """Through the localization step's own code (tracks.profiles: evidence from the audio pass, alignment, content
    measurement): track 1 (`visual_impaired`, titled only "English") and track 4 (titled "Audio Description") are
    audio description, track 2 stays commentary, track 3 is the dub."""
    from prism_assets.localization.tracks import SyncLimits, profiles

    ap, dlg, nar, com = described_title["ap"], described_title["dialogue"], described_title["narration"], described_title["commentary"]
    regions = {0: dlg, 1: sorted(dlg + nar), 2: sorted(dlg + com), 3: dlg, 4: sorted(dlg + nar)}
    langs = {0: "en", 1: "en", 2: "en", 3: "de", 4: "en"}
    transcript = [{"track": t["track"], "language": langs[t["track"]], "language_probability": 0.9,
                   "speech_regions": [{"start_s": a, "end_s": b} for a, b in regions[t["track"]]]} for t in ap.tracks]
    wavs = {t["track"]: Path(ap.speech_files[f"speech_{t['track']}.wav"]) for t in ap.tracks}
    got, original = profiles(ap.tracks, transcript, [], None, wavs, {}, "en", SyncLimits(), wav16)
    roles = {p["track"]: p["role"] for p in got}
    assert original == 0 and roles == {0: "original", 1: "audio_description", 2: "commentary", 3: "dub", 4: "audio_description"}, roles
    ad = next(p for p in got if p["track"] == 1)
    assert any("visual_impaired" in line for line in ad["role_evidence"]), ad["role_evidence"]
