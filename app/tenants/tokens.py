"""API tokens kept in Postgres: made, listed and revoked with ``phantomchain tokens``, looked up
on each request. Only a token's SHA-256 is stored (tokens are 256 random bits, so a plain hash
is as strong as a slow one and costs nothing per request); the token itself is shown once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import TENANT_NAME
from app.models import ApiToken, utcnow

#: Every token made here starts with this, so a leaked one is easy to recognise.
PREFIX = "pc_"


class BadTenantName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"a tenant name may hold only letters, digits, _ . - (at most 64), got {name!r}"
        )


class MixedRoles(ValueError):
    """A tenant's tokens are all admin tokens or none is: a tenant token of an admin's tenant
    would see what the admin uploaded."""

    def __init__(self, tenant: str, admin: bool) -> None:
        role, other = ("admin", "tenant") if admin else ("tenant", "admin")
        super().__init__(
            f"{tenant} has {other} tokens; a {role} token needs a tenant name of its own"
        )


class TokenNotFound(LookupError):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"no token {token_id}")


@dataclass(frozen=True)
class Holder:
    """Who a token belongs to."""

    tenant: str
    admin: bool


@dataclass(frozen=True)
class NewToken:
    id: str
    tenant: str
    admin: bool
    token: str  # shown once, never stored


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(sessions: sessionmaker[Session], tenant: str, *, admin: bool = False) -> NewToken:
    """A new token for ``tenant`` (several may share one: rotate by creating, then revoking).

    :raises BadTenantName: not a tenant name.
    :raises MixedRoles: the tenant has tokens of the other role.
    """
    if not TENANT_NAME.match(tenant):
        raise BadTenantName(tenant)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(tenant=tenant, token_sha256=digest(token), hint=token[:10], admin=admin)
    with sessions.begin() as session:
        other_role = select(ApiToken.id).where(ApiToken.tenant == tenant, ApiToken.admin != admin)
        if session.scalar(other_role.limit(1)) is not None:
            raise MixedRoles(tenant, admin)
        session.add(row)
        session.flush()
        return NewToken(row.id, tenant, admin, token)


def holder(sessions: sessionmaker[Session], token_sha256: str) -> Holder | None:
    """Who holds the token of this SHA-256 (:func:`digest`), if it is not revoked."""
    with sessions() as session:
        row = session.execute(
            select(ApiToken.tenant, ApiToken.admin).where(
                ApiToken.token_sha256 == token_sha256, ApiToken.revoked_at.is_(None)
            )
        ).first()
        return Holder(row.tenant, row.admin) if row else None


def tenant_has_tokens(sessions: sessionmaker[Session], tenant: str) -> bool:
    """Whether a token not revoked was made for ``tenant``."""
    with sessions() as session:
        query = select(ApiToken.id).where(ApiToken.tenant == tenant, ApiToken.revoked_at.is_(None))
        return session.scalar(query.limit(1)) is not None


def any_made(sessions: sessionmaker[Session]) -> bool:
    """Whether a token was ever made here, revoked ones included: then the API is closed (a
    revoked last token must not open it to everyone)."""
    with sessions() as session:
        return session.scalar(select(ApiToken.id).limit(1)) is not None


def list_tokens(sessions: sessionmaker[Session], *, revoked: bool = False) -> list[dict]:
    """Every token, oldest first (revoked ones only when asked); never the token itself."""
    query = select(ApiToken).order_by(ApiToken.created_at)
    if not revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with sessions() as session:
        return [
            {
                "id": row.id,
                "tenant": row.tenant,
                "admin": row.admin,
                "hint": row.hint + "…",
                "created_at": row.created_at.isoformat(),
                "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            }
            for row in session.scalars(query)
        ]


def revoke(sessions: sessionmaker[Session], token_id: str) -> int:
    """Revoke the token with this id or, when no token has it, every token of the tenant of
    this name.

    :returns: how many tokens were revoked.
    :raises TokenNotFound: no token has that id and no tenant that name.
    """
    with sessions.begin() as session:
        matches = ApiToken.id == token_id
        if session.scalar(select(ApiToken.id).where(matches)) is None:
            matches = ApiToken.tenant == token_id
        if session.scalar(select(ApiToken.id).where(matches).limit(1)) is None:
            raise TokenNotFound(token_id)
        # An UPDATE's result is a CursorResult (Session.execute is typed for any statement).
        result = cast(
            CursorResult[Any],
            session.execute(
                update(ApiToken)
                .where(matches, ApiToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            ),
        )
        return result.rowcount
