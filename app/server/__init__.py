"""The web process, ``python -m app.server`` (the Procfile's web line): settings checked,
the app built (:func:`app.http.create_app`), served behind waitress (:mod:`~app.server.front_door`,
which bounds what slow or hostile clients can hold) until told to stop
(:mod:`~app.server.serving`, a deploy's graceful stop).
"""
