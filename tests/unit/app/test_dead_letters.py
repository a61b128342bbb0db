"""A dead-letter ``queue`` filter names one queue: wildcards and broken subjects are refused."""

from __future__ import annotations

import pytest

from app.dead_letters import BadQueueName, check_queue_name


@pytest.mark.parametrize("queue", [None, "", "pipeline", "pipeline.DQ", "web-hooks_2"])
def test_a_queue_name_or_no_filter_passes(queue):
    check_queue_name(queue)


@pytest.mark.parametrize("queue", ["*", ">", "pipeline.*", "a..b", ".a", "a.", "a b", "a\n"])
def test_wildcards_and_broken_subjects_are_refused(queue):
    with pytest.raises(BadQueueName, match="queue must be a queue's name"):
        check_queue_name(queue)
