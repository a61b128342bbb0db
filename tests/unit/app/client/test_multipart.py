"""The streamed upload body: its announced length is its length, a form parser reads back the
fields and files, each file's progress is told, and a second pass gives the same bytes."""

from __future__ import annotations

import io

import pytest
from werkzeug.formparser import parse_form_data

from app.client import Client
from app.client.multipart import CHUNK, FilePart, FileUnreadable, MultipartBody


def test_a_form_parser_reads_back_fields_and_files(tmp_path):
    big = tmp_path / "big.flac"
    big.write_bytes(bytes(range(256)) * (CHUNK // 64))  # four chunks
    odd = tmp_path / "odd.wav"
    odd.write_bytes(b"RIFF" + b"\0" * 10)
    told: list[tuple[str, int, int]] = []
    body = MultipartBody(
        [("formats", "mp3,opus"), ("normalize", "spotify")],
        [
            FilePart(big, "big.flac", lambda s, t: told.append(("big", s, t))),
            FilePart(odd, 'we"ird\r\nname.wav', lambda s, t: told.append(("odd", s, t))),
        ],
    )
    data = b"".join(body.chunks())
    assert len(data) == body.length
    assert b"".join(body.chunks()) == data  # sent again (a retry): the same bytes
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": body.content_type,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    _, form, files = parse_form_data(environ)
    assert form.to_dict() == {"formats": "mp3,opus", "normalize": "spotify"}
    sent = files.getlist("file")
    assert [f.read() for f in sent] == [big.read_bytes(), odd.read_bytes()]
    assert sent[0].filename == "big.flac"
    assert "\n" not in (sent[1].filename or "")
    size = big.stat().st_size
    of_big = [t for t in told if t[0] == "big"]
    assert of_big[:5] == [("big", n * CHUNK, size) for n in range(5)]
    assert of_big[5:] == of_big[:5]  # the second pass tells it again, from 0


def test_a_name_that_is_not_utf8_on_disk_is_sent_with_question_marks(tmp_path):
    odd = tmp_path / "odd.wav"
    odd.write_bytes(b"RIFF")
    body = MultipartBody([], [FilePart(odd, b"n\xff\xfe.wav".decode("utf-8", "surrogateescape"))])
    data = b"".join(body.chunks())
    assert len(data) == body.length
    assert b'filename="n??.wav"' in data


def test_a_file_gone_before_the_upload_is_unreadable_not_an_oserror(tmp_path):
    with pytest.raises(FileUnreadable, match="No such file"):
        MultipartBody([], [FilePart(tmp_path / "gone.wav", "gone.wav")])


@pytest.mark.parametrize("change", ["cut", "grown", "removed"])
def test_a_file_that_changes_while_sent_raises_and_never_sends_other_than_its_length(
    tmp_path, change
):
    song = tmp_path / "song.wav"
    song.write_bytes(b"x" * (3 * CHUNK))
    body = MultipartBody([], [FilePart(song, "song.wav")])
    chunks = body.chunks()
    sent = next(chunks) + next(chunks)  # the fields, the file's head
    if change == "cut":
        song.write_bytes(b"x" * CHUNK)
    elif change == "grown":
        song.write_bytes(b"x" * (4 * CHUNK))
    else:
        song.unlink()
    with pytest.raises(FileUnreadable, match=r"changed while|No such file"):
        for chunk in chunks:
            sent += chunk
    assert len(sent) < body.length


def test_an_upload_whose_file_goes_midway_is_not_retried_as_a_broken_connection(server, tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(b"RIFF" + b"\0" * CHUNK)
    slept: list[float] = []
    client = Client(server.url, "tok", sleep=slept.append, timeout=5)
    with pytest.raises(FileUnreadable, match="No such file"):
        client.upload(song, on_progress=lambda sent, total: song.unlink(missing_ok=True))
    assert slept == []
