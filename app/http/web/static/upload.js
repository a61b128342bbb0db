// The upload page: files picked or dropped become rows; each row uploads its file
// (XMLHttpRequest, for its progress), then follows its job's event stream to done, failed or
// canceled (its Cancel button asks for the last).
"use strict";
(function () {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const list = document.getElementById("rows");
  const empty = document.getElementById("rows-empty");
  const template = document.getElementById("row-template");
  const formatsError = document.getElementById("formats-error");
  const STAGES = JSON.parse(zone.dataset.stages); // [[name, label], …] in pipeline order
  const MAX_BYTES = Number(zone.dataset.maxBytes);
  // A browser opens at most 6 connections to one server: uploads and event streams share them
  // with the page's own requests, so only a few of each run at once; the rest wait their turn.
  const MAX_UPLOADS = 2;
  const MAX_STREAMS = 3;
  //: Milliseconds before asking again about a job whose stream was refused (429/503).
  const RECHECK_MS = 5000;
  const ENDED = ["done", "failed", "canceled"];
  const waitingUploads = [];
  const waitingStreams = [];
  let uploads = 0;
  let streams = 0;

  function chosenFormats() {
    return Array.from(document.querySelectorAll('input[name="formats"]:checked'), (box) => box.value);
  }

  function chosenTarget() {
    const select = document.getElementById("normalize");
    return select ? select.value : "";
  }

  function chosenBpmRange() {
    const input = document.getElementById("bpm-range");
    return input ? input.value.trim() : "";
  }

  function sizeText(bytes) {
    if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  // -- one row per file ---------------------------------------------------------------------

  class Row {
    constructor(file) {
      this.file = file;
      this.el = template.content.firstElementChild.cloneNode(true);
      this.el.querySelector(".row-name").textContent = file.name;
      this.el.querySelector(".row-size").textContent = sizeText(file.size);
      this.bar = this.el.querySelector(".row-progress");
      this.bar.setAttribute("aria-label", `Upload of ${file.name}`);
      this.barText = this.el.querySelector(".row-progress-text");
      this.statusEl = this.el.querySelector(".row-status-text");
      this.errorEl = this.el.querySelector(".row-error");
      this.stageEls = new Map();
      const stages = this.el.querySelector(".stages");
      for (const [name, label] of STAGES) {
        const item = document.createElement("li");
        item.className = "stage";
        item.dataset.stage = name;
        item.dataset.state = "pending";
        const text = document.createElement("span");
        text.textContent = label;
        const state = document.createElement("span");
        state.className = "sr-only stage-state";
        state.textContent = ": not started";
        item.append(text, state);
        stages.append(item);
        this.stageEls.set(name, item);
      }
      this.jobId = null;
      this.uploadId = null;
      this.ended = false;
      list.append(this.el);
      empty.hidden = true;
    }

    status(state, text) {
      this.el.dataset.status = state;
      this.statusEl.textContent = text;
    }

    progress(percent) {
      const value = Math.max(0, Math.min(100, Math.round(percent)));
      this.bar.value = value;
      this.barText.textContent = `${value}%`;
    }

    stage(name, state) {
      const index = STAGES.findIndex(([n]) => n === name);
      if (index < 0) return;
      STAGES.forEach(([other], i) => {
        if (i < index) this.setStage(other, "done");
      });
      this.setStage(name, state);
    }

    setStage(name, state) {
      const item = this.stageEls.get(name);
      const words = { pending: "not started", active: "running", retrying: "retrying", done: "done",
        failed: "failed" };
      item.dataset.state = state;
      item.querySelector(".stage-state").textContent = `: ${words[state]}`;
    }

    accepted(body) {
      this.uploadId = body.upload_id;
      this.jobId = body.job_id;
      this.el.dataset.uploadId = body.upload_id;
      this.el.dataset.jobId = body.job_id;
      this.progress(100);
      this.barText.textContent = "Uploaded";
      const job = this.el.querySelector(".row-job");
      job.href = `/jobs/${encodeURIComponent(body.job_id)}`;
      job.textContent = "Job details";
      this.el.querySelector(".row-links").hidden = false;
      this.el.querySelector(".row-result").hidden = true;
      const cancel = this.el.querySelector(".row-cancel");
      cancel.hidden = false;
      cancel.setAttribute("aria-label", `Cancel ${this.file.name}`);
      cancel.addEventListener("click", () => this.cancel(cancel));
      this.status("queued", "Uploaded; queued for processing…");
    }

    async cancel(button) {
      button.disabled = true;
      const answer = await PC.api("POST", `/api/jobs/${encodeURIComponent(this.jobId)}/cancel`);
      if (answer.status === 202) {
        this.finished({ status: "canceled" });
      } else if (!this.ended) {
        button.disabled = false;
        this.errorEl.textContent = `Not canceled: ${PC.errorText(answer)}.`;
        this.errorEl.hidden = false;
      }
    }

    event(event) {
      if (this.ended) return;
      const name = event.stage;
      const label = (STAGES.find(([n]) => n === name) || [name, name])[1];
      if (event.level === "error") {
        this.stage(name, "failed");
      } else if (event.level === "warning") {
        this.stage(name, "retrying");
        this.status("running", `${label}: ${event.message}`);
      } else if (event.message === `${name} started`) {
        this.stage(name, "active");
        this.status("running", `${label}…`);
      } else if (event.message !== "done") {
        this.stage(name, "done");
        this.status("running", `${label} done: ${event.message}`);
      }
    }

    finished(job) {
      if (this.ended) return;
      this.ended = true;
      this.el.querySelector(".row-cancel").hidden = true;
      if (job.status === "canceled") {
        this.status("canceled", "Canceled: nothing more runs for it, and what it made is removed.");
      } else if (job.status === "done") {
        STAGES.forEach(([name]) => this.setStage(name, "done"));
        const result = this.el.querySelector(".row-result");
        result.href = `/uploads/${encodeURIComponent(this.uploadId)}`;
        result.hidden = false;
        this.status("done", "Done.");
      } else {
        if (job.stage) this.stage(job.stage, "failed");
        this.fail(job.error || "the job failed", "Failed:");
      }
    }

    // The reason is inside the row's live region: a screen reader hears it with the status.
    fail(message, status) {
      this.ended = true;
      this.el.querySelector(".row-cancel").hidden = true;
      this.status("failed", status || "Upload refused:");
      this.errorEl.textContent = message;
      this.errorEl.hidden = false;
      if (!this.jobId) this.el.querySelector(".stages").hidden = true; // refused: no job ran
    }
  }

  // -- uploading ----------------------------------------------------------------------------

  function addFiles(files) {
    const picked = Array.from(files || []);
    if (!picked.length) return;
    const formats = chosenFormats();
    if (!formats.length) {
      formatsError.hidden = false;
      return;
    }
    formatsError.hidden = true;
    for (const file of picked) {
      const row = new Row(file);
      if (MAX_BYTES && file.size > MAX_BYTES) {
        row.fail(`${file.name} is larger than the server's limit of ${sizeText(MAX_BYTES)}.`);
        continue;
      }
      row.status("waiting", "Waiting to upload…");
      waitingUploads.push({ row, formats, normalize: chosenTarget(), bpmRange: chosenBpmRange() });
    }
    pumpUploads();
  }

  function pumpUploads() {
    while (uploads < MAX_UPLOADS && waitingUploads.length) send(waitingUploads.shift());
  }

  function refusal(status, body, retryAfter) {
    let text = PC.errorText({ status, body });
    if (status === 401) text += " (sign in again)";
    if ((status === 429 || status === 503) && retryAfter) text += ` Try again in ${retryAfter} s.`;
    return text;
  }

  function send({ row, formats, normalize, bpmRange }) {
    uploads += 1;
    row.status("uploading", "Uploading…");
    const xhr = new XMLHttpRequest();
    let over = false;
    const settle = () => {
      if (over) return false;
      over = true;
      uploads -= 1;
      pumpUploads();
      return true;
    };
    xhr.open("POST", "/api/uploads");
    xhr.setRequestHeader("X-CSRF-Token", PC.csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json"; // null when the answer is not JSON
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total) row.progress((e.loaded / e.total) * 100);
    };
    xhr.onload = () => {
      if (!settle()) return;
      if (xhr.status === 202 && xhr.response && xhr.response.job_id) {
        row.accepted(xhr.response);
        follow(row);
      } else {
        row.fail(refusal(xhr.status, xhr.response, xhr.getResponseHeader("Retry-After")));
      }
    };
    xhr.onerror = () => {
      if (settle()) row.fail("The upload did not reach the server (network error); try again.");
    };
    xhr.onabort = xhr.onerror;
    const form = new FormData();
    form.append("formats", formats.join(","));
    if (normalize) form.append("normalize", normalize);
    if (bpmRange) form.append("bpm_range", bpmRange);
    form.append("file", row.file, row.file.name);
    xhr.send(form);
  }

  // -- following a job ----------------------------------------------------------------------

  function follow(row) {
    if (row.ended) return;
    if (streams >= MAX_STREAMS) {
      waitingStreams.push(row);
      return;
    }
    streams += 1;
    const source = new EventSource(`/api/jobs/${encodeURIComponent(row.jobId)}/events`);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      source.close();
      streams -= 1;
      while (streams < MAX_STREAMS && waitingStreams.length) follow(waitingStreams.shift());
    };
    source.addEventListener("progress", (e) => row.event(JSON.parse(e.data)));
    for (const end of ENDED) {
      source.addEventListener(end, (e) => {
        row.finished(JSON.parse(e.data));
        close();
      });
    }
    source.onerror = () => {
      // CONNECTING: the server ended the stream (EVENT_STREAM_MAX_S) or it dropped; EventSource
      // reconnects by itself, sending Last-Event-ID. CLOSED: it was refused (too many streams,
      // server busy…) and will not come back: ask about the job a little later.
      if (source.readyState !== EventSource.CLOSED) return;
      close();
      if (!row.ended) setTimeout(() => recheck(row), RECHECK_MS);
    };
  }

  async function recheck(row) {
    let answer;
    try {
      answer = await PC.api("GET", `/api/jobs/${encodeURIComponent(row.jobId)}`);
    } catch (error) {
      setTimeout(() => recheck(row), RECHECK_MS);
      return;
    }
    if (answer.status === 200 && ENDED.includes(answer.body.status)) {
      row.finished(answer.body);
    } else if (answer.status === 200 || answer.status === 429 || answer.status >= 500) {
      follow(row);
    } else {
      row.fail(PC.errorText(answer), "Lost track of the job:");
    }
  }

  // -- picking and dropping -----------------------------------------------------------------

  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // the same file can be picked again
  });
  for (const box of document.querySelectorAll('input[name="formats"]')) {
    box.addEventListener("change", () => {
      if (chosenFormats().length) formatsError.hidden = true;
    });
  }
  let depth = 0; // dragenter/dragleave fire for every child: count them
  zone.addEventListener("dragenter", (e) => {
    e.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    addFiles(e.dataTransfer.files);
  });
  // A file dropped beside the zone is not opened by the browser in place of the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
})();
