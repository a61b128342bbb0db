"""PhantomChain's application, shared by the web process, the CLI and the workers.

The house (``docs/layout.md`` draws it) and its one import rule
(``tests/unit/app/test_import_rule.py`` walks every import and fails on any break of it):

* the core, directly in ``app/``: ``config`` (the only reader of the environment), ``db``,
  ``models``, ``logs``, ``metrics``, ``outages`` (the one rule for "a server is away"),
  ``queue`` (the broker, "start a job" by actor name, how the queue is doing), ``jobs`` (the one
  owner of a job's state), ``batches``, ``uploads`` (uploads and the analyses and outputs made
  of them), ``dead_letters``; and its packages ``storage``, ``webhooks``, ``tenants``,
  ``embedded``. The core uses ``audio`` and ``broker``, never ``tasks``;
* ``app/http``: :func:`app.http.create_app` and the request plumbing (auth, errors, params,
  streams…) that its two sides stand on — ``app/http/api`` (JSON routes) and ``app/http/web``
  (pages), which never import each other; only the factory installs them;
* ``app/server`` (the web process) serves what the factory builds; ``app/cli`` (the
  ``phantomchain`` command) and ``tasks/`` (the worker) use the core, never HTTP;
* ``app/client`` (the HTTP API's client, for the machines that send audio) imports nothing of
  the project but itself; ``app/cli`` uses it;
* ``audio`` and ``broker`` import nothing of the project but themselves;
* no import circles. An import inside a function is there only to keep a heavy library out of
  a process that does not need it, and says so.
"""
