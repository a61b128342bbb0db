"""The order a worker takes lanes in (broker.lanes.LaneReader.order), and lane names."""

from __future__ import annotations

from broker.lanes import Lane, LaneReader
from broker.topology import Topology

TOPOLOGY = Topology(namespace="ns")


def lane(key: str, priority: int = 1, waiting: int = 1, running: int = 0) -> Lane:
    return Lane(key, priority, TOPOLOGY.lane_durable("q", key, priority), waiting, running)


def reader(max_running: int | None = None) -> LaneReader:
    return LaneReader(None, TOPOLOGY, "q", max_running=max_running)  # type: ignore[arg-type]


def test_the_key_with_fewest_running_goes_first_then_its_most_urgent_priority():
    lanes = [
        lane("a", priority=2, running=2),
        lane("b", priority=2, running=1),
        lane("b", priority=0, waiting=3),
        lane("c", priority=1, waiting=0, running=0),  # nothing waits: never taken
    ]
    order = reader().order(lanes)
    assert [(each.key, each.priority) for each in order] == [("b", 0), ("b", 2), ("a", 2)]


def test_ties_go_to_the_key_served_least_recently():
    taker = reader()
    taker._served["a"] = 10.0
    taker._served["b"] = 5.0
    assert [each.key for each in taker.order([lane("a"), lane("b"), lane("c")])] == ["c", "b", "a"]


def test_keys_at_their_cap_are_passed_over():
    lanes = [lane("a", running=2), lane("a", priority=0, running=0), lane("b", running=1)]
    assert [each.key for each in reader(max_running=2).order(lanes)] == ["b"]
    assert reader(max_running=1).order(lanes) == []


def test_lane_names_round_trip_and_keys_are_made_safe():
    key = Topology.lane_key("tenant.with spaces/and>wild*cards")
    assert key == "tenant_with_spaces_and_wild_cards"
    assert Topology.lane_key("x" * 100) == "x" * 64
    subject = TOPOLOGY.lane_subject("pipe.line", key, 2)
    assert subject == f"ns.l.pipe_line.{key}.2"
    assert TOPOLOGY.parse_lane_subject("pipe.line", subject) == (key, 2)
    assert TOPOLOGY.parse_lane_subject("pipe.line", "ns.q.pipe_line") is None
    assert TOPOLOGY.parse_lane_subject("other", subject) is None
    assert Topology.priority_rank("high") == 0
    assert Topology.priority_rank("low") == 2
    assert Topology.priority_rank("whatever") == 1
