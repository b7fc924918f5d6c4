"""`posters`: the title's poster candidates at full resolution, ranked by explainable scores.

    frame_stats + frame_samples + shots + text + structure -> posters   (pool: gpu: CLIP prompt score + de-duplication)

On-screen text (the structure domain's OCR of every poster-pool frame) lowers a candidate's score
(part `text_free`); frames inside the credits or a slate are excluded.
"""

import io

import numpy as np
import pandas as pd

from ..core.artifacts import Bundle
from ..core.pictures import Picture
from ..core.signal import Output, Result, Signal, SignalContext
from .assets import DOMAIN, VISUAL_SCHEMA_VERSION, with_attrs
from .checks import POSTER_RULES
from .clip import ClipLoadError
from .packs import PacksMissingError, pack_paths, read_pack_bytes, read_pack_image
from .select import POSTERS_CODE_VERSION, PosterParams, poster_exclusions, poster_score_parts, rank_posters
from .shots import transition_frames


def _crop_bars(jpeg: bytes, s: pd.Series) -> tuple[bytes, bool]:
    """The picture without its black bars (letterbox / pillarbox, from the frame's statistics)."""
    from PIL import Image

    img = Image.open(io.BytesIO(jpeg))
    w, h = img.size
    box = (int(s["bar_left"] * w), int(s["bar_top"] * h), w - int(s["bar_right"] * w), h - int(s["bar_bottom"] * h))
    cropped = box != (0, 0, w, h) and box[2] - box[0] > w // 4 and box[3] - box[1] > h // 4
    if not cropped:
        return jpeg, False
    buf = io.BytesIO()
    img.crop(box).save(buf, format="JPEG", quality=94)
    return buf.getvalue(), True


def structural_spans(structure: dict | None, text: pd.DataFrame | None) -> list[tuple[float, float, str]]:
    """(start_s, end_s, reason) where no poster may come from: the credits and the slates of structure.json,
    and every OCR'd frame with a slate line."""
    spans = []
    for k in ("opening", "end"):
        c = ((structure or {}).get("credits") or {}).get(k)
        if c:
            spans.append((float(c["start_s"]), float(c["end_s"]), f"{k}_credits"))
    spans += [(float(s["start_s"]), float(s["end_s"]), "slate") for s in (structure or {}).get("slates") or []]
    if text is not None and len(text) and "slate" in text:
        spans += [(float(t), float(t), "slate") for t in text.loc[text["slate"].astype(bool), "t_s"].unique()]
    return spans


def compute_posters(sc: SignalContext, frame_stats: pd.DataFrame, frame_samples: pd.DataFrame, shots: pd.DataFrame, text: pd.DataFrame,
                    structure: dict) -> Result:
    from PIL import Image

    clip = sc.model
    p = PosterParams.from_config(sc.config.get("posters"))
    fps = float(shots.attrs.get("producer", {}).get("fps") or 25.0)
    cands = frame_samples[frame_samples["kind"] == "poster"].reset_index(drop=True)
    packs = pack_paths(sc.storage, sc.title_id) if len(cands) else {}
    excluded = poster_exclusions(cands, frame_stats, shots, fps, p, structural_spans(structure, text)) if len(cands) else pd.Series([], dtype=object)
    parts = poster_score_parts(cands, p, text) if len(cands) else pd.DataFrame()
    emb = prompt = None
    info = None
    eligible = int((excluded == "").sum()) if len(cands) else 0
    if eligible:
        model = clip.get()
        info = model.info
        imgs = [read_pack_image(packs["posters"], r.offset, r.length) for r in cands.itertuples()]
        emb = model.encode_images(imgs, batch_size=clip.batch_size)
        if info.get("weights_trained") and p.prompts:
            pos = model.encode_text(list(p.prompts)).mean(axis=0)
            neg = model.encode_text(list(p.negative_prompts)).mean(axis=0) if p.negative_prompts else 0 * pos
            prompt = np.clip(0.5 + 2.0 * (emb @ pos - emb @ neg), 0, 1)
    # random-init embeddings say nothing about similarity: de-duplicate only with trained weights
    dedupe = emb if (info or {}).get("weights_trained") else None
    df = rank_posters(cands, parts, excluded, shots, p, embeddings=dedupe, prompt_score=prompt)
    st = frame_stats.set_index("frame")
    files, crops = {}, []
    for r in df.itertuples():
        files[r.image], cropped = _crop_bars(read_pack_bytes(packs["posters"], r.offset, r.length), st.loc[r.frame])
        crops.append(cropped)
    df["cropped_bars"] = crops
    sizes = [Image.open(io.BytesIO(files[i])).size for i in df["image"]] if len(df) else []
    df["width"] = [w for w, _ in sizes]
    df["height"] = [h for _, h in sizes]
    df = df.drop(columns=["offset", "length"])
    chosen_bad = [int(f) for f in df["frame"] if excluded[cands["frame"] == f].ne("").any()] if len(df) else []
    # independent re-check of the chosen frames against the shots' transitions and the stats
    trans = transition_frames(shots, len(frame_stats), guard=0)
    chosen_bad += [int(f) for f in df["frame"] if trans[int(f)] or st.loc[int(f), "black_ratio"] >= 0.5 or st.loc[int(f), "colour_bars"] >= 0.5]
    df = with_attrs(df, sc.producer(POSTERS_CODE_VERSION, model=info, params=p.as_dict(), count=p.count, eligible=eligible,
                                 prompt_score_used=prompt is not None, excluded_chosen=sorted(set(chosen_bad)),
                                 excluded_reasons={k: int(v) for k, v in excluded[excluded != ""].value_counts().items()} if len(cands) else {}))
    sc.provenance = info
    pictures = [Picture(f"#{i + 1} score {r.score:.3f}, {r.t_s:.2f} s", files[r.image]) for i, r in enumerate(df.itertuples())]
    return Result(Bundle(df, files=files), pictures=pictures, pictures_title="poster candidates, best first",
                  metadata={"posters": len(df), "candidates": len(cands), "eligible": eligible, "prompt_score_used": prompt is not None,
                            "top_score": float(df["score"].max()) if len(df) else 0.0})


POSTERS = Signal(
    name="posters", domain=DOMAIN, code_version=POSTERS_CODE_VERSION, inputs=("frame_stats", "frame_samples", "shots", "text", "structure"),
    pool="gpu", model="clip", compute=compute_posters, errors=(ClipLoadError, PacksMissingError),
    description="Top-N poster candidates at full resolution ranked by explainable scores (sharpness, exposure, contrast, "
    "colourfulness, free of on-screen text (OCR), optional CLIP prompt score), no black/blank/colour-bar/transition/credits/slate "
    "frames, diverse across shots; bars cropped.",
    outputs=(Output("posters", VISUAL_SCHEMA_VERSION, "titles/<title_id>/posters/<version>/ (posters.parquet + posters/*.jpg)",
                    kinds=("parquet", "jpeg"), rules=POSTER_RULES, export="posters.parquet"),),
)
