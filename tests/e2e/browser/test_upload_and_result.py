"""The upload and result pages in a real browser: two files uploaded through the file input and
followed live to done, a result whose figures are the API's, its waveform drawn and its output
downloaded, a result page opened while its job waits that shows the results when it ends, a
ten-minute output sought to 80 % at once (a 206), a corrupt file shown failed with its reason,
another tenant refused (404), a hard-clipped sine's Checks card."""

from __future__ import annotations

import json
import os
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from audio.verdicts import verdicts
from tests.e2e.browser.conftest import ALPHA, BETA, PATIENCE_MS, shoot, sign_in
from tests.support.checked_files import FAILS, checked_flac
from tests.support.deployment import paused
from tests.support.http_calls import upload
from tests.support.songs import long_mp3, song_flac
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser


def api(site, path: str, token: str = ALPHA, accept: str | None = None) -> tuple[int, bytes]:
    """The API's answer to ``GET path`` with a bearer token (no browser involved)."""
    headers = {"Authorization": f"Bearer {token}"}
    if accept:
        headers["Accept"] = accept
    request = urllib.request.Request(f"{site.base}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def api_json(site, path: str, token: str = ALPHA) -> dict:
    status, body = api(site, path, token)
    assert status == 200, (path, status)
    return json.loads(body)


@pytest.fixture(scope="module")
def finished(site, browser, tmp_path_factory):
    """Two songs uploaded by ALPHA through the upload page, both followed to done: the ids of
    their uploads, by file name."""
    folder = tmp_path_factory.mktemp("songs")
    files = []
    for name, bpm, tonic, scale, seed in (
        ("first.flac", 120.0, "A", "minor", 3),
        ("second.flac", 96.0, "E", "major", 4),
    ):
        (folder / name).mkdir()
        data = song_flac(folder / name, bpm, tonic, scale, seconds=6, rate=22050, seed=seed)
        path = folder / name / name
        path.write_bytes(data)
        files.append(path)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.base)
    page = sign_in(context, site, ALPHA)
    page.get_by_test_id("format-wav").check()  # mp3 (the default) and wav
    page.get_by_test_id("normalize").select_option("podcast")  # both normalised to −16 LUFS
    page.get_by_label("Choose files…").set_input_files(files)
    rows = page.get_by_test_id("upload-row")
    expect(rows).to_have_count(2)
    # Uploaded and on their way (or already through): the rows follow their jobs.
    page.locator('.upload-row:is([data-status="running"], [data-status="done"])').first.wait_for()
    shoot(page, "upload-rows-in-progress")
    for row in rows.all():
        expect(row).to_have_attribute("data-status", "done", timeout=PATIENCE_MS)
    shoot(page, "upload-rows-done")
    ids = {}
    for row in rows.all():
        name = row.get_by_test_id("row-name").inner_text()
        upload_id = row.get_attribute("data-upload-id")
        ids[name] = upload_id
        # Every stage shown done, the result linked, the status said to screen readers.
        states = row.locator(".stage").evaluate_all("items => items.map(i => i.dataset.state)")
        assert states == ["done"] * 5
        assert row.get_by_test_id("row-result").get_attribute("href") == f"/uploads/{upload_id}"
        assert row.get_by_test_id("row-status").get_attribute("aria-live") == "polite"
        assert api_json(site, f"/api/jobs/{row.get_attribute('data-job-id')}")["status"] == "done"
    assert sorted(ids) == ["first.flac", "second.flac"]
    context.close()
    return ids


def test_two_files_uploaded_by_the_file_input_both_reach_done(finished):
    assert len(set(finished.values())) == 2


