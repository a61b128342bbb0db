"""Parsing in :mod:`broker.wire` and :mod:`broker.pull` that needs no server."""

from __future__ import annotations

from broker.pull import nak_payload, num_delivered
from broker.wire import Frame, encode_publish


def test_status_frames_tell_their_code_description_and_headers():
    frame = Frame(
        b"_INBOX.x.1",
        b"",
        b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\n"
        b"Nats-Pending-Bytes: 0\r\n\r\n",
        b"",
    )
    assert frame.status == 408
    assert frame.description == "Request Timeout"
    assert frame.header(b"nats-pending-messages") == b"3"
    assert frame.header(b"Missing") is None


def test_a_message_with_ordinary_headers_has_no_status():
    frame = Frame(b"q", b"$JS.ACK.s.c.1.2.3.4.0", b"NATS/1.0\r\nNats-Msg-Id: a\r\n\r\n", b"x")
    assert frame.status is None


def test_delivery_count_is_read_from_both_ack_subject_layouts():
    assert num_delivered(b"$JS.ACK.stream.consumer.3.10.10.1700000000000000000.0") == 3
    v2 = b"$JS.ACK.hub.ACCHASH.stream.consumer.7.10.10.1700000000000000000.0.token"
    assert num_delivered(v2) == 7


def test_publish_encoding_matches_the_protocol():
    assert encode_publish(b"s", b"hi") == b"PUB s 2\r\nhi\r\n"
    assert encode_publish(b"s", b"hi", b"r") == b"PUB s r 2\r\nhi\r\n"
    headers = b"NATS/1.0\r\nA: b\r\n\r\n"
    assert encode_publish(b"s", b"hi", b"r", headers) == (
        b"HPUB s r %d %d\r\n%shi\r\n" % (len(headers), len(headers) + 2, headers)
    )


def test_nak_with_a_delay_is_in_nanoseconds():
    assert nak_payload(None) == b"-NAK"
    assert nak_payload(1.5) == b'-NAK {"delay": 1500000000}'
