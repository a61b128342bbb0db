"""Webhooks: a job's or a batch's end told to the URL that asked.

* :mod:`~app.webhooks.outbox` — the messages and their attempts, kept in Postgres: made when a
  job or batch ends, claimed by the webhooks worker, recorded, retried on a schedule;
* :mod:`~app.webhooks.delivery` — one attempt: POST the signed body within one deadline;
* :mod:`~app.webhooks.signing` — Standard Webhooks signatures;
* :mod:`~app.webhooks.addresses` — which callback URLs are allowed (public http(s) addresses).

The worker that sends them is ``tasks.webhooks``.
"""
