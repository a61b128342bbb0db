// What every page's script shares: calls to the JSON API with the session's CSRF token.
"use strict";
window.PC = (function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  // fetch() on the same origin: the session cookie goes with it; unsafe methods carry the
  // CSRF token. Resolves to {status, body}; never throws on an HTTP error status.
  async function api(method, url, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("application/json")) data = await response.json();
    return { status: response.status, body: data };
  }

  // The message of an API error body, or a generic sentence.
  function errorText(result) {
    return (result.body && result.body.error && result.body.error.message) ||
      `the server answered ${result.status}`;
  }

  function number(value, digits) {
    return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
  }

  return { api, errorText, number, csrf };
})();
