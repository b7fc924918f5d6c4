"""Localization signals (every audio and subtitle track of a title). Built so far: subtitle files and
streams as data (`subtitles.py`). The domain is not registered in `prism_assets/domains.py` yet: it
has no asset until the per-track profile, dub sync and subtitle QC exist."""