def test_the_result_page_shows_the_apis_figures_a_drawn_waveform_and_the_loudness_curve(
    finished, signed_in, site
):
    upload_id = finished["first.flac"]
    page = signed_in(ALPHA)
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"/uploads/{upload_id}")
    upload = api_json(site, f"/api/uploads/{upload_id}")
    analysis = api_json(site, f"/api/uploads/{upload_id}/analysis")
    expect(page.get_by_test_id("result-title")).to_have_text("first.flac")

    # The waveform: wavesurfer said ready, and its canvas has pixels drawn.
    waveform = page.get_by_test_id("waveform")
    expect(waveform).to_have_attribute("data-state", "ready")
    drawn = waveform.evaluate(
        """box => {
          const root = box.querySelector('div').shadowRoot;
          let inked = 0;
          for (const canvas of root.querySelectorAll('canvas')) {
            if (!canvas.width || !canvas.height) continue;
            const context = canvas.getContext('2d');
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i]) inked += 1;
          }
          return inked;
        }"""
    )
    assert drawn > 1000
    # It zooms, and plays the MP3 output.
    page.get_by_test_id("zoom-in").click()
    expect(waveform).to_have_attribute("data-zoom", "2")
    scroll = "box => { const s = box.querySelector('div').shadowRoot.querySelector('.scroll');"
    assert waveform.evaluate(scroll + " return s.scrollWidth / s.clientWidth; }") > 1.8
    expect(page.get_by_test_id("zoom-out")).to_be_enabled()
    assert waveform.get_attribute("data-audio-url") == analysis["outputs"]["mp3"]["url"]
    page.get_by_test_id("play").click()
    expect(page.get_by_test_id("play")).to_have_text("Pause")  # its name says what it does
    page.get_by_test_id("play").click()
    expect(page.get_by_test_id("play")).to_have_text("Play")

    # The figures are the API's (the raw values in data-value; the text rounds them).
    def value(testid: str) -> str:
        return page.get_by_test_id(testid).get_attribute("data-value")

    for testid, key in (
        ("integrated-lufs", "integrated_lufs"),
        ("loudness-range", "loudness_range_lu"),
        ("true-peak", "true_peak_dbtp"),
        ("bpm", "bpm"),
        ("bpm-confidence", "bpm_confidence"),
        ("key-confidence", "key_confidence"),
    ):
        assert analysis[key] is not None, key
        assert float(value(testid)) == pytest.approx(analysis[key], abs=1e-9), testid
    assert float(value("bpm-half")) == pytest.approx(analysis["bpm"] / 2)
    assert float(value("bpm-double")) == pytest.approx(analysis["bpm"] * 2)
    assert value("key") == analysis["key"] and value("camelot") == analysis["camelot"]
    assert float(value("duration")) == pytest.approx(upload["duration_s"])
    assert value("codec") == upload["codec"]
    text = page.get_by_test_id("integrated-lufs").inner_text()
    assert f"{analysis['integrated_lufs']:.1f} LUFS" in text
    assert f"{analysis['bpm']:.1f} BPM" in page.get_by_test_id("bpm").inner_text()
    assert analysis["key"] in page.get_by_test_id("key").inner_text()

    # The loudness curve: a point for every short-term value above the gate, and the targets.
    curve = page.get_by_test_id("loudness-curve")
    expect(curve).to_be_visible()
    assert curve.get_attribute("d").startswith("M")
    levels = [v for v in analysis["short_term_lufs"] if v is not None]
    assert levels
    expect(page.locator(".loudness-svg .curve-point")).to_have_count(len(levels))
    labels = page.get_by_test_id("target-label").all_text_contents()
    assert labels == ["\u221214 LUFS", "\u221216 LUFS", "\u221223 LUFS"]

    # Downloads: every output and the waveform; the MP3 downloaded is the API's.
    for fmt in analysis["outputs"]:
        link = page.get_by_test_id(f"download-{fmt}")
        assert link.get_attribute("href") == analysis["outputs"][fmt]["url"]
        assert link.get_attribute("download") is not None
    assert set(analysis["outputs"]) == {"mp3", "wav"}
    png = page.get_by_test_id("download-waveform-png")
    assert png.get_attribute("href") == analysis["waveform"]["png"]
    with page.expect_download() as download:
        page.get_by_test_id("download-mp3").click()
    saved = download.value.path()
    _, expected = api(site, analysis["outputs"]["mp3"]["url"])
    with open(saved, "rb") as file:
        assert file.read() == expected
    assert download.value.suggested_filename == "first.mp3"
    # Each output was normalised as chosen on the upload page, and says so with the API's figures.
    for fmt, output in analysis["outputs"].items():
        normalization = output["normalization"]
        assert normalization["target_lufs"] == -16 and normalization["true_peak_ceiling_dbtp"] == -1
        note = page.get_by_test_id(f"normalization-{fmt}").inner_text()
        assert "normalised to -16 LUFS" in note
        assert f"{normalization['output_integrated_lufs']:.1f} LUFS" in note
    # Where the sound starts and ends.
    assert float(value("sound")) == pytest.approx(analysis["audio_start_s"])

    # The job is linked.
    jobs = api_json(site, "/api/jobs?limit=10")["jobs"]
    (job,) = [j for j in jobs if j["upload_id"] == upload_id]
    assert page.get_by_test_id("job-link").get_attribute("href") == f"/jobs/{job['id']}"
    shoot(page, "result-page")
    assert errors == []  # no script failed


