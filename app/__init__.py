"""PhantomChain's application core, shared by the web process, the CLI and the workers.

The house and its one import rule (``tests/unit/app/test_import_rule.py`` walks the imports and
fails on any break of it):

* ``app/`` — the core: ``config`` (the only reader of the environment), ``db``, ``models``,
  ``storage``, ``logs``, ``metrics``, ``jobs`` (the one owner of a job's state), ``uploads``,
  ``dead_letters``, ``queue`` (the broker and "start a job", by actor name), ``embedded``;
* ``app/api`` (HTTP), ``app/cli`` (the ``phantomchain`` command) and ``tasks/`` (the worker)
  use the core; the core uses ``audio`` and ``broker``;
* ``app/web`` (the pages) stands on ``app/api``: its sign-in, errors and services; the API's
  factory installs it, and no module of either imports back into a circle;
* ``app/`` never imports ``tasks``; ``api`` and ``cli`` never import each other;
* ``audio`` and ``broker`` import nothing of the project but themselves;
* no import circles. An import inside a function is there only to keep a heavy library out of
  a process that does not need it, and says so.
"""
