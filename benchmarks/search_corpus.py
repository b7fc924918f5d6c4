"""Cross-title search corpus with exact truth: generated titles in a delivery-folder layout, and queries.

    PYTHONPATH=. .venv/bin/python -m benchmarks.search_corpus --out DIR [--n 12] [--seed 0] [--process DATA_DIR [--jobs 1] [--only ID ..]]

`make_corpus` writes DIR/deliveries/<YYYY-MM-DD>/<title_id>/<title_id>.mp4 (24-40 s, 640x360, 25 fps, H.264 + AAC) with its
sidecar <title_id>.json (title, provider, expected_languages; series_id/season/episode for the 4 episodes of corpus-show),
query frames under DIR/frames/ and DIR/truth.json. A title: 4-7 content shots of lavfi pictures (seeds and colours pinned;
cuts, some fades), 3-5 lines spoken by espeak-ng (English; German in two titles) over a quiet bed, 1-3 signs (40-px text on
a plate; English, German, Korean, Japanese) and, by plan, black, digital silence, colour bars + tone, end credits over black.
Five sentences are spoken in two titles each: the facet queries' filter picks one. Generators from prism_assets_tests/support.

truth.json: {version, generator, seed, n_titles, fps, size, facet_fields, counts, seconds,
 titles: {title_id: {title_id, date, video, sidecar, split, duration_s,
   facets {title, provider, expected_languages, series_id, season, episode, kind: episode|film},
   shots [{index, kind: content|bars|black|credits, start_s, end_s, source, fade_in, fade_out}],
   lines [{id, start_s, end_s, text, language, paraphrase, shared}], signs [{id, start_s, end_s, text, language, y, style, shot_index}],
   qc {black, digital_silence, colour_bars: [[start_s, end_s]]}, credits {start_s, end_s, style: roll|static, lines} | null}},
 queries [{id, split, type, text | frame | a, b, within_s, target {title_id, start_s, end_s} | null, filters?, also_in?, language?, source?}]}
`process_corpus` runs `prism process` per title in its own data dir and DAGSTER_HOME: seconds and exit code per title.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from prism_assets_tests.support.localization_media import SR, _wav, bed, speak
from prism_assets_tests.support.text_media import FONT, FONT_CJK, NAMES, _drawtext, _melody, _run, _text_file, extract_frames

REPO = Path(__file__).resolve().parents[1]
W, H, FPS = 640, 360, 25
SERIES = "corpus-show"
FIRST_DAY = date(2024, 5, 1)
SPEED = 140  # espeak-ng words per minute: moderate, Whisper base reads it
# (title, provider, episode (0: film), flags, sign languages, German lines)
PLAN = [("Corpus Show: Pilot", "northwind-tv", 1, "black credits_roll", "en ko", 0), ("Corpus Show: The Bridge", "northwind-tv", 2, "dsil", "en ja", 0),
        ("Corpus Show: Harvest", "northwind-tv", 3, "credits_static", "de ko", 0), ("Corpus Show: Finale", "northwind-tv", 4, "black", "en ja", 0),
        ("The Northern Cliff", "harbor-films", 0, "bars", "en en", 0), ("Der stille Hafen", "rhein-media", 0, "", "de de", 2),
        ("Blue Valley", "harbor-films", 0, "black dsil", "en ko", 1), ("Lanterns at Dusk", "meridian-pictures", 0, "credits_roll", "ja en", 0),
        ("Crossing Seoul", "meridian-pictures", 0, "", "ko ja en", 0), ("Iron Orchard", "atlas-docs", 0, "credits_static black", "en de", 0),
        ("Paper Moon Hotel", "atlas-docs", 0, "dsil", "ja", 0), ("Late Ferry", "solstice-studio", 0, "", "ko en", 0)]
# (sentence, paraphrase): spoken once in the corpus
LINES = [l.split(" | ") for l in """The lighthouse keeper found a broken telescope on the northern cliff | an old man discovers a damaged spyglass near the sea
Our grandmother planted seven lemon trees behind the railway station | an elderly woman grew citrus near the train depot
The baker burned every loaf because the oven clock had stopped | all the bread was ruined when the stove timer failed
A violet balloon drifted over the stadium during the final match | a purple balloon floated above the arena in the championship game
The museum guard caught a thief hiding inside a wooden canoe | a gallery security officer found a robber concealed in a small boat
Heavy snow closed the mountain tunnel for three whole days | a winter storm blocked the road under the peaks for seventy two hours
My uncle repairs antique pianos in a garage near the river | a relative fixes old keyboards in a workshop by the water
The astronaut dropped her wedding ring somewhere inside the space station | a woman in orbit lost her marriage band aboard the orbital lab
Twelve penguins escaped from the zoo and walked to the harbour | a group of flightless birds left their enclosure and went to the docks
The farmer sold his tractor to buy a small red airplane | an agricultural worker traded his farm vehicle for a little plane
A chess tournament in the library ended after fourteen hours | a board game contest among the bookshelves finished after a very long day
The chef refused to cook anything that contained mushrooms | the cook would not prepare any dish with fungi in it
Fireworks frightened the horses at the summer festival last night | explosions at the celebration made the animals in the stable panic
The bridge inspector counted more than four hundred rusty bolts | an engineer checking the crossing found hundreds of corroded fasteners
Our neighbour trains parrots to whistle old jazz songs | the man next door teaches birds to sing classic swing tunes
The ferry captain refused to sail because of thick fog | the skipper kept the boat in port due to poor visibility
A rare orange frog was discovered near the waterfall yesterday | scientists spotted an unusual amphibian by the cascade
The mayor cancelled the parade after the bakery caught fire | the town leader called off the procession when a bread shop burned
Someone painted the old water tower bright yellow overnight | during the night a vandal coloured the tank on the hill
The pilot landed safely even though one engine had failed | the aircraft touched down without harm despite losing power on one side
My sister collects broken clocks from every city she visits | a sibling gathers damaged timepieces while travelling
The library will stay open until midnight during exam week | the reading room extends its hours while students take tests
A wolf was seen crossing the highway near the ski resort | a wild canine walked over the motorway close to the slopes
The orchestra played in the rain without a single umbrella | the musicians performed outdoors in wet weather with no cover
The detective found muddy footprints leading to the wine cellar | an investigator traced dirty tracks down to the basement
Thousands of bees swarmed the playground before school started | a huge cloud of insects covered the children's park in the morning
The tailor sewed a coat from forty different scarves | a clothes maker stitched a jacket out of many neck wraps
Our train stopped for an hour because a cow blocked the tracks | the railway journey was delayed by livestock on the line
The glassblower made a tiny ship inside a bottle | an artisan crafted a miniature vessel within a flask
The volcano on the island has been quiet for sixty years | the fire mountain there has not erupted in decades
A postman delivered a letter that was mailed fifty years ago | a very old envelope finally reached its address
The children built a snow castle taller than the school bus | kids made an ice fort bigger than a coach
The gardener discovered a silver coin under the rose bushes | a man tending the flowers dug up old money
The climber lost her gloves just below the summit | a mountaineer dropped her mittens near the top of the peak
The fisherman caught an old boot instead of a salmon | an angler pulled up footwear rather than a fish
The carpenter built a staircase that leads nowhere | a woodworker made steps that end at a blank wall
A storm knocked out the power across the whole valley | bad weather caused a blackout throughout the lowlands
The professor forgot his notes on the night train to Vienna | an academic left his papers on an overnight rail journey to Austria
The cat slept on the piano during the whole concert | a pet rested on the instrument while the show went on
The architect designed a house shaped like a seashell | a building planner created a home resembling a shell from the beach
Two brothers opened a bicycle shop in the old fire station | siblings started a bike store in a former firehouse
The nurse found a kitten hiding in the ambulance | a medical worker discovered a young cat in the emergency vehicle
The parrot repeated the password to every visitor | the talking bird revealed the secret code to guests
Someone left a cello on the bench at the bus stop | a large string instrument was abandoned at the transit shelter
The beekeeper sold honey that tasted like lavender | a honey producer offered a jar with a purple herb flavour
The actor forgot his lines on the opening night | the performer blanked on his script at the premiere
A giant kite got stuck on the cathedral roof | an enormous flying toy was caught on top of the church
Grandfather still writes letters with a feather pen | an old man uses a quill for his correspondence
The museum displays a dinosaur egg found in the desert | a fossil from a prehistoric nest in the sands is exhibited
The photographer waited six hours for the eagle to return | a camera operator spent most of a day expecting the bird of prey""".splitlines()]
# (sentence, paraphrase, title index with its filter, other title index with its filter): spoken in both titles
SHARED = [("The blue suitcase was left at the airport in Lisbon", "luggage was forgotten at a Portuguese terminal", (1, {"series_id": SERIES}),
           (7, {"provider": "meridian-pictures"})),
          ("Please meet me at the old clock tower at noon", "let us gather by the ancient bell tower at midday", (0, {"series_id": SERIES, "episode": 1}),
           (2, {"series_id": SERIES, "episode": 3})),
          ("The harvest this autumn was the best in twenty years", "this fall's crop was the greatest in two decades", (5, {"language": "de"}),
           (9, {"provider": "atlas-docs"})),
          ("Nobody remembered to feed the goldfish while we were away", "the pet fish went hungry during our trip", (3, {"series_id": SERIES}),
           (11, {"provider": "solstice-studio"})),
          ("The generator behind the barn started making strange noises", "the power machine by the farm building sounded odd",
           (4, {"provider": "harbor-films"}), (8, {"provider": "meridian-pictures"}))]
GERMAN = [("Der Zug nach Hamburg fährt heute vom dritten Gleis ab", "die Bahn Richtung Hamburg startet heute an Bahnsteig drei"),
          ("Meine Katze schläft jeden Nachmittag auf dem warmen Dach", "mein Haustier ruht täglich auf dem sonnigen Dach"),
          ("Der Förster hat im Wald einen alten Brunnen gefunden", "im Forst entdeckte der Waldhüter eine alte Quelle"),
          ("Im Winter verkauft der Bäcker heiße Schokolade am Marktplatz", "in der kalten Jahreszeit gibt es beim Bäcker Kakao auf dem Markt")]
SIGNS = {"en": ["NORTH HARBOR", "CITY LIBRARY", "FERRY TERMINAL", "HOTEL ASTORIA", "FRESH FISH MARKET", "ROOFTOP GARDEN", "PLATFORM 9 EXIT",
                "MUSEUM OF MAPS", "BICYCLE REPAIR", "OBSERVATORY", "NO PARKING ZONE", "WINTER SALE", "SILVER LAKE MOTEL", "OLD MILL ROAD"],
         "de": ["BAHNHOF NORD", "KEIN AUSGANG", "STADTBIBLIOTHEK", "APOTHEKE", "RATHAUSPLATZ", "FAHRKARTEN"],
         "ko": ["서울역 출구", "부산 시장", "제주 공항", "남산 타워", "광화문 광장", "대전 터미널", "인천 항구"],
         "ja": ["東京タワー", "大阪 たこ焼き", "京都 ホテル", "札幌 ラーメン", "横浜 みなと", "博多 うどん", "神戸 カフェ"]}
NO_ANSWER = ["A submarine surfaced beneath the frozen arctic ice", "The violinist tuned her instrument before the wedding",
             "a dentist pulled out the wrong tooth", "The spaceship landed on a moon of Jupiter", "PIZZA DELIVERY", "SKI RENTAL",
             "우체국 창구", "名古屋城 公園", "two pirates argue about buried treasure on a beach", "Die Polizei sucht einen gestohlenen Traktor"]
KINDS = ["testsrc2", "mandelbrot", "life", "cellauto", "rgbtestsrc", "colorspectrum", "box", "yuvtestsrc", "gradients"]
CALM = ["gradients", "box", "colorspectrum", "yuvtestsrc", "rgbtestsrc"]  # pictures a sign is drawn over (Tesseract reads it there)
ROLES = ["Directed by", "Written by", "Music by", "Produced by", "Edited by", "Camera"]


def _hex(rng) -> str:
    return f"0x{int(rng.integers(0, 1 << 24)):06x}"


def _source(kind: str, rng) -> tuple[str, str]:
    """(lavfi source with size/rate, post filters) for a content shot: every random choice pinned by `rng`."""
    hue = f",hue=h={int(rng.integers(0, 360))}"
    seed = int(rng.integers(1, 1 << 30))
    coarse = kind in ("life", "cellauto")  # cells of 4 px: patterns, not noise
    base = f"{'color' if kind == 'box' else kind}=s={W // 4 if coarse else W}x{H // 4 if coarse else H}:r={FPS}"
    up = f",scale={W}:{H}:flags=neighbor"
    if kind == "mandelbrot":
        return base + f":start_scale={rng.uniform(1.5, 4):.2f}:outer={rng.choice(['iteration_count', 'normalized_iteration_count'])}", hue
    if kind == "life":
        return base + f":seed={seed}:ratio={rng.uniform(0.1, 0.4):.2f}:mold=8:life_color={_hex(rng)}:death_color={_hex(rng)}:mold_color={_hex(rng)}", up
    r0, r1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)  # black..white mapped to two pinned colours
    tint = ",format=rgb24,lutrgb=" + ":".join(f"{c}='{a}+val*{(b - a) / 255:.4f}'" for c, a, b in zip("rgb", r0, r1))
    if kind == "cellauto":
        return base + f":rule={rng.choice([18, 30, 90, 110, 150])}:seed={seed}:random_fill_ratio=0.5:scroll=1", up + tint
    if kind in ("rgbtestsrc", "yuvtestsrc"):  # static patterns moved: a still would be a freeze (a QC event)
        return base, f",scroll={'v' if kind == 'rgbtestsrc' else 'h'}={rng.uniform(0.002, 0.006):.4f}" + hue
    if kind == "colorspectrum":
        return base + f":type={rng.choice(['black', 'white', 'all'])}", f",scroll=h={rng.uniform(0.002, 0.008):.4f}" + hue
    if kind == "box":
        vx, vy = rng.uniform(60, 200, 2)
        return base + f":c={_hex(rng)}", "".join(
            f",drawbox=x='t*{v:.0f}-floor(t*{v:.0f}/{W})*{W}':y={y}:w={s}:h={s}:color={_hex(rng)}:t=fill"
            for v, y, s in ((vx, int(rng.integers(0, H - 140)), 140), (vy, int(rng.integers(0, H - 90)), 90)))
    if kind == "gradients":
        return base + (f":c0={_hex(rng)}:c1={_hex(rng)}:nb_colors=2:seed={seed}:speed={rng.uniform(0.01, 0.04):.3f}"
                       f":x0={int(rng.integers(0, W))}:y0=0:x1={int(rng.integers(0, W))}:y1={H}"), ""
    return base, hue  # testsrc2


def _snap(t: float) -> float:
    return round(round(t * FPS) / FPS, 3)


def _split_range(a: float, b: float, k: int, rng) -> list[tuple[float, float]]:
    w = rng.uniform(0.7, 1.3, k)
    edges = [a] + [_snap(a + (b - a) * x) for x in np.cumsum(w)[:-1] / w.sum()] + [b]
    return list(zip(edges[:-1], edges[1:]))


def _make_title(i: int, spec: tuple, said: list[tuple], signs: list[tuple[str, str]], rng, out_dir: Path, tmp: Path) -> dict:
    """Render title `i` (said: [(text, language, paraphrase, shared)], signs: [(text, language)]) and return its truth."""
    name, provider, episode, flags, _, _ = spec
    flags = set(flags.split())
    tid = f"{SERIES}-e{episode}" if episode else f"corpus-film-{i + 1:02d}"
    day = (FIRST_DAY + timedelta(days=i // 4)).isoformat()
    folder = out_dir / "deliveries" / day / tid
    folder.mkdir(parents=True, exist_ok=True)
    sigs = [speak(t, "de" if lang == "de" else "en-us", tmp / f"{i}_{k}.wav", SPEED) for k, (t, lang, _, _) in enumerate(said)]
    bars = 2.4 if "bars" in flags else 0.0
    credits_len = round(float(rng.uniform(5, 8)), 1) if flags & {"credits_roll", "credits_static"} else 0.0
    black_len = 3.2 if {"black", "dsil"} <= flags else (round(float(rng.uniform(2.0, 3.0)), 2) if "black" in flags else 0.0)
    dsil_len = 3.2 if {"black", "dsil"} <= flags else (round(float(rng.uniform(3.0, 3.6)), 2) if "dsil" in flags else 0.0)
    gaps = rng.uniform(0.9, 1.6, len(said))
    while len(said) > 3 and bars + 1.0 + sum(len(s) / SR for s in sigs) + gaps.sum() + max(black_len, dsil_len) + 1.0 + credits_len > 39.5:
        k = max(j for j, s in enumerate(said) if not s[3] and s[1] == "en")  # drop an unshared English line
        said, sigs, gaps = said[:k] + said[k + 1:], sigs[:k] + sigs[k + 1:], np.delete(gaps, k)
    special_at = int(rng.integers(1, len(said))) if black_len or dsil_len else -1
    t = bars + float(rng.uniform(0.8, 1.2))
    lines, black, dsil = [], [], []
    for k, ((text, lang, para, shared), sig) in enumerate(zip(said, sigs)):
        if k == special_at:
            a = _snap(t + 0.2)
            black += [[a, _snap(a + black_len)]] if black_len else []
            dsil += [[a, round(a + dsil_len, 3)]] if dsil_len else []
            t = max(x[1] for x in black + dsil) + 0.5
        d = len(sig) / SR
        lines.append({"id": f"{tid}/L{k}", "start_s": round(t, 3), "end_s": round(t + d, 3), "text": text, "language": lang, "paraphrase": para,
                      "shared": shared, "_sig": sig})
        t += d + float(gaps[k])
    body_end = _snap(max(t, 24.0 - credits_len) + 0.5 / FPS)
    duration = round(body_end + credits_len, 3)
    # picture: content shots over the body around the black segment. A sign fills a whole shot of 3-5 s (no pop-in inside a
    # shot) on a calm picture: the longest shots carry the signs, one over 5 s is cut in two first
    ranges = [(bars, black[0][0]), (black[0][1], body_end)] if black else [(bars, body_end)]
    n_shots = int(min(rng.integers(4, 8 - len(signs)), (body_end - bars - black_len) // 3.0))
    counts = [1] * len(ranges)
    for _ in range(n_shots - len(ranges)):
        counts[int(np.argmax([(b - a) / c for (a, b), c in zip(ranges, counts)]))] += 1
    spans = [x for (a, b), k in zip(ranges, counts) for x in _split_range(a, b, k, rng)]
    carry = []
    for j in sorted(range(len(spans)), key=lambda j: spans[j][0] - spans[j][1])[:len(signs)]:
        a, b = spans[j]
        if b - a > 5.0:
            d = float(rng.uniform(3, min(5, b - a - 1.5)))
            spans[j], rest = ((a, _snap(a + d)), (_snap(a + d), b)) if rng.random() < 0.5 else ((_snap(b - d), b), (a, _snap(b - d)))
            spans.append(rest)
        carry.append(spans[j])
    spans.sort()
    calm = [str(x) for x in rng.permutation(CALM)]
    busy = iter(rng.permutation([k for k in KINDS if k not in calm[:len(signs)]]))
    sign_at = {spans.index(x): r for r, x in enumerate(carry)}
    kind_of = {j: calm[sign_at[j]] if j in sign_at else str(next(busy)) for j in range(len(spans))}
    shots = [("bars", 0.0, bars, "smptebars", "", None)] if bars else []
    for j, (a, b) in enumerate(spans):
        shots.append(("content", a, b, *_source(kind_of[j], rng), sign_at.get(j)))
        if black and b == black[0][0]:
            shots.append(("black", *black[0], "color=c=black", "", None))
    if credits_len:
        shots.append(("credits", body_end, duration, "color=c=black", "", None))
    shot_rows, parts, draw, sign_rows = [], [], [], []
    for k, (kind, a, b, src, post, sign) in enumerate(shots):
        src = src if "s=" in src else f"{src}:s={W}x{H}:r={FPS}" if "=" in src else f"{src}=s={W}x{H}:r={FPS}"
        fade_in = kind == "content" and k > 0 and sign is None and rng.random() < 0.3
        fade_out = kind == "content" and k + 1 < len(shots) and shots[k + 1][0] == "black" and sign is None and rng.random() < 0.7
        nfr = int(round(b * FPS)) - int(round(a * FPS))
        post += ",fade=t=in:d=0.5" if fade_in else ""
        post += f",fade=t=out:st={(nfr / FPS) - 0.6:.2f}:d=0.6" if fade_out else ""
        parts.append(f"{src},trim=end_frame={nfr},setpts=PTS-STARTPTS,format=yuv420p{post}[s{k}]")
        shot_rows.append({"index": k, "kind": kind, "start_s": a, "end_s": b, "source": kind_of[spans.index((a, b))] if kind == "content" else kind,
                          "fade_in": fade_in, "fade_out": fade_out})
        if sign is None:
            continue
        # the sign over its whole shot, light-on-dark or dark-on-light: whichever the OCR's polarity rule (picture median
        # above 160: inverted) turns into bright strokes on this picture with the plate drawn
        text, lang = signs[sign]
        y = int(rng.integers(40, H - 120))
        raw = _run(["ffmpeg", "-v", "error", "-filter_complex", f"{src}{post},trim=start_frame={nfr // 2}", "-frames:v", "1",
                    "-f", "rawvideo", "-pix_fmt", "gray", "-"]).stdout
        tw = (40 if lang in ("ko", "ja") else 27) * len(text) + 36
        plate = np.zeros((H, W), bool)
        plate[y - 18:y + 58, max(0, (W - tw) // 2):(W + tw) // 2] = True
        grey = np.frombuffer(raw, np.uint8).reshape(H, W)
        dark_text = np.median(np.where(plate, 255, grey)) - 160.5 > 160.5 - np.median(np.where(plate, 0, grey))
        fg, bg = ("black", "white") if dark_text else ("white", "black")
        draw.append(f"drawtext=fontfile={FONT_CJK if lang in ('ko', 'ja') else FONT}:textfile={_text_file(tmp, f'sign{i}_{sign}.txt', text)}:fontsize=40"
                    f":fontcolor={fg}:box=1:boxcolor={bg}:boxborderw=18:x=(w-text_w)/2:y={y}:enable='gte(t,{a})*lt(t,{b})'")
        sign_rows.append({"id": f"{tid}/S{sign}", "start_s": a, "end_s": b, "text": text, "language": lang, "y": y,
                          "style": "dark-on-light" if dark_text else "light-on-dark", "shot_index": k})
    sign_rows.sort(key=lambda r: r["id"])
    credits = None
    if credits_len:
        names = [str(x) for x in rng.permutation(NAMES)]
        roll = [f"{r} {n}" for r, n in zip(ROLES, names)][: int(rng.integers(4, 7))]
        style = "roll" if "credits_roll" in flags else "static"
        speed = (H * 0.8 + len(roll) * 40) / credits_len
        for k, s in enumerate(roll):
            y = f"{H * 0.8 + k * 40:.0f}-(t-{body_end})*{speed:.1f}" if style == "roll" else f"{(H - len(roll) * 40) / 2 + k * 40:.0f}"
            draw.append(_drawtext(_text_file(tmp, f"roll{i}_{k}.txt", s), size=26, y=y, enable=f"gte(t,{body_end})"))
        credits = {"start_s": body_end, "end_s": duration, "style": style, "lines": roll}
    # audio: floor noise (never digital silence), quiet bed, speech, tone under bars, music under credits, zeros
    n = int(round(duration * SR))
    audio = rng.normal(0, 1e-4, n)
    b0, b1 = int(bars * SR), int(body_end * SR)
    audio[b0:b1] += bed(body_end - bars, seed=int(rng.integers(1, 1 << 30)), level=0.03)[: b1 - b0]
    for ln in lines:
        sig = ln.pop("_sig")
        audio[int(ln["start_s"] * SR):int(ln["start_s"] * SR) + len(sig)] += 0.8 * sig
    if bars:
        audio[:b0] += 0.1 * np.sin(2 * np.pi * 1000 * np.arange(b0) / SR)
    if credits_len:
        audio[b1:] += np.pad(_melody((n - b1) / SR, rng), (0, 1))[: n - b1]
    for a, b in dsil:
        audio[int(a * SR):int(b * SR)] = 0.0
    _wav(tmp / f"a{i}.wav", audio)
    graph = ";".join(parts) + ";" + "".join(f"[s{k}]" for k in range(len(parts))) + f"concat=n={len(parts)}:v=1:a=0"
    graph += ("," + ",".join(draw) if draw else "") + "[v]"
    video = folder / f"{tid}.mp4"
    _run(["ffmpeg", "-v", "error", "-y", "-filter_complex", graph, "-i", str(tmp / f"a{i}.wav"), "-map", "[v]", "-map", "0:a", "-c:v", "libx264",
          "-preset", "ultrafast", "-crf", "28", "-pix_fmt", "yuv420p", "-threads", "2", "-c:a", "aac", "-b:a", "96k", "-t", f"{duration}", str(video)])
    # German speech declares "de" (first when most lines are German); Korean/Japanese signs declare theirs (OCR languages)
    langs = (["de", "en"] if spec[5] >= 2 else ["en", "de"] if spec[5] else ["en"]) + sorted({s[1] for s in signs} & {"ko", "ja"})
    side = {"title": name, "provider": provider, "expected_languages": langs, **({"series_id": SERIES, "season": 1, "episode": episode} if episode else {})}
    (folder / f"{tid}.json").write_text(json.dumps(side, ensure_ascii=False, indent=1))
    return {"title_id": tid, "date": day, "video": str(video.relative_to(out_dir)), "sidecar": str((folder / f"{tid}.json").relative_to(out_dir)),
            "duration_s": duration, "facets": {"series_id": None, "season": None, "episode": None, **side, "kind": "episode" if episode else "film"},
            "shots": shot_rows, "lines": lines, "signs": sign_rows, "credits": credits,
            "qc": {"black": black, "digital_silence": dsil, "colour_bars": [[0.0, bars]] if bars else []}}


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", s.casefold()).split())


def _queries(titles: dict, rng, out_dir: Path) -> list[dict]:
    qs: list[dict] = []
    all_lines = [ln for t in titles.values() for ln in t["lines"]]
    all_signs = [s for t in titles.values() for s in t["signs"]]

    def add(typ, split, target, **kw):
        tgt = None if target is None else {"title_id": target[0], "start_s": target[1]["start_s"], "end_s": target[1]["end_s"]}
        qs.append({"id": f"{typ}-{sum(q['type'] == typ for q in qs):03d}", "split": split, "type": typ, **kw, "target": tgt})

    def unique_span(text: str) -> str:
        words = text.split()
        for _ in range(20):
            k = int(rng.integers(5, min(8, len(words)) + 1))
            a = int(rng.integers(0, len(words) - k + 1))
            span = " ".join(words[a:a + k])
            if sum(_norm(span) in _norm(x["text"]) for x in all_lines) == 1:
                return span
        return text

    (out_dir / "frames").mkdir(parents=True, exist_ok=True)
    for i, (tid, t) in enumerate(titles.items()):
        split = t["split"]
        own = [ln for ln in t["lines"] if not ln["shared"]]
        picks = [own[j] for j in rng.permutation(len(own))]
        for j, ln in enumerate(picks[:2]):
            add("exact_phrase", split, (tid, ln), text=ln["text"] if j == 0 else unique_span(ln["text"]), language=ln["language"], source=ln["id"])
        for ln in [x for x in picks[2:] + picks[:2] if x["language"] == "en"][:2]:
            add("paraphrase", split, (tid, ln), text=ln["paraphrase"], language="en", source=ln["id"])
        for s in t["signs"]:
            add("ocr_exact", split, (tid, s), text=s["text"], language=s["language"], source=s["id"])
            if s["language"] in ("en", "de"):
                for _ in range(20):  # one letter changed, not another sign's text
                    k = int(rng.choice([k for k, c in enumerate(s["text"]) if c.isalpha()]))
                    typo = s["text"][:k] + str(rng.choice([c for c in "ABCDEFGHIKLMNOPRSTUVWY" if c != s["text"][k]])) + s["text"][k + 1:]
                    if all(typo != x["text"] for x in all_signs):
                        break
                add("ocr_typo", split, (tid, s), text=typo, language=s["language"], source=s["id"])
            else:
                grams = [s["text"][k:k + 2] for k in range(len(s["text"]) - 1) if " " not in s["text"][k:k + 2]]
                grams = [g for g in grams if sum(g in x["text"] for x in all_signs) == 1 and not any(g in x for x in NO_ANSWER)]
                if grams:
                    add("cjk_substring", split, (tid, s), text=str(rng.choice(grams)), language=s["language"], source=s["id"])
        content = [s for s in t["shots"] if s["kind"] == "content"]
        chosen = [content[j] for j in rng.permutation(len(content))[: 2 if i % 2 == 0 else 1]]
        mids = [int(round((s["start_s"] + s["end_s"]) / 2 * FPS)) for s in chosen]
        got = dict((f, j) for f, _, j in extract_frames(out_dir / t["video"], mids, FPS, max_side=480, quality=8))
        for s, f in zip(chosen, mids):
            name = f"frames/{tid}_shot{s['index']}_f{f}.jpg"
            (out_dir / name).write_bytes(got[f])
            add("frame", split, (tid, s), frame=name, source=f"{tid}/shot{s['index']}", frame_t_s=round(f / FPS, 3))
        lines = t["lines"]
        pairs = [k for k in range(1, len(lines)) if lines[k]["shared"]] or list(range(1, len(lines)))
        k = int(rng.choice(pairs))
        a, b = lines[k - 1], lines[k]
        add("a_then_b", split, (tid, {"start_s": a["start_s"], "end_s": b["end_s"]}), a=a["text"], b=b["text"],
            within_s=float(np.ceil(b["start_s"] - a["end_s"]) + 2), source=[a["id"], b["id"]])
    for text, _, *sides in SHARED:
        ids = [list(titles)[j] for j, _ in sides if j < len(titles)]
        if len(ids) < 2:
            continue
        for (_, filters), tid in zip(sides, ids):
            ln = next(x for x in titles[tid]["lines"] if x["text"] == text)
            add("facet", titles[tid]["split"], (tid, ln), text=text, filters=filters, also_in=[x for x in ids if x != tid], source=ln["id"])
    for k, text in enumerate(NO_ANSWER):
        add("no_answer", ("dev", "test")[k % 2], None, text=text)
    for k, src in enumerate(["haldclutsrc=level=8", f"color=c=0x102030:s={W}x{H},drawgrid=w=40:h=40:t=3:c=0xffcc00"]):
        name = f"frames/no_answer_{k}.jpg"
        _run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v", "1", "-vf", f"scale={W}:{H}", "-q:v", "6", str(out_dir / name)])
        add("no_answer", ("dev", "test")[k % 2], None, frame=name)
    return qs


def make_corpus(out_dir: Path, n_titles: int = 12, seed: int = 0) -> dict:
    """Write the corpus (titles, sidecars, frames, truth.json) under `out_dir` and return the truth."""
    if not 1 <= n_titles <= 14:
        raise ValueError("n_titles must be 1..14 (12 covers every plan item; more reuse the plan as films)")
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    plan = [PLAN[i] if i < len(PLAN) else (f"Corpus Film {i + 1}", "solstice-studio", 0, *PLAN[i % len(PLAN)][3:])
            for i in range(n_titles)]
    pool = [LINES[j] for j in rng.permutation(len(LINES))]
    sign_pool = {k: [v[j] for j in rng.permutation(len(v))] for k, v in SIGNS.items()}
    german = [GERMAN[j] for j in rng.permutation(len(GERMAN))]
    titles = {}
    with tempfile.TemporaryDirectory(prefix="search_corpus_") as td:
        for i, spec in enumerate(plan):
            said = [(s, "en", p, True) for s, p, *sides in SHARED for j, _ in sides if j == i]
            said += [(s, "de", p, False) for s, p in (german.pop() for _ in range(spec[5]))]
            want = max(int(rng.integers(3, 6)), spec[5] + 2)
            if len(pool) < want - len(said):
                raise ValueError(f"sentence pool exhausted at title {i}")
            said += [(s, "en", p, False) for s, p in (pool.pop() for _ in range(want - len(said)))]
            said = [said[j] for j in rng.permutation(len(said))]
            signs = [(sign_pool[lang].pop(), lang) for lang in spec[4].split()]
            t = _make_title(i, spec, said, signs, np.random.default_rng([seed, i]), out_dir, Path(td))
            titles[t["title_id"]] = t
            print(f"{t['title_id']}: {t['duration_s']} s, {len(t['shots'])} shots, {len(t['lines'])} lines, {len(t['signs'])} signs", flush=True)
    order = rng.permutation(n_titles)  # drawn last: a title's content does not depend on n_titles
    for k, j in enumerate(order):
        list(titles.values())[int(j)]["split"] = "dev" if k < (n_titles + 1) // 2 else "test"
    queries = _queries(titles, np.random.default_rng([seed, 999]), out_dir)
    counts = {typ: sum(q["type"] == typ for q in queries) for typ in dict.fromkeys(q["type"] for q in queries)}
    truth = {"version": 1, "generator": "benchmarks/search_corpus.py", "seed": seed, "n_titles": n_titles, "fps": FPS, "size": [W, H],
             "facet_fields": {"series_id": "equal to the sidecar's", "episode": "equal to the sidecar's", "provider": "equal to the sidecar's",
                              "language": "one of the sidecar's expected_languages"},
             "titles": titles, "queries": queries, "counts": counts, "seconds": round(time.monotonic() - t0, 1)}
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False))
    return truth


def process_corpus(corpus_dir: Path, data_dir: Path, *, jobs: int = 1, only: list[str] | None = None) -> dict:
    """`prism process` every title of the corpus (or `only` these) into `data_dir` (PRISM_DATA_DIR, DAGSTER_HOME under it):
    seconds and exit code per title (and one line of stderr on failure), also written to data_dir/process.json."""
    corpus_dir, data_dir = Path(corpus_dir).resolve(), Path(data_dir).resolve()
    truth = json.loads((corpus_dir / "truth.json").read_text())
    (home := data_dir / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "PRISM_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "PRISM_DELIVERY_ROOT": str(corpus_dir / "deliveries")}

    def one(t: dict) -> tuple[str, dict]:
        t0 = time.monotonic()
        try:
            p = subprocess.run([str(REPO / ".venv" / "bin" / "prism"), "process", str(corpus_dir / t["video"]), "--title-id", t["title_id"], "--date", t["date"]],
                               env=env, capture_output=True, text=True, timeout=3600)
            rc, err = p.returncode, (p.stderr.strip().splitlines() or [""])[-1] if p.returncode else None
        except subprocess.TimeoutExpired:
            rc, err = 124, "timed out"
        row = {"seconds": round(time.monotonic() - t0, 1), "rc": rc, "error": err}
        print(json.dumps({"title_id": t["title_id"], **row}), flush=True)
        return t["title_id"], row

    todo = [t for t in truth["titles"].values() if not only or t["title_id"] in only]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        rows = dict(ex.map(one, todo))
    doc = {"corpus": str(corpus_dir), "data_dir": str(data_dir), "jobs": jobs, "titles": rows, "seconds": round(time.monotonic() - t0, 1),
           "failed": [k for k, v in rows.items() if v["rc"]]}
    (data_dir / "process.json").write_text(json.dumps(doc, indent=1))
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="corpus folder (deliveries/, frames/, truth.json)")
    ap.add_argument("--n", type=int, default=12, help="titles (12 covers the whole plan)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--process", type=Path, metavar="DATA_DIR", help="then `prism process` the titles into this data dir")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="process only these title ids")
    args = ap.parse_args(argv)
    truth = make_corpus(args.out, args.n, args.seed)
    print(json.dumps({"titles": len(truth["titles"]), "queries": truth["counts"], "seconds": truth["seconds"]}))
    if args.process:
        doc = process_corpus(args.out, args.process, jobs=args.jobs, only=args.only)
        print(json.dumps({"processed": len(doc["titles"]), "failed": doc["failed"], "seconds": doc["seconds"]}))
        return 1 if doc["failed"] else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