def test_the_result_page_at_phone_width(finished, signed_in):
    page = signed_in(ALPHA, width=375)
    page.goto(f"/uploads/{finished['second.flac']}")
    expect(page.get_by_test_id("waveform")).to_have_attribute("data-state", "ready")
    expect(page.get_by_test_id("loudness-curve")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    shoot(page, "result-page-phone")


def test_the_alias_gives_browsers_the_page_and_other_clients_the_json(finished, site):
    upload_id = finished["first.flac"]
    status, body = api(site, f"/uploads/{upload_id}")
    assert status == 200 and json.loads(body) == api_json(site, f"/api/uploads/{upload_id}")
    _, body = api(site, f"/uploads/{upload_id}", accept="text/html,*/*;q=0.8")
    assert b"<!doctype html>" in body and b"first.flac" in body


def test_another_tenant_gets_a_404_for_the_result(finished, signed_in, site):
    page = signed_in(BETA)
    response = page.goto(f"/uploads/{finished['first.flac']}")
    assert response.status == 404
    expect(page.get_by_test_id("not-found")).to_be_visible()
    assert "first.flac" not in page.content()
    shoot(page, "result-not-found")


def test_a_corrupt_file_shows_failed_with_its_reason(signed_in, site, tmp_path):
    corrupt = tmp_path / "broken.flac"
    corrupt.write_bytes(b"fLaC" + os.urandom(4000))
    page = signed_in(ALPHA)
    page.get_by_label("Choose files…").set_input_files(corrupt)
    row = page.get_by_test_id("upload-row")
    expect(row).to_have_attribute("data-status", "failed", timeout=PATIENCE_MS)
    job = api_json(site, f"/api/jobs/{row.get_attribute('data-job-id')}")
    assert job["status"] == "failed" and job["error"]
    expect(row.get_by_test_id("row-error")).to_have_text(job["error"])
    assert job["error"] in row.get_by_test_id("row-status").inner_text()  # said, not only shown
    shoot(page, "upload-row-failed")
    # Its result page says so, with the reason.
    page.goto(f"/uploads/{row.get_attribute('data-upload-id')}")
    expect(page.get_by_test_id("result-error")).to_have_text(job["error"])


def test_a_refused_upload_shows_the_apis_message_in_its_row_at_phone_width(signed_in, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"these are not sounds")
    page = signed_in(ALPHA, width=375)
    picker = page.get_by_label("Choose files…")
    picker.focus()  # a real input, reachable by keyboard (not display: none)
    expect(picker).to_be_focused()
    picker.set_input_files(text)
    row = page.get_by_test_id("upload-row")
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.get_by_test_id("row-error")).to_have_text(
        "not an audio file (MP3, WAV, FLAC, Ogg, M4A or AIFF)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(page, "upload-page-phone")


def test_a_bpm_range_typed_on_the_upload_page_goes_with_the_upload(signed_in, site, song, tmp_path):
    """A range the API refuses shows its sentence in the row; one it takes is the job's."""
    path = tmp_path / "song.flac"
    path.write_bytes(song)
    page = signed_in(ALPHA)
    page.get_by_test_id("bpm-range").fill("200-120")
    page.get_by_label("Choose files…").set_input_files(path)
    refused = page.get_by_test_id("upload-row")
    expect(refused).to_have_attribute("data-status", "failed")
    expect(refused.get_by_test_id("row-error")).to_have_text(
        "bpm_range must go from low to high, e.g. 120-200 (got 200-120)"
    )
    page.get_by_test_id("bpm-range").fill("120-200")
    page.get_by_label("Choose files…").set_input_files(path)
    taken = page.locator('.upload-row[data-job-id]:not([data-job-id=""])').first
    taken.wait_for()
    job = api_json(site, f"/api/jobs/{taken.get_attribute('data-job-id')}")
    assert job["bpm_range"] == [120, 200]


def worker_of(deployment):
    (worker,) = [p for p in deployment.processes if p.log.name.startswith("worker")]
    return worker


def uploaded_and_done(site, song: bytes, name: str = "song.flac") -> str:
    """ALPHA's upload of ``song`` through the API, its job done: the upload's id."""
    status, body = upload(site.api_port, song, name=name, token=ALPHA)
    assert status == 202, body

    def ended() -> bool:
        return api_json(site, f"/api/jobs/{body['job_id']}")["status"] in ("done", "failed")

    assert wait_for(ended, PATIENCE_MS / 1000, interval=0.2)
    return body["upload_id"]


def test_a_result_page_opened_while_its_job_waits_shows_the_results_when_it_ends(
    signed_in, site, module_deployment, song
):
    page = signed_in(ALPHA)
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    with paused(worker_of(module_deployment)):  # no job moves until the page is open
        status, body = upload(site.api_port, song, name="later.flac", token=ALPHA)
        assert status == 202, body
        page.goto(f"/uploads/{body['upload_id']}")
        state = page.get_by_test_id("result-state")
        expect(state).to_have_attribute("data-status", "queued")
        expect(page.get_by_test_id("result-live")).to_contain_text("Following it live")
        page.wait_for_function("() => document.querySelector('script[src*=result_live]')")
        page.evaluate("window.notReloaded = true")  # a reload would lose this mark
        shoot(page, "result-page-waiting")
    # The same page, never reloaded, shows the results once the job is done.
    waveform = page.get_by_test_id("waveform")
    expect(waveform).to_have_attribute("data-state", "ready", timeout=PATIENCE_MS)
    assert page.evaluate("window.notReloaded") is True
    analysis = api_json(site, f"/api/uploads/{body['upload_id']}/analysis")
    lufs = float(page.get_by_test_id("integrated-lufs").get_attribute("data-value"))
    assert lufs == pytest.approx(analysis["integrated_lufs"], abs=1e-9)
    expect(page.get_by_test_id("loudness-curve")).to_be_visible()
    # The checks came with the page put in place: a row per verdict.
    expect(page.get_by_test_id("checks").locator(".check")).to_have_count(6)
    assert page.title().startswith("later.flac")
    shoot(page, "result-page-followed-to-done")
    assert errors == []


def test_the_player_seeks_a_ten_minute_output_to_80_percent_at_once(
    signed_in, site, module_deployment, song
):
    # A ten-minute MP3 output, without ten minutes of pipeline: a short song's stored MP3
    # is replaced by one (what is served is what storage holds).
    upload_id = uploaded_and_done(site, song)
    stored = module_deployment.tmp / "store" / "outputs" / upload_id / "mp3.mp3"
    assert stored.is_file()
    stored.write_bytes(long_mp3(600))
    size = stored.stat().st_size
    page = signed_in(ALPHA)
    media_url = f"/api/uploads/{upload_id}/outputs/mp3"
    answers: list[tuple[int, str | None]] = []  # the player's requests: status, Content-Range

    def answered(response) -> None:
        if response.url.endswith(media_url):
            answers.append((response.status, response.headers.get("content-range")))

    page.on("response", answered)
    page.goto(f"/uploads/{upload_id}")
    waveform = page.get_by_test_id("waveform")
    expect(waveform).to_have_attribute("data-state", "ready")
    player = page.locator("#player")
    page.wait_for_function("() => document.querySelector('#player').duration > 590")
    assert player.evaluate("a => a.preload") == "metadata"
    seen = len(answers)
    # Seek as a person does: a click at 80 % of the waveform's width.
    box = waveform.bounding_box()
    page.mouse.click(box["x"] + 0.8 * box["width"], box["y"] + box["height"] / 2)
    page.wait_for_function(
        """() => { const a = document.querySelector('#player');
                   return !a.seeking && a.readyState >= 2
                     && Math.abs(a.currentTime / a.duration - 0.8) < 0.02; }"""
    )
    # The bytes from near 80 % were asked for and answered as a range: a 206.
    later = answers[seen:]
    starts = [
        int(r.split()[1].split("-")[0]) for status, r in later if status == 206 and r is not None
    ]
    assert any(0.6 * size < start < size for start in starts), (later, size)
    assert all(status in (200, 206) for status, _ in answers), answers
    shoot(page, "result-page-sought")


@pytest.mark.slow
def test_the_checks_card_marks_a_clipped_upload_failed_with_its_sentence_and_figures(
    signed_in, site, tmp_path
):
    """A sine hard-clipped at full scale: the card's clipping row is marked failed (in words
    too, not by colour alone), with the sentence and figures of ``audio.verdicts`` on the API's
    analysis; the loudness detail is shown with the loudness figures."""
    upload_id = uploaded_and_done(site, checked_flac(tmp_path, "clipped"), "clipped.flac")
    analysis = api_json(site, f"/api/uploads/{upload_id}/analysis")
    assert analysis["failed_checks"] == FAILS["clipped"]
    page = signed_in(ALPHA)
    errors: list = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"/uploads/{upload_id}")
    card = page.get_by_test_id("checks")
    expect(card.get_by_role("heading", name="Checks")).to_be_visible()

    clipping = card.get_by_test_id("check-clipping")
    assert clipping.get_attribute("data-status") == "fail"
    expect(clipping.get_by_role("img", name="Failed")).to_have_text("\u2717")
    expect(clipping.get_by_role("heading", name="Clipping")).to_be_visible()
    assert clipping.get_by_test_id("check-sentence").inner_text().startswith("Clipped: ")
    runs = analysis["clipping"]["runs"]
    assert runs > 0 and f"{runs} runs" in clipping.get_by_test_id("check-figures").inner_text()

    # Every row is the verdict the pure function gives on the API's record, in its order.
    channels = api_json(site, f"/api/uploads/{upload_id}")["channels"]
    expected = verdicts({**analysis, "channels": channels})
    rows = card.locator(".check")
    expect(rows).to_have_count(len(expected))
    labels = {"pass": "Passed", "fail": "Failed", "info": "For information"}
    for row, verdict in zip(rows.all(), expected, strict=True):
        assert row.get_attribute("data-testid") == f"check-{verdict.name}"
        assert row.get_attribute("data-status") == verdict.status
        expect(row.get_by_role("img", name=labels[verdict.status])).to_be_visible()
        expect(row.get_by_test_id("check-sentence")).to_have_text(verdict.sentence)
        expect(row.get_by_test_id("check-figures")).to_have_text(verdict.figures)
    assert card.get_attribute("data-failed") == "clipping true_peak"
    expect(page.get_by_test_id("checks-summary")).to_contain_text("Clipping, True peak")
    assert card.get_by_test_id("check-mono").get_attribute("data-status") == "pass"

    # The loudness detail, the API's figures (raw in data-value, rounded in the text).
    def value(testid: str) -> str:
        return page.get_by_test_id(testid).get_attribute("data-value")

    for testid, key in (
        ("max-momentary-lufs", "max_momentary_lufs"),
        ("max-short-term-lufs", "max_short_term_lufs"),
        ("plr", "plr_db"),
    ):
        assert analysis[key] is not None, key
        assert float(value(testid)) == pytest.approx(analysis[key], abs=1e-9), testid
    assert json.loads(value("channel-loudness")) == analysis["channel_loudness_lufs"]
    left, right = analysis["channel_loudness_lufs"]
    text = page.get_by_test_id("channel-loudness").inner_text()
    assert f"L {left:.1f}" in text and f"R {right:.1f}" in text
    shoot(page, "result-page-checks")
    assert errors == []
    # Nothing the page's CSP (style-src 'self', script-src 'self') would refuse in its markup.
    _, html = api(site, f"/uploads/{upload_id}", accept="text/html")
    markup = html.decode()
    assert 'data-testid="check-clipping"' in markup
    assert " style=" not in markup and "<style" not in markup
    for script in re.findall(r"<script[^>]*>", markup):
        assert " src=" in script or 'type="application/json"' in script, script

    phone = signed_in(ALPHA, width=375)
    phone.goto(f"/uploads/{upload_id}")
    expect(phone.get_by_test_id("check-clipping")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(phone, "result-page-checks-phone")
