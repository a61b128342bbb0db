"""Build the broker under test by name: ours, or one of dramatiq's own as a peer."""

from __future__ import annotations

import dramatiq


def make_broker(kind: str, url: str, namespace: str) -> dramatiq.Broker:
    if kind in ("nats", "nats-lanes"):  # nats-lanes: the same broker, messages sent in a lane
        from broker import NatsBroker

        return NatsBroker(url, namespace=namespace)
    if kind == "nats-r3":  # ours on a 3-node cluster, every stream kept on all three
        from broker import NatsBroker

        return NatsBroker(url, namespace=namespace, replicas=3)
    if kind == "nats-metrics":  # ours, with the service's worker logs and metrics middleware
        from dramatiq.middleware import default_middleware

        from app.config import Config, environment
        from broker import NatsBroker
        from tasks.observability import Observability

        # The middleware reads only the metrics and log settings; no database is involved.
        config = Config.from_env(environment(DATABASE_URL="postgresql://unused/bench"))
        middleware = [m() for m in default_middleware] + [Observability(config)]
        return NatsBroker(url, namespace=namespace, middleware=middleware)
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=namespace)
    if kind in ("rabbitmq", "rabbitmq-confirm"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, confirm_delivery=kind == "rabbitmq-confirm")
    raise ValueError(f"unknown broker {kind!r}")
