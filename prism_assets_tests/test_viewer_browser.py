"""The serving API and the title viewer as a user meets them: a title processed by `prism process` (the
real Definitions: `proxy` and `search_index` included), `prism serve` as a process, Playwright driving
Debian's `chromium`:

- the catalogue lists the title with its red FAIL verdict; the search box finds a spoken line and its
  first hit opens the viewer at that moment;
- the player plays the proxy (H.264/AAC) and a click on the timeline seeks it;
- the QC verdict shows its reasons (loudness) with a picture per event;
- through the API: the same line is the first hit, a keyframe finds its own shot by picture, a path
  outside the artifact root is refused.

Screenshots go to `$PRISM_TEST_ARTIFACTS/viewer/` (default `test-artifacts/`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, free_port
from .support.serve import start_serve

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("PRISM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-domain-reliability", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(os.environ.get("PRISM_TEST_ARTIFACTS") or REPO / "test-artifacts") / "viewer"
PRISM = str(REPO / ".venv" / "bin" / "prism")


@pytest.fixture(scope="module")
def served(tmp_path_factory, ):
    """qc_composite processed through the CLI, then `prism serve` on a free port."""
    media = REPO.parent / "shared" / "media" / "qc_composite.mp4"
    if not media.exists():
        pytest.skip("shared media missing")
    tmp = tmp_path_factory.mktemp("viewer")
    env = {**os.environ, "PRISM_DATA_DIR": str(tmp / "data"), "DAGSTER_HOME": str(tmp / "dagster"), "PYTHONUNBUFFERED": "1"}
    for k in ("PRISM_API_KEYS", "PRISM_API_KEYS_SECRET", "PRISM_INDEX_URI", "PRISM_ARTIFACT_ROOT", "PRISM_CATALOG_URL", "PRISM_DELIVERY_ROOT"):
        env.pop(k, None)
    (tmp / "dagster").mkdir()
    shutil.copy(REPO / "dagster.yaml", tmp / "dagster" / "dagster.yaml")
    p = subprocess.run([PRISM, "process", str(media), "--title-id", "qc_composite", "--date", "2026-12-01"], env=env, capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    server, url = start_serve(env, free_port(), tmp / "serve.log")
    try:
        yield url, tmp
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_api_finds_the_line_and_the_frame_and_refuses_outside_paths(served):
    import httpx

    url, tmp = served
    with httpx.Client(base_url=url, timeout=30) as c:
        hits = c.post("/v1/search", json={"q": "ask what you can do for your country"}).json()["hits"]
        assert hits and hits[0]["title_id"] == "qc_composite" and 23.0 <= hits[0]["start_s"] <= 28.0, hits[:1]
        assert hits[0]["citation"].startswith("qc_composite@00:00:2")
        title = c.get("/v1/titles/qc_composite").json()
        assert title["qc"]["verdict"] == "fail" and any("loudness" in r for r in title["qc"]["reasons"])
        kf = c.get("/v1/titles/qc_composite/keyframes/3.jpg")
        assert kf.status_code == 200 and kf.headers["content-type"] == "image/jpeg"
        by_frame = c.post("/v1/search/frame", files={"image": ("k.jpg", kf.content, "image/jpeg")}).json()["hits"]
        assert by_frame[0]["title_id"] == "qc_composite" and by_frame[0]["unit_index"] == 3, by_frame[:2]
        ranged = c.get("/v1/titles/qc_composite/media", headers={"Range": "bytes=0-1023"})
        assert ranged.status_code == 206 and len(ranged.content) == 1024 and ranged.headers["content-range"].startswith("bytes 0-1023/")
        for bad in ("/v1/titles/..%2F..%2F..%2Fetc%2Fpasswd/media", "/v1/titles/%2e%2e/media", "/static/..%2F..%2Fsettings.py",
                    "/v1/titles/qc_composite/posters/..%2F..%2F..%2Fqc.json"):
            r = c.get(bad)
            assert 400 <= r.status_code < 500 and b"root:" not in r.content and b"import" not in r.content, (bad, r.status_code)
            assert "Traceback" not in r.text


def test_viewer_plays_seeks_and_shows_the_qc_failure(served):
    from playwright.sync_api import expect, sync_playwright

    url, _ = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(url + "/")
            expect(page.get_by_text("qc_composite").first).to_be_visible()
            expect(page.locator(".badge", has_text="FAIL").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "01-titles.png"), full_page=True)

            page.get_by_placeholder("Search speech").fill("my fellow Americans")
            page.get_by_role("button", name="Search").click()
            first = page.locator("ol.hits li").first
            expect(first).to_contain_text("qc_composite")
            expect(first).to_contain_text("fellow Americans")
            page.screenshot(path=str(ARTIFACTS / "02-search.png"), full_page=True)
            first.locator("a").first.click()

            page.wait_for_url("**/titles/qc_composite?t=*")
            video = page.locator("video#player")
            expect(video).to_be_visible()
            page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=30_000)
            start = page.evaluate("() => document.querySelector('video').currentTime")
            assert 19.0 <= start <= 23.0, f"the viewer should open at the hit's moment, not {start}"
            page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; return v.play(); }")
            page.wait_for_timeout(1500)
            assert page.evaluate("() => document.querySelector('video').currentTime") > start, "the proxy does not play"
            page.evaluate("() => document.querySelector('video').pause()")

            lane = page.locator(".lane[data-lane='shots']")
            expect(lane).to_be_visible()
            box = lane.bounding_box()
            left = 110
            page.mouse.click(box["x"] + left + (box["width"] - left) * 0.25, box["y"] + box["height"] / 2)
            page.wait_for_timeout(500)
            t = page.evaluate("() => document.querySelector('video').currentTime")
            shots = page.evaluate("() => [...document.querySelectorAll(\".lane[data-lane='shots'] .seg\")].map(s => parseFloat(s.dataset.start))")
            assert any(abs(t - s) < 0.05 for s in shots) or abs(t - 31.0 * 0.25) < 1.0, f"a click on the timeline did not seek: {t}"
            assert abs(t - start) > 2.0

            verdict = page.locator("section", has=page.get_by_role("heading", name="QC verdict"))
            expect(verdict.locator(".badge", has_text="FAIL")).to_be_visible()
            expect(verdict.locator("ul.reasons")).to_contain_text("loudness")
            expect(verdict.locator("ul.events li.sev-fail").first).to_contain_text("LUFS")
            img = verdict.locator("ul.events img").first
            expect(img).to_be_visible()
            assert img.evaluate("i => i.complete && i.naturalWidth > 0"), "the event's picture did not load"
            page.screenshot(path=str(ARTIFACTS / "03-viewer.png"), full_page=True)

            # the day of the delivery, title by title: its steps, verdict, SLA and the links to its runs and viewer
            page.goto(url + "/days/2026-12-01")
            row = page.locator("table.list tbody tr", has_text="qc_composite")
            expect(row.locator(".badge", has_text="FAIL")).to_be_visible()
            expect(row).to_contain_text("loudness")
            expect(row.locator("a", has_text="runs")).to_have_attribute("href", re.compile(r"/runs\?q%5B0%5D=tag%3Adagster%2Fpartition%3Dqc_composite$"))
            page.screenshot(path=str(ARTIFACTS / "04-day.png"), full_page=True)
            row.locator("a", has_text="viewer").click()
            page.wait_for_url("**/titles/qc_composite")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
