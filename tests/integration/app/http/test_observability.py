"""The web process's ``/metrics`` (``METRICS_PORT``) gives the signals to scale workers on: how
long the oldest pipeline message has waited, and jobs waiting per tenant in a bounded label set.
Real PostgreSQL and NATS, uploads through the API, no workers (so everything waits)."""

from __future__ import annotations

import time

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from app.http.observability import metrics_app
from tests.support.app_client import upload

TENANTS = {"alpha": 3, "beta": 2, "gamma": 1}
TOKENS = {
    "API_TOKENS": ",".join(f"{name}:{name}-token" for name in TENANTS),
    "METRICS_TOP_TENANTS": "2",
}


def scrape(client: Client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def waiting_jobs(samples: dict) -> dict[str, float]:
    return {
        dict(labels)["tenant"]: value
        for (name, labels), value in samples.items()
        if name == "phantomchain_waiting_jobs"
    }


def test_metrics_give_queue_time_and_waiting_jobs_of_the_busiest_tenants(
    make_client, song, migrated_database_url
):
    api = make_client(workers=False, **TOKENS)
    metrics = Client(metrics_app(api.application))
    before_first = time.time()
    first = True
    for tenant, jobs in TENANTS.items():
        for _ in range(jobs):
            headers = {"Authorization": f"Bearer {tenant}-token"}
            assert upload(api, song, headers=headers).status_code == 202
            if first:
                after_first, first = time.time(), False

    before_scrape = time.time()
    samples = scrape(metrics)
    after_scrape = time.time()
    assert samples[("phantomchain_nats_up", frozenset())] == 1
    pipeline = frozenset({("queue", "pipeline")})
    assert samples[("phantomchain_queue_waiting_messages", pipeline)] == 6
    # The first upload's message is the oldest: stored between before_first and after_first,
    # its age read between before_scrape and after_scrape.
    age = samples[("phantomchain_queue_oldest_waiting_seconds", pipeline)]
    assert before_scrape - after_first <= age <= after_scrape - before_first
    # The two busiest tenants by name, the third under @other.
    assert waiting_jobs(samples) == {"alpha": 3, "beta": 2, "@other": 1}

    # alpha's jobs start: alpha has no series any more (none stale), gamma moves up.
    with psycopg.connect(migrated_database_url, autocommit=True) as connection:
        connection.execute("UPDATE jobs SET status = 'running' WHERE tenant = 'alpha'")
    assert waiting_jobs(scrape(metrics)) == {"beta": 2, "gamma": 1, "@other": 0}
