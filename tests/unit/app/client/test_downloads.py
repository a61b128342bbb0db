"""Resuming a download only when the server answered exactly the rest: a server that ignores
``Range`` (200), answers another range, or finds the range past the end (416) gets the file
started again — never bytes spliced at the wrong place."""

from __future__ import annotations

import pytest

from app.client import Client, FileExists, PhantomChainError, RetryPolicy
from tests.unit.app.client.conftest import Scripted

WHOLE = bytes(range(256)) * 40
HAVE = 1000


def whole(status: int = 200):
    return status, {"ETag": '"v2"', "Content-Disposition": 'attachment; filename="s.mp3"'}, WHOLE


def rest(start: int):
    headers = {"ETag": '"v2"', "Content-Range": f"bytes {start}-{len(WHOLE) - 1}/{len(WHOLE)}"}
    return 206, headers, WHOLE[start:]


def download(server: Scripted, tmp_path, answers, part: bytes | None = WHOLE[:HAVE]):
    server.answers = list(answers)
    target = tmp_path / "s.mp3"
    if part is not None:
        (tmp_path / "s.mp3.part").write_bytes(part)
    with Client(server.url, "tok", sleep=lambda s: None) as client:
        got = client.download("u1", "mp3", target)
    assert target.read_bytes() == WHOLE and got.size == len(WHOLE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp3"]
    return got, [headers.get("Range") for _, _, headers in server.seen]


def test_the_rest_is_appended(server, tmp_path):
    got, ranges = download(server, tmp_path, [rest(HAVE)])
    assert got.resumed_from == HAVE and ranges == [f"bytes={HAVE}-"]


def test_a_server_ignoring_range_gives_the_whole_file_once(server, tmp_path):
    got, ranges = download(server, tmp_path, [whole()])
    assert got.resumed_from == 0 and ranges == [f"bytes={HAVE}-"]


@pytest.mark.parametrize(
    "answer",
    [rest(HAVE - 10), (416, {"Content-Range": f"bytes */{len(WHOLE)}"}, b"{}")],
    ids=["another-range", "416"],
)
def test_any_other_answer_starts_again(server, tmp_path, answer):
    got, ranges = download(server, tmp_path, [answer, whole()])
    assert got.resumed_from == 0 and ranges == [f"bytes={HAVE}-", None]


def test_into_a_folder_by_the_servers_name(server, tmp_path):
    server.answers = [whole()]
    with Client(server.url, "tok") as client:
        got = client.download("u1", "mp3", tmp_path)
    assert got.path == str(tmp_path / "s.mp3")
    assert [p.name for p in tmp_path.iterdir()] == ["s.mp3"]


@pytest.mark.parametrize("name", ["a\x00b.mp3", "\x1b]0;owned\x07.mp3", "../..", "/"])
def test_a_name_no_file_should_have_falls_back_to_the_uploads(server, tmp_path, name):
    server.answers = [(200, {"Content-Disposition": f'attachment; filename="{name}"'}, WHOLE)]
    with Client(server.url, "tok") as client:
        got = client.download("u1", "mp3", tmp_path)
    assert got.path == str(tmp_path / "u1.mp3")
    assert [p.name for p in tmp_path.iterdir()] == ["u1.mp3"]


@pytest.mark.parametrize("planted", [".u1.mp3.part", ".u1.mp3.part.etag"])
def test_a_part_file_that_is_a_symlink_is_never_written_through(server, tmp_path, planted):
    victim = tmp_path / "victim"
    victim.write_bytes(b"")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / planted).symlink_to(victim)
    server.answers = [whole()]
    with Client(server.url, "tok") as client:
        got = client.download("u1", "mp3", folder)
    assert got.path == str(folder / "s.mp3") and (folder / "s.mp3").read_bytes() == WHOLE
    assert victim.read_bytes() == b"" and not (folder / planted).exists()


@pytest.mark.parametrize(
    "content_range",
    [f"bytes {HAVE}-{HAVE - 1}/{len(WHOLE)}", f"bytes {HAVE}-{len(WHOLE) - 1}/{HAVE + 5}"],
    ids=["ends-before-it-starts", "file-smaller-than-the-range"],
)
def test_a_bogus_content_range_is_not_appended(server, tmp_path, content_range):
    bogus = (206, {"ETag": '"v2"', "Content-Range": content_range}, b"junk" * 100)
    _, ranges = download(server, tmp_path, [bogus, whole()])
    assert ranges == [f"bytes={HAVE}-", None]


def test_more_bytes_than_the_file_has_are_not_kept(server, tmp_path):
    """A range that claims the file's end but whose body is longer: the part is dropped, and
    the retry starts again rather than resume after bytes that are not the file's."""
    longer = 206, rest(HAVE)[1], WHOLE[HAVE:] + b"junk"
    _, ranges = download(server, tmp_path, [longer, whole()])
    assert ranges == [f"bytes={HAVE}-", None]


def test_the_etag_of_the_first_answer_goes_with_the_resumed_request(server, tmp_path):
    (tmp_path / "s.mp3.part.etag").write_text('"v2"')
    got, _ = download(server, tmp_path, [rest(HAVE)])
    assert server.seen[0][2]["If-Range"] == '"v2"' and got.resumed_from == HAVE


def test_a_file_already_there_is_not_replaced_unless_asked(server, tmp_path):
    # A transcode named as its source, downloaded beside it, must not take the original's place.
    original = tmp_path / "s.mp3"
    original.write_bytes(b"the original")
    server.answers = [whole()]
    with Client(server.url, "tok") as client:
        with pytest.raises(FileExists) as into_folder:
            client.download("u1", "mp3", tmp_path)
        with pytest.raises(FileExists):
            client.download("u1", "mp3", original)
        assert into_folder.value.path == str(original)
        assert original.read_bytes() == b"the original"
        assert [p.name for p in tmp_path.iterdir()] == ["s.mp3"]  # no part left behind
        server.answers = [whole()]
        got = client.download("u1", "mp3", tmp_path, overwrite=True)
    assert got.path == str(original) and original.read_bytes() == WHOLE


@pytest.mark.parametrize(
    ("upload_id", "fmt"), [("../../evil", "sh"), ("u1", "../x"), ("..", "mp3")]
)
def test_an_upload_id_or_format_that_is_no_plain_name_is_refused(tmp_path, upload_id, fmt):
    client = Client("http://127.0.0.1:9", "tok", retry=RetryPolicy(max_retries=0))
    with client, pytest.raises(PhantomChainError, match="not an upload id or format"):
        client.download(upload_id, fmt, tmp_path)
    assert list(tmp_path.iterdir()) == []
