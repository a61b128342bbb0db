"""``phantomchain tokens``: make, list and revoke API tokens kept in Postgres; set a tenant's
default webhook.

A token is shown once, when it is made; only its SHA-256 is stored. Tokens in ``API_TOKENS`` and
``ADMIN_TOKEN`` work beside these (and are changed by changing the settings). Exit status as
``dlq``'s.
"""

from __future__ import annotations

import click

from app.cli.common import echo_json, fail, handle_errors, load_config, make_sessions, table


@click.group("tokens")
def tokens() -> None:
    """API tokens: create one for a tenant, list them, revoke them."""


@tokens.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="An admin token: sees and acts on every tenant's jobs.")
@click.option("--json", "as_json", is_flag=True, help="JSON ({id, tenant, admin, token}).")
@handle_errors
def create_command(name: str, admin: bool, as_json: bool) -> None:
    """A new token for the tenant NAME (made with the token if new). Shown once: keep it."""
    from app.tenants import tokens as service

    try:
        made = service.create(make_sessions(load_config()), name, admin=admin)
    except (service.BadTenantName, service.MixedRoles) as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    if as_json:
        echo_json({"id": made.id, "tenant": made.tenant, "admin": made.admin, "token": made.token})
        return
    role = "admin" if admin else "tenant"
    click.echo(f"{role} token for {made.tenant} (id {made.id}); it is shown only now:", err=True)
    click.echo(made.token)


@tokens.command("list")
@click.option("--revoked", is_flag=True, help="Show revoked tokens too.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@handle_errors
def list_command(revoked: bool, as_json: bool) -> None:
    """Tokens made with `tokens create` (never the tokens themselves)."""
    from app.tenants import tokens as service

    rows = service.list_tokens(make_sessions(load_config()), revoked=revoked)
    if as_json:
        echo_json({"tokens": rows})
        return
    if not rows:
        click.echo("no tokens")
        return
    headers = ("id", "tenant", "admin", "starts with", "created (UTC)", "revoked (UTC)")
    click.echo(
        table(
            headers,
            [
                (
                    r["id"],
                    r["tenant"],
                    "yes" if r["admin"] else "",
                    r["hint"],
                    r["created_at"][:19],
                    (r["revoked_at"] or "")[:19],
                )
                for r in rows
            ],
        )
    )


@tokens.command("revoke")
@click.argument("token_id")
@handle_errors
def revoke_command(token_id: str) -> None:
    """Revoke the token with this id, or every token of the tenant of this name."""
    from app.tenants import tokens as service

    try:
        count = service.revoke(make_sessions(load_config()), token_id)
    except service.TokenNotFound as exc:
        fail(str(exc))
    click.echo(f"revoked {count} token{'s' if count != 1 else ''}")


@tokens.command("webhook")
@click.argument("tenant")
@click.argument("url", required=False)
@click.option("--clear", is_flag=True, help="Remove the tenant's default webhook.")
@handle_errors
def webhook_command(tenant: str, url: str | None, clear: bool) -> None:
    """Show, set (URL) or --clear the webhook TENANT's jobs call when they end and no
    callback_url was given with the upload (batches too)."""
    from app.config import TENANT_NAME
    from app.webhooks import outbox
    from app.webhooks.addresses import BadCallbackUrl, check_callback_url

    if not TENANT_NAME.match(tenant):
        raise click.BadParameter("not a tenant name", param_hint="TENANT")
    config = load_config()
    sessions = make_sessions(config)
    if url is None and not clear:
        with sessions() as session:
            found = outbox.tenant_callback_url(session, tenant)
        click.echo(found or f"{tenant} has no default webhook")
        return
    if url is not None and clear:
        raise click.UsageError("give a URL or --clear, not both")
    if url is not None:
        try:
            check_callback_url(url, allow_private=config.webhook_allow_private)
        except BadCallbackUrl as exc:
            raise click.BadParameter(str(exc), param_hint="URL") from exc
        if not config.webhook_secret:
            click.echo("warning: WEBHOOK_SECRET is not set, so no webhook is sent", err=True)
        from app.tenants import tokens as service

        known = tenant in config.api_tokens.values() or service.tenant_has_tokens(sessions, tenant)
        if not known:
            click.echo(f"warning: {tenant} has no token yet (a typo?); set all the same", err=True)
    outbox.set_tenant_callback_url(sessions, tenant, url)
    click.echo(f"{tenant}'s jobs now call {url}" if url else f"{tenant} has no default webhook")
