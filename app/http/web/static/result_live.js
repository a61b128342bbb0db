// The result page of an upload whose job has not ended: follows the job's event stream (the
// one the job page reads) and, once the job ends, puts the finished page in place — the
// figures, or the reason it failed — without a reload.
"use strict";
(function () {
  const state = document.querySelector("[data-testid=result-state][data-events-url]");
  if (!state) return;
  const statusEl = document.getElementById("result-status");
  const stageEl = document.getElementById("result-stage");
  const note = document.getElementById("result-live");
  const ENDS = ["done", "failed", "canceled"];

  function show(status, stage) {
    state.dataset.status = status;
    statusEl.textContent = status;
    statusEl.className = `status-${status}`;
    if (stage) stageEl.textContent = ` (stage ${stage})`;
  }

  function load(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`${src} did not load`));
      document.body.append(script);
    });
  }

  // The page as the server draws it now, in place of this one; then its scripts, in order.
  async function finished() {
    note.textContent = "The job has ended: loading its results…";
    try {
      const answer = await fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!answer.ok) throw new Error(`answered ${answer.status}`);
      const next = new DOMParser().parseFromString(await answer.text(), "text/html");
      const main = next.getElementById("main");
      if (!main) throw new Error("not the result page");
      document.title = next.title;
      document.getElementById("main").replaceChildren(...Array.from(main.childNodes)); // a copy: moving empties it
      for (const script of next.querySelectorAll("script[data-result]")) await load(script.src);
    } catch (error) {
      note.textContent = `The job has ended, but its results could not be shown (${error.message}): reload the page.`;
    }
  }

  const source = new EventSource(state.dataset.eventsUrl);
  source.addEventListener("progress", (e) => {
    const event = JSON.parse(e.data);
    if (/ started$/.test(event.message)) show("running", event.stage);
  });
  for (const end of ENDS) {
    source.addEventListener(end, () => {
      source.close();
      show(end);
      finished();
    });
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {  // refused (too many streams, signed out)
      note.textContent = "Live updates stopped (the server refused them): reload the page to see the latest.";
    }
  };
})();
