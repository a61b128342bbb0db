"""What every page shares: the signed session cookie, who is looking, and the guards of pages.

A page is HTML, so its refusals are too: no sign-in → the sign-in page (with where to come
back to); a page for admins seen by anyone else → 404, as for a page that does not exist.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface

from app.http.auth import csrf_token, identify, is_open
from app.http.errors import ApiError


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever the request came over HTTPS (directly, or
    through a proxy the server trusts to say so)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)

    def save_session(self, app: Flask, session, response) -> None:
        """Never from an answer to another site's request: the browser did not send our
        SameSite=Strict cookie with it, and a cookie set now would replace the signed-in one."""
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            return
        super().save_session(app, session, response)


def arrived_from_another_site() -> bool:
    """A link followed from another site: the browser kept our Strict cookie back."""
    return (
        request.headers.get("Sec-Fetch-Site") == "cross-site"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
        and current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    )


def bounce():
    """Load the same page again from this site (a meta refresh): the cookie comes along."""
    return render_template("bounce.html")


def page(view):
    """A page for anyone signed in (or anyone, while the API is open)."""

    @wraps(view)
    def guarded(*args, **kwargs):
        if arrived_from_another_site():
            return bounce()
        try:
            g.caller = identify()
        except ApiError as error:
            if error.status == 401:
                return redirect(url_for("signin.form", next=_here()))
            raise
        return view(*args, **kwargs)

    return guarded


def admin_page(view):
    """A page for admins; anyone else gets the 404 of a page that does not exist."""

    @page
    @wraps(view)
    def guarded(*args, **kwargs):
        if not g.caller.admin:
            abort(404)
        return view(*args, **kwargs)

    return guarded


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not target.isprintable()
    ):  # browsers read "/\" as "//"
        return "/"
    return target


def _here() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def page_context() -> dict:
    """Names every template sees."""
    return {
        "caller": g.get("caller"),
        "open_access": is_open,
        "csrf_token": csrf_token,
    }
