"""The API and its workers on S3 storage (moto's server): an upload to done, downloads streamed
and redirected to presigned URLs, and a 503 while the endpoint is away."""

from __future__ import annotations

import urllib.request

import pytest

from app.embedded.nats_server import free_port
from tests.support.app_client import check_byte_ranges, upload, wait_done


@pytest.mark.slow
def test_upload_to_done_on_s3_streamed_and_presigned(make_client, song, s3_bucket):
    client = make_client(STORAGE_URL=s3_bucket.url("svc"))
    response = upload(client, song, formats="mp3")
    assert response.status_code == 202, response.json
    upload_id = response.json["upload_id"]
    analysis = wait_done(client, upload_id)
    assert analysis.status_code == 200, analysis.json
    result = analysis.json
    assert result["key"] == "F minor"

    # Everything the upload made is in the bucket, below the prefix, and nothing elsewhere.
    keys = s3_bucket.object_keys()
    assert set(keys) == {
        f"svc/uploads/{upload_id}/original.flac",
        f"svc/outputs/{upload_id}/mp3.mp3",
        f"svc/waveforms/{upload_id}.png",
        f"svc/waveforms/{upload_id}.json",
        f"svc/loudness/{upload_id}.json",  # its gating blocks, for a batch's album gain
    }
    assert s3_bucket.read(f"svc/uploads/{upload_id}/original.flac") == song

    # Streamed through the API: the bucket's bytes.
    mp3 = client.get(result["outputs"]["mp3"]["url"])
    assert mp3.status_code == 200 and mp3.mimetype == "audio/mpeg"
    assert mp3.data == s3_bucket.read(f"svc/outputs/{upload_id}/mp3.mp3")
    assert check_byte_ranges(client, result["outputs"]["mp3"]["url"]) == mp3.data
    assert mp3.headers["Content-Disposition"] == 'attachment; filename="My_Song.mp3"'
    png = client.get(result["waveform"]["png"])
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    assert png.data == s3_bucket.read(f"svc/waveforms/{upload_id}.png")
    peaks = client.get(result["waveform"]["json"])
    assert peaks.json["length"] == 800

    # With S3_PRESIGN=1 (another API on the same database and bucket): a 302 to the bucket.
    presigning = make_client(STORAGE_URL=s3_bucket.url("svc"), S3_PRESIGN="1")
    redirected = presigning.get(result["outputs"]["mp3"]["url"])
    assert redirected.status_code == 302, redirected.status
    assert redirected.headers["Cache-Control"] == "no-store"
    location = redirected.headers["Location"]
    assert location.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/svc/outputs/")
    with urllib.request.urlopen(location, timeout=10) as fetched:
        assert fetched.read() == mp3.data
        assert fetched.headers["Content-Type"] == "audio/mpeg"
        assert 'filename="My_Song.mp3"' in fetched.headers["Content-Disposition"]
    # The result page's player may play from the bucket (its policy names it), and seeking
    # follows the redirect with its Range: the bucket answers it (206).
    page = presigning.get("/", headers={"Accept": "text/html"})
    policy = page.headers["Content-Security-Policy"]
    assert f"media-src 'self' {s3_bucket.endpoint} blob:" in policy
    assert f"connect-src 'self' {s3_bucket.endpoint};" in policy
    ranged = urllib.request.Request(location, headers={"Range": "bytes=1000-1999"})
    with urllib.request.urlopen(ranged, timeout=10) as fetched:
        assert fetched.status == 206 and fetched.read() == mp3.data[1000:2000]
        assert fetched.headers["Content-Range"] == f"bytes 1000-1999/{len(mp3.data)}"
    wave = presigning.get(result["waveform"]["png"])
    assert wave.status_code == 302
    with urllib.request.urlopen(wave.headers["Location"], timeout=10) as fetched:
        assert fetched.read() == png.data
        assert fetched.headers["Content-Type"] == "image/png"

    # A file gone from the bucket is a 404 either way (not a redirect to an error).
    s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=f"svc/waveforms/{upload_id}.png")
    for api in (client, presigning):
        gone = api.get(result["waveform"]["png"])
        assert gone.status_code == 404, gone.get_data(as_text=True)
        assert gone.json["error"]["code"] == "not_found"


@pytest.mark.slow  # the workers' start and stop: the test itself takes 3 s
def test_upload_while_s3_is_unreachable_is_a_503(make_client, song, s3_bucket):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = make_client(STORAGE_URL=s3_bucket.url("svc", endpoint=closed))
    response = upload(client, song, formats="mp3")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers.get("Retry-After")
    error = response.json["error"]
    assert error["code"] == "storage_unavailable" and "retry" in error["message"]
    assert closed not in error["message"]
    assert client.get("/api/jobs").json["total"] == 0  # nothing queued, no row
