"""Tenants: who may call (:mod:`~app.tenants.tokens`, API tokens kept in Postgres) and how
much they may upload and keep (:mod:`~app.tenants.quotas`)."""
