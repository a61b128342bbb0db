"""The files in ``deploy/`` only use metrics the service really exports."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.config import Config
from app.metrics import QueueCollector, WaitingJobsCollector, render
from app.queue import make_broker
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported_names() -> set[str]:
    # The API's broker with nobody answering, and no database: the scrape-time families are
    # still declared.
    unreachable = make_broker("nats://127.0.0.1:9", "unreachable")
    body, _ = render((QueueCollector(unreachable), WaitingJobsCollector(dict)))
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert "phantomchain_nats_up" in names
    return names


def used_names(text: str) -> set[str]:
    names = set()
    for name in re.findall(r"phantomchain_[a-z_]+", text):
        for suffix in SUFFIXES:
            name = name.removesuffix(suffix)
        names.add(name)
    return names


def test_dashboard_and_alerts_use_exported_metrics():
    exported = exported_names()
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = set().union(*(used_names(e) for e in expressions))
    assert len(used) >= 10
    assert used <= exported, used - exported


def test_scrape_config_names_every_kind_of_target():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"phantomchain-api", "phantomchain-workers", "phantomchain-webhooks"}
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())
    assert jobs["phantomchain-workers"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{Config.worker_metrics_port}"
    ]
    assert jobs["phantomchain-webhooks"]["static_configs"][0]["targets"] == [
        f"127.0.0.1:{Config.webhook_metrics_port}"
    ]
    # The API's metrics are on METRICS_PORT, not on the public port (which answers 404 there).
    api_targets = jobs["phantomchain-api"]["static_configs"][0]["targets"]
    assert api_targets == [f"127.0.0.1:{Config.metrics_port}"]
    assert Config.metrics_port != Config.port
