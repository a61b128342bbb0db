// Jobs (/jobs): live counts per status. Job (/jobs/<id>): the timeline followed live through
// the job's event stream, a cancel while it is queued or running, and the admin's retry.
"use strict";
(function () {
  const ENDED = ["done", "failed", "canceled"];
  const COUNTS_EVERY_MS = 2000; // never more often than once a second

  // -- the list: counts per status, read again every few seconds while the page is seen ------
  const counts = document.getElementById("job-counts");
  if (counts) {
    const first = {};
    counts.querySelectorAll("[data-count]").forEach((el) => { first[el.dataset.count] = el.textContent.trim(); });
    const changed = document.getElementById("jobs-changed");
    const note = document.getElementById("counts-note");
    let timer = null;

    async function refresh() {
      timer = null;
      try {
        const result = await PC.api("GET", counts.dataset.url);
        if (result.status === 200 && result.body) {
          let differs = false;
          for (const [name, value] of Object.entries(result.body.counts)) {
            const el = counts.querySelector(`[data-count="${name}"]`);
            const text = String(value);
            if (el && el.textContent.trim() !== text) el.textContent = text; // unchanged: not re-announced
            if (first[name] !== undefined && first[name] !== text) differs = true;
          }
          changed.hidden = !differs;
          note.textContent = "Counts update by themselves every few seconds.";
        } else {
          note.textContent = `Counts could not be updated: ${PC.errorText(result)}.`;
        }
      } catch (error) {
        note.textContent = "Counts could not be updated (the server did not answer); trying again.";
      }
      schedule();
    }

    function schedule() {
      if (timer === null && !document.hidden) timer = setTimeout(refresh, COUNTS_EVERY_MS);
    }

    document.addEventListener("visibilitychange", () => {
      if (document.hidden && timer !== null) { clearTimeout(timer); timer = null; }
      else schedule();
    });
    schedule();
  }

  // -- one job: its events live, and a retry --------------------------------------------------
  const box = document.getElementById("job");
  if (!box) return;
  const jobId = box.dataset.jobId;
  const timeline = document.getElementById("timeline");
  const statusEl = document.getElementById("job-status");
  const stageEl = document.getElementById("job-stage");
  const progressEl = document.getElementById("job-progress");
  const progressText = document.getElementById("job-progress-text");
  const attemptsEl = document.getElementById("job-attempts");
  const finishedEl = document.getElementById("job-finished");
  const errorBox = document.getElementById("job-error");
  const errorText = document.getElementById("job-error-text");
  const retryBox = document.getElementById("retry-box");
  const retryButton = document.getElementById("retry");
  const cancelBox = document.getElementById("cancel-box");
  const cancelButton = document.getElementById("cancel");
  const message = document.getElementById("job-message");
  const CANCELED = "Canceled: nothing more runs for this job, and what it made is removed.";
  const liveNote = document.getElementById("live-note");
  let source = null;
  let summaryTimer = null;
  let lastSummary = 0;

  function utc(iso) {
    if (!iso) return "";
    return new Date(iso).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function timeEl(iso) {
    const el = document.createElement("time");
    el.dateTime = iso;
    el.textContent = utc(iso);
    return el;
  }

  function addEvent(event) {
    if (timeline.querySelector(`[data-event-id="${event.id}"]`)) return;
    const item = document.createElement("li");
    item.className = `event level-${event.level}`;
    item.dataset.eventId = event.id;
    item.appendChild(timeEl(event.at));
    for (const [name, text] of [["stage", event.stage || "—"], ["level", event.level], ["message", event.message]]) {
      const span = document.createElement("span");
      span.className = name;
      span.textContent = text;
      item.appendChild(span);
    }
    timeline.appendChild(item);
    const none = document.getElementById("no-events");
    if (none) none.remove();
  }

  function showJob(job) {
    if (statusEl.textContent !== job.status) {
      statusEl.textContent = job.status;
      statusEl.className = `status-${job.status}`;
    }
    box.dataset.status = job.status;
    stageEl.textContent = job.stage || "—";
    progressEl.value = job.progress;
    progressEl.textContent = progressText.textContent = `${job.progress}%`;
    attemptsEl.textContent = job.attempts;
    finishedEl.replaceChildren(job.finished_at ? timeEl(job.finished_at) : "—");
    errorText.textContent = job.error || "";
    errorBox.hidden = !job.error;
    if (retryBox) retryBox.hidden = job.status !== "failed";
    if (cancelBox) cancelBox.hidden = ENDED.includes(job.status);
    if (job.events) job.events.forEach(addEvent);
  }

  // Progress is not in the events: the job is read again, at most once a second.
  function summarySoon() {
    if (summaryTimer !== null) return;
    const wait = Math.max(0, 1000 - (Date.now() - lastSummary));
    summaryTimer = setTimeout(async () => {
      summaryTimer = null;
      lastSummary = Date.now();
      const result = await PC.api("GET", `/api/jobs/${jobId}`);
      if (result.status === 200 && result.body && !ENDED.includes(box.dataset.status)) showJob(result.body);
    }, wait);
  }

  function follow() {
    if (source) source.close();
    liveNote.hidden = false;
    liveNote.textContent = "Following this job live.";
    source = new EventSource(box.dataset.eventsUrl);
    source.addEventListener("progress", (e) => {
      const event = JSON.parse(e.data);
      addEvent(event);
      if (statusEl.textContent === "queued" && / started$/.test(event.message)) {
        statusEl.textContent = "running";
        statusEl.className = "status-running";
      }
      if (event.stage) stageEl.textContent = event.stage;
      summarySoon();
    });
    for (const end of ENDED) {
      source.addEventListener(end, (e) => {
        source.close();
        source = null;
        if (summaryTimer !== null) { clearTimeout(summaryTimer); summaryTimer = null; }
        showJob(JSON.parse(e.data));
        liveNote.hidden = true;
        // The same words as the Cancel button's answer, which this event may come before or
        // after.
        message.textContent = end === "canceled" ? CANCELED : `The job is ${end}.`;
      });
    }
    source.onerror = () => {
      if (source && source.readyState === EventSource.CLOSED) {
        liveNote.textContent = "Live updates stopped (the server refused the stream); reload the page to see the latest.";
      }
    };
  }

  if (retryButton) {
    retryButton.addEventListener("click", async () => {
      retryButton.disabled = true;
      message.textContent = "Asking for a retry…";
      const result = await PC.api("POST", retryButton.dataset.url);
      retryButton.disabled = false;
      if (result.status === 202) {
        showJob({ ...currentJob(), status: "queued", stage: null, progress: 0, error: null, finished_at: null });
        message.textContent = "Queued again: the job runs from its first stage.";
        follow();
      } else {
        message.textContent = `Not retried: ${PC.errorText(result)}.`;
      }
    });
  }

  if (cancelButton) {
    cancelButton.addEventListener("click", async () => {
      cancelButton.disabled = true;
      message.textContent = "Canceling…";
      const result = await PC.api("POST", cancelButton.dataset.url);
      cancelButton.disabled = false;
      if (result.status === 202) {
        message.textContent = CANCELED;
        const job = await PC.api("GET", `/api/jobs/${jobId}`);
        if (job.status === 200 && job.body) showJob(job.body);
      } else {
        message.textContent = `Not canceled: ${PC.errorText(result)}.`;
      }
    });
  }

  function currentJob() {
    return { status: box.dataset.status, stage: null, progress: Number(progressEl.value),
             attempts: attemptsEl.textContent, finished_at: null, error: null };
  }

  if (!ENDED.includes(box.dataset.status)) follow();
})();
