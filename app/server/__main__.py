"""The web process: ``python -m app.server`` (the Procfile's web line; ``make run``).

One process serves the API on ``0.0.0.0:PORT`` with ``WEB_THREADS`` threads behind waitress
(:mod:`app.server.front_door` says why, and what it bounds); to serve more, run more of them
behind a load balancer. In order, before anything is served:

1. the whole configuration is checked: a bad setting stops the start with the one message
   that lists them all, and exit status 2;
2. logs go out in our format (:mod:`app.logs`), waitress's own messages included;
3. the metrics directory is chosen (before the app, which counts into it, is made);
4. the app is built; where sign-in settings are given (``NATS_CREDS``, ``NATS_NKEY_SEED``,
   ``NATS_TLS_*``) NATS is asked once: a refusal stops the start with one line naming the
   setting (logged, as a port taken is), and exit status 2 (a NATS that does not answer yet
   is not a reason to stop);
5. the public port and ``METRICS_PORT`` are bound (a port taken is an error that says which).

``/metrics`` is served only on ``METRICS_PORT`` (``0`` = not at all), bound to the same host as
the public port: Prometheus usually scrapes from another host or container, so loopback would
not do; it stays internal by not being published — the load balancer forwards ``PORT`` only.

Stopping (``SIGTERM``/``SIGINT``) is :mod:`app.server.serving`'s: requests in flight get
``GRACEFUL_TIMEOUT``, event streams end at once (their clients reconnect elsewhere).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from app.config import Config, ConfigError
from app.logs import configure_logging
from app.metrics import use_multiprocess_dir
from app.nats_sign_in import check_at_start

logger = logging.getLogger("app.server")

#: Exit status of a start refused for its settings (as ``phantomchain``'s CLI).
EXIT_CONFIG = 2
#: Exit status of a start that could not bind a port.
EXIT_PORT = 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.server", description=__doc__)
    parser.add_argument(
        "--host", default="0.0.0.0", help="address to bind PORT and METRICS_PORT to"
    )
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_CONFIG
    if config.metrics_port == config.port:
        print(
            "invalid configuration:\n  - METRICS_PORT must differ from PORT (or be 0 = off)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    configure_logging(config.log_level, config.log_format)
    use_multiprocess_dir(config.metrics_dir, "web", os.getpid())

    # After the metrics directory: the app's metrics are made as it is imported and built.
    from app.http import create_app, observability, streams
    from app.server import front_door, serving

    app = create_app(config)
    refused = check_at_start(app.extensions["broker"], config.nats_sign_in, config.nats_url)
    if refused is not None:
        app.extensions["broker"].close()
        logger.error("%s", refused)
        return EXIT_CONFIG
    signals = serving.StopSignals()  # before the port answers: a stop from then on is graceful
    try:
        server = front_door.FrontDoor(app, {}, config, args.host)
    except OSError as error:
        logger.error("cannot listen on %s:%d (PORT): %s", args.host, config.port, error)
        return EXIT_PORT
    if config.metrics_port:
        try:
            scrapes = front_door.metrics_listener(
                observability.metrics_app(app), args.host, config.metrics_port
            )
        except OSError as error:
            logger.error(
                "cannot listen on %s:%d (METRICS_PORT; 0 turns it off): %s",
                args.host,
                config.metrics_port,
                error,
            )
            return EXIT_PORT
        threading.Thread(target=scrapes.run, name="metrics", daemon=True).start()
        logger.info("metrics on http://%s:%d/metrics", args.host, config.metrics_port)
    logger.info(
        "API on http://%s:%d (%d threads, at most %d connections, read timeout %d s)",
        args.host,
        config.port,
        config.web_threads,
        config.web_connection_limit,
        config.read_timeout_s,
    )
    serving.serve(server, config.graceful_timeout, on_stop=streams.close_all, signals=signals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
