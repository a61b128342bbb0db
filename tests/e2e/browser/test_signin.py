"""Signing in and out, in a real browser: the cookie's flags, a bad token, CSRF, next=."""

from __future__ import annotations

import pytest

from tests.e2e.browser.conftest import ALPHA, shoot

pytestmark = pytest.mark.browser


def test_a_token_signs_in_and_out_with_a_strict_httponly_cookie(signed_in, site):
    page = signed_in(ALPHA)
    shoot(page, "upload-page")
    assert page.get_by_text("alpha").first.is_visible()
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "phantomchain_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # plain HTTP here; over HTTPS it is Secure
    assert ALPHA not in cookie["value"]  # the token itself is never in the cookie
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site.base}/signin")
    page.goto("/jobs")
    assert page.url.startswith(f"{site.base}/signin?next=")  # signed out: sent to sign in


def test_a_wrong_token_is_refused_with_a_message(browser, site):
    context = browser.new_context(base_url=site.base)
    page = context.new_page()
    page.goto("/signin")
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    refusal = page.get_by_role("alert").inner_text()
    assert refusal == "That token is not valid (or has been revoked)."
    shoot(page, "signin-refused")
    context.close()


def test_a_form_posted_from_elsewhere_is_refused(browser, site):
    """Sign-out from another site's form (no CSRF token): 403, the session stays."""
    context = browser.new_context(base_url=site.base)
    response = context.request.post(f"{site.base}/signout", form={"x": "1"})
    assert response.status == 403
    context.close()


def test_after_sign_in_the_page_asked_for_comes_back_and_never_another_site(browser, site):
    context = browser.new_context(base_url=site.base)
    page = context.new_page()
    page.goto("/signin?next=//evil.example/x")
    page.get_by_label("Token").fill(ALPHA)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{site.base}/")
    context.close()


def test_a_link_followed_from_another_site_keeps_the_sign_in(signed_in, site):
    """The cookie is SameSite=Strict: the browser keeps it back when a link on another site is
    followed. The page loads itself again from here (the cookie comes) and never replaces it."""
    page = signed_in(ALPHA)

    def session_payload() -> list[str]:  # the signed data, not its time stamp (re-signed often)
        cookies = page.context.cookies()
        return [c["value"].split(".")[1] for c in cookies if c["name"] == "phantomchain_session"]

    before = session_payload()
    page.goto("about:blank")
    page.set_content(f'<a href="{site.base}/jobs">a link in a chat</a>')
    page.get_by_role("link", name="a link in a chat").click()
    page.wait_for_url(f"{site.base}/jobs")
    page.get_by_role("button", name="Sign out").wait_for()  # still signed in
    assert session_payload() == before
