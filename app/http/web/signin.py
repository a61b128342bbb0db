"""Sign in with a token (kept as its SHA-256 in the session cookie), sign out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for

from app.http.auth import SESSION_TOKEN, caller_of_token, check_csrf, is_open
from app.http.errors import ApiError
from app.http.web.session import arrived_from_another_site, bounce, safe_next
from app.tenants.tokens import digest

bp = Blueprint("signin", __name__)


@bp.get("/signin")
def form():
    if arrived_from_another_site():
        return bounce()
    return render_template("signin.html", next=safe_next(request.args.get("next")), error=None)


@bp.post("/signin")
def sign_in():
    target = safe_next(request.form.get("next"))
    try:
        check_csrf()
    except ApiError as error:
        return render_template("signin.html", next=target, error=error.message), 403
    token = (request.form.get("token") or "").strip()
    usable = token.isascii() and token.isprintable() and 0 < len(token) <= 512
    if not usable or caller_of_token(token) is None:
        message = "That token is not valid (or has been revoked)."
        return render_template("signin.html", next=target, error=message), 401
    session.clear()  # a new session for a new sign-in: nothing carried over from before
    session[SESSION_TOKEN] = digest(token)
    session.permanent = True
    return redirect(target)


@bp.post("/signout")
def sign_out():
    try:
        check_csrf()
    except ApiError:  # a stale form (or one posted from elsewhere): signed out nothing
        return render_template(
            "signin.html",
            next="/",
            error="That page had expired; you are still signed in. Reload it to sign out.",
        ), 403
    session.clear()
    return redirect(url_for("signin.form") if not is_open() else "/")
