"""Jobs, Job, Operations and Dead letters, in a real browser against the real stack: a tenant
sees its own jobs only, finds one by id and filters those whose upload fails a quality check; a
job's page shows its timeline; the admin pages are a 404 for anyone else; the operations page
shows the queues and draws its chart; an admin sends a dead letter back from its page and the
job completes, followed live on its page; a tenant cancels a queued job from its page and from
its row on the upload page."""

from __future__ import annotations

import http.client
import json
import re

import psutil
import pytest

from tests.e2e.browser.conftest import ADMIN, ALPHA, BETA, PATIENCE_MS, shoot
from tests.support.checked_files import checked_flac
from tests.support.http_calls import multipart
from tests.support.waiting import wait_for

pytestmark = pytest.mark.browser


def call(
    site, method: str, path: str, token: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", site.api_port, timeout=60)
    connection.request(method, path, body, {"Authorization": f"Bearer {token}", **(headers or {})})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    return response.status, json.loads(raw) if raw else {}


def upload(site, token: str, data: bytes, name: str = "song.flac") -> dict:
    content_type, head, tail = multipart(name)
    status, body = call(
        site, "POST", "/api/uploads", token, head + data + tail, {"Content-Type": content_type}
    )
    assert status == 202, body
    return body


def wait_job(site, job_id: str, ended=("done", "failed"), timeout: float = 180) -> dict:
    job: dict = {}

    def finished() -> bool:
        nonlocal job
        job = call(site, "GET", f"/api/jobs/{job_id}", ADMIN)[1]
        return job.get("status") in ended

    assert wait_for(finished, timeout, interval=0.2), job
    return job


@pytest.fixture(scope="module")
def alpha_job(site, song) -> dict:
    """One of ALPHA's uploads, its job done."""
    body = upload(site, ALPHA, song)
    assert wait_job(site, body["job_id"])["status"] == "done"
    return body


def job_rows(page) -> list[str]:
    return page.locator("#jobs-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.jobId)"
    )


@pytest.mark.slow
def test_the_job_list_shows_the_callers_jobs_only_and_finds_one_by_id(signed_in, alpha_job):
    job_id, upload_id = alpha_job["job_id"], alpha_job["upload_id"]
    page = signed_in(ALPHA)
    page.goto("/jobs")
    assert job_id in job_rows(page)
    assert int(page.locator('[data-count="done"]').inner_text()) >= 1
    shoot(page, "jobs")

    # Search by the upload's id, then by the job's: that one job.
    for ident in (upload_id, job_id):
        page.get_by_label("Job or upload id").fill(ident)
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r"q="))
        assert job_rows(page) == [job_id]
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"status=failed"))
    assert job_rows(page) == []
    page.get_by_label("Job or upload id").fill("not-an-id")
    page.get_by_role("button", name="Show").click()
    assert "whole job or upload id" in page.get_by_role("alert").inner_text()

    # The live counts come from a small JSON route, the caller's own.
    counts = page.request.get("/jobs/counts").json()
    assert counts["counts"]["done"] >= 1 and set(counts["counts"]) >= {"queued", "failed"}

    # BETA sees none of ALPHA's jobs, finds none by their ids, and gets the 404 page for one.
    other = signed_in(BETA, width=375)
    other.goto("/jobs")
    assert job_rows(other) == []
    assert other.locator('[data-count="done"]').inner_text() == "0"
    shoot(other, "jobs-other-tenant-phone")
    other.goto(f"/jobs?q={job_id}")
    assert job_rows(other) == []
    response = other.goto(f"/jobs/{job_id}")
    assert response.status == 404
    assert other.get_by_role("heading", name="Not found").is_visible()

    phone = signed_in(ALPHA, width=375)
    phone.goto("/jobs")
    assert job_id in job_rows(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways page
    shoot(phone, "jobs-phone")


def test_a_job_page_shows_its_timeline_and_a_link_to_the_result(signed_in, alpha_job):
    job_id, upload_id = alpha_job["job_id"], alpha_job["upload_id"]
    page = signed_in(ALPHA)
    page.goto("/jobs")
    page.locator(f'tr[data-job-id="{job_id}"] a').first.click()
    page.wait_for_url(f"**/jobs/{job_id}")
    assert page.locator("#job-status").inner_text() == "done"
    messages = page.locator("#timeline .message").all_inner_texts()
    assert messages[0] == "transcode started" and messages[-1] == "done", messages
    assert {"loudness started", "tempo_key started", "finalize started"} <= set(messages)
    stages = page.locator("#timeline .stage").all_inner_texts()
    assert stages[0] == "transcode" and stages[-1] == "finalize"
    assert page.locator("#result-link").get_attribute("href") == f"/uploads/{upload_id}"
    assert page.get_by_role("button", name="Retry this job").count() == 0  # a user's page
    assert page.locator("#job-error").is_hidden()
    shoot(page, "job")


def test_a_user_gets_a_404_for_the_operations_and_dead_letter_pages(signed_in):
    page = signed_in(ALPHA)
    page.goto("/jobs")
    assert page.get_by_role("link", name="Jobs", exact=True).count() == 1
    assert page.get_by_role("link", name="Operations").count() == 0
    for path in ("/operations", "/operations/stats", "/dead-letters", "/dead-letters/1"):
        response = page.goto(path)
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Not found").is_visible()
    shoot(page, "operations-for-a-user")


def test_the_operations_page_shows_the_queues_and_draws_its_chart(signed_in, alpha_job):
    page = signed_in(ADMIN)
    page.goto("/jobs")
    page.get_by_role("link", name="Operations").click()
    page.wait_for_url("**/operations")
    row = page.locator('#queues tr[data-queue="pipeline"]')
    assert row.locator("th").inner_text() == "pipeline"
    for field in ("waiting", "in_progress", "dead_letters"):
        assert row.locator(f'[data-field="{field}"]').inner_text().isdigit()
    # ALPHA's job ended within the hour: the chart has a bar for it, the table a row.
    page.locator("#throughput-chart rect.bar-done").first.wait_for()
    assert re.match(
        r"\d+ done and \d+ failed in the last hour",
        page.locator("#throughput-summary").inner_text(),
    )
    assert int(page.locator("#throughput-summary").inner_text().split()[0]) >= 1
    page.get_by_text("The minutes with jobs, as a table").click()
    assert page.locator("#throughput-table tbody tr").count() >= 1
    # Workers: the pipeline consumer's figures and recent stages, with what they are.
    assert page.locator('#workers [data-field="stages_started"]').inner_text() != "—"
    assert page.locator("#workers-verdict").inner_text()
    assert page.locator("#ops-problems").is_hidden()
    shoot(page, "operations")
    # The page reads its figures again by itself (every 5 s).
    page.locator("#ops-updated").filter(has_not_text="when the page was drawn").wait_for()
    phone = signed_in(ADMIN, width=375)
    phone.goto("/operations")
    phone.locator("#throughput-chart rect").first.wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(phone, "operations-phone")


def pause_workers(deployment) -> list[psutil.Process]:
    """Suspend the worker processes (quicker than stopping and starting them again)."""
    paused = []
    for process in deployment.processes:
        if process.log.name.startswith("worker") and process.popen.poll() is None:
            for child in psutil.Process(process.popen.pid).children(recursive=True):
                child.suspend()
                paused.append(child)
    return paused


def stop_workers(deployment) -> None:
    for process in deployment.processes:
        if process.log.name.startswith("worker") and process.popen.poll() is None:
            process.stop()


@pytest.mark.slow
def test_an_admin_retries_a_dead_letter_from_its_page_and_the_job_completes(
    signed_in, site, module_deployment, song
):
    # A stage that fails for good: the upload's stored original is gone when the worker runs
    # (no worker while it is removed), so every attempt of the transcode fails until the
    # message is dead-lettered and the job failed.
    stop_workers(module_deployment)
    body = upload(site, ALPHA, song)
    job_id = body["job_id"]
    (original,) = (module_deployment.tmp / "store" / "uploads" / body["upload_id"]).iterdir()
    kept = original.read_bytes()
    original.unlink()
    module_deployment.workers_without_metrics()
    failed = wait_job(site, job_id)
    assert failed["status"] == "failed", failed

    def letter_of_job() -> str | None:
        letters = call(site, "GET", "/api/dead-letters", ADMIN)[1]["dead_letters"]
        found = [d["id"] for d in letters if (d["payload"] or {}).get("args", [None])[0] == job_id]
        return found[0] if found else None

    assert wait_for(letter_of_job, 60)
    letter_id = letter_of_job()
    original.write_bytes(kept)  # the operator repairs the storage, then sends the message back

    page = signed_in(ADMIN)
    page.goto(f"/jobs/{job_id}")  # failed: its error, and the admin's retry button
    assert "internal error" in page.locator("#job-error").inner_text()
    assert page.get_by_role("button", name="Retry this job").is_visible()
    shoot(page, "job-failed-admin")

    page.get_by_role("link", name="Dead letters").click()
    page.wait_for_url("**/dead-letters")
    row = page.locator(f'#letters-table tr[data-id="{letter_id}"]')
    assert row.locator("td").nth(4).inner_text().startswith(job_id[:8])
    shoot(page, "dead-letters")

    # One dead letter: its payload and traceback.
    row.get_by_role("link", name=f"#{letter_id}").click()
    page.wait_for_url(f"**/dead-letters/{letter_id}")
    assert job_id in page.locator("pre").nth(1).inner_text()  # the payload's args
    assert "Traceback" in page.locator("pre").first.inner_text()
    shoot(page, "dead-letter")
    page.go_back()

    # The purge asks first; Escape (or Cancel) keeps everything.
    page.get_by_role("button", name="Purge…").click()
    dialog = page.get_by_role("dialog", name="Purge dead letters?")
    assert dialog.is_visible()
    assert page.evaluate("document.activeElement.textContent") == "Cancel"
    shoot(page, "dead-letters-purge-dialog")
    page.keyboard.press("Escape")
    assert dialog.is_hidden() and row.is_visible()

    # Select it and retry the selection: it goes, the message names its job.
    page.get_by_label(f"Select dead letter {letter_id}").check()
    assert page.locator("#selected-count").inner_text() == "1 selected"
    page.get_by_role("button", name="Retry selected").click()
    status = page.get_by_role("status").filter(has_text="sent back")
    status.wait_for()
    assert row.count() == 0
    shoot(page, "dead-letters-retried")

    # Its job's page follows it live to done (the event stream), the replay in its timeline.
    status.get_by_role("link", name=job_id[:8]).click()
    page.wait_for_url(f"**/jobs/{job_id}")
    page.locator("#job-status", has_text="done").wait_for(timeout=PATIENCE_MS)
    messages = page.locator("#timeline .message").all_inner_texts()
    assert any(m.startswith(f"replayed from dead letter {letter_id}") for m in messages), messages
    assert messages[-1] == "done"
    assert page.locator("#job-error").is_hidden()
    assert page.get_by_role("button", name="Retry this job").is_hidden()
    shoot(page, "job-after-dead-letter-retry")
    assert wait_job(site, job_id)["status"] == "done"


def test_a_tenant_cancels_a_queued_job_from_its_page_and_from_its_upload_row(
    signed_in, site, module_deployment, song, tmp_path
):
    paused = pause_workers(module_deployment)  # the jobs stay queued until canceled
    try:
        job_id = upload(site, ALPHA, song, name="to-cancel.flac")["job_id"]
        page = signed_in(ALPHA)
        page.goto(f"/jobs/{job_id}")
        assert page.locator("#job-status").inner_text() == "queued"
        button = page.get_by_role("button", name="Cancel this job")
        shoot(page, "job-queued-cancel")
        button.click()
        page.locator("#job-status", has_text="canceled").wait_for()
        assert "Canceled" in page.locator("#job-message").inner_text()
        assert button.is_hidden()  # nothing left to cancel
        page.locator("#timeline .message", has_text="canceled by alpha").wait_for()
        shoot(page, "job-canceled")
        assert call(site, "GET", f"/api/jobs/{job_id}", ALPHA)[1]["status"] == "canceled"

        # the upload page: each accepted row has its own Cancel
        page.goto("/")
        (tmp_path / "row.flac").write_bytes(song)
        page.get_by_label("Choose files…").set_input_files(tmp_path / "row.flac")
        row = page.get_by_test_id("upload-row")
        row.get_by_role("button", name="Cancel row.flac").click()
        page.locator('.upload-row[data-status="canceled"]').wait_for()
        assert "Canceled" in row.get_by_test_id("row-status").inner_text()
        assert row.get_by_test_id("row-cancel").is_hidden()
        shoot(page, "upload-row-canceled")
        row_job = row.get_attribute("data-job-id")
        assert call(site, "GET", f"/api/jobs/{row_job}", ALPHA)[1]["status"] == "canceled"
    finally:
        for process in paused:
            process.resume()


@pytest.mark.slow
def test_the_jobs_page_filters_the_jobs_whose_upload_fails_a_check(signed_in, site, tmp_path):
    """A sine hard-clipped at full scale and a clean one: "Fails check: Clipping" lists the
    first and not the second, with the status filter too; another tenant's list stays empty."""
    clipped = upload(site, ALPHA, checked_flac(tmp_path, "clipped"), name="clipped.flac")
    clean = upload(site, ALPHA, checked_flac(tmp_path, "clean"), name="clean.flac")
    for body in (clipped, clean):
        assert wait_job(site, body["job_id"])["status"] == "done"

    def api_listed(query: str) -> list[str]:
        status, body = call(site, "GET", f"/api/jobs?limit=25&{query}", ALPHA)
        assert status == 200, body
        return [job["id"] for job in body["jobs"]]

    clipping = api_listed("failing=clipping")
    assert clipped["job_id"] in clipping and clean["job_id"] not in clipping

    page = signed_in(ALPHA)
    page.goto("/jobs")
    assert {clipped["job_id"], clean["job_id"]} <= set(job_rows(page))
    page.get_by_label("Fails check").select_option(label="Clipping")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"failing=clipping"))
    assert job_rows(page) == clipping  # the API's list, in its order
    assert page.get_by_label("Fails check").input_value() == "clipping"  # kept on the new page
    assert "failing Clipping" in page.locator("#list-heading").inner_text()
    shoot(page, "jobs-failing-clipping")

    # With the status filter: the two narrow each other.
    page.get_by_label("Status", exact=True).select_option("failed")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"status=failed.*failing=clipping"))
    assert job_rows(page) == []
    assert "No failed jobs whose upload fails the check: Clipping." in page.inner_text("main")
    page.get_by_label("Status", exact=True).select_option("done")
    page.get_by_label("Fails check").select_option(label="Any check")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"status=done.*failing=any"))
    assert job_rows(page) == api_listed("status=done&failing=any")
    assert clean["job_id"] not in job_rows(page)

    # Clear: every job again.
    page.get_by_role("link", name="Clear").click()
    page.wait_for_url(re.compile(r"/jobs$"))
    assert clean["job_id"] in job_rows(page)

    other = signed_in(BETA)
    other.goto("/jobs?failing=clipping")
    assert job_rows(other) == []
