"""The streamed upload body: its announced length is its length, a form parser reads back the
fields and files, each file's progress is told, and a second pass gives the same bytes."""

from __future__ import annotations

import io

from werkzeug.formparser import parse_form_data

from app.client.multipart import CHUNK, FilePart, MultipartBody


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
