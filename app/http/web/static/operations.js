// Operations: queue figures, the jobs-per-minute chart (SVG) and workers, read again every 5 s
// while the page is seen.
"use strict";
(function () {
  const dataEl = document.getElementById("ops-data");
  if (!dataEl) return;
  const EVERY_MS = 5000;
  const SVG = "http://www.w3.org/2000/svg";
  const H = 220, LEFT = 34, BOTTOM = 22, TOP = 10, RIGHT = 6;
  let timer = null;

  function utc(iso, seconds) {
    if (!iso) return "—";
    const text = new Date(iso).toISOString().replace("T", " ");
    return (seconds ? text.slice(0, 19) : text.slice(0, 16)) + " UTC";
  }

  function setText(el, text) {
    if (el && el.textContent !== String(text)) el.textContent = String(text);
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

  function showQueues(queues) {
    const body = document.querySelector("#queues tbody");
    const seen = new Set();
    for (const q of queues) {
      seen.add(q.queue);
      let row = body.querySelector(`tr[data-queue="${CSS.escape(q.queue)}"]`);
      if (!row) {
        row = document.createElement("tr");
        row.dataset.queue = q.queue;
        const head = document.createElement("th");
        head.scope = "row";
        const code = document.createElement("code");
        code.textContent = q.queue;
        head.appendChild(code);
        row.appendChild(head);
        for (const field of ["waiting", "in_progress", "dead_letters"]) {
          const cell = document.createElement("td");
          cell.className = "num";
          cell.dataset.field = field;
          if (field === "dead_letters") {
            const link = document.createElement("a");
            link.href = `/dead-letters?queue=${encodeURIComponent(q.queue)}`;
            cell.appendChild(link);
          }
          row.appendChild(cell);
        }
        body.appendChild(row);
      }
      setText(row.querySelector('[data-field="waiting"]'), q.waiting);
      setText(row.querySelector('[data-field="in_progress"]'), q.in_progress);
      const dead = row.querySelector('[data-field="dead_letters"]');
      setText(dead.querySelector("a") || dead, q.dead_letters);
    }
    body.querySelectorAll("tr[data-queue]").forEach((row) => { if (!seen.has(row.dataset.queue)) row.remove(); });
    const sum = (k) => queues.reduce((n, q) => n + q[k], 0);
    setText(document.getElementById("queues-summary"),
      queues.length ? `In all: ${sum("waiting")} waiting, ${sum("in_progress")} in progress, ` +
        `${plural(sum("dead_letters"), "dead letter")}.` : "No queue figures.");
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showThroughput(t) {
    const svg = document.getElementById("throughput-chart");
    const summary = document.getElementById("throughput-summary");
    const tbody = document.querySelector("#throughput-table tbody");
    if (!t) {
      svg.replaceChildren();
      setText(summary, "Job figures are missing: Postgres did not answer.");
      return;
    }
    const W = Math.max(280, Math.round(svg.getBoundingClientRect().width) || 640);
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const minutes = t.minutes;
    const busiest = minutes.reduce((m, b) => Math.max(m, b.done + b.failed), 0);
    const top = Math.max(1, busiest);
    const plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    const slot = plotW / minutes.length;
    const y = (v) => TOP + plotH - (v / top) * plotH;
    const parts = [];
    // grid: 0, half, top
    for (const v of [0, top / 2, top]) {
      if (v !== 0 && v === top / 2 && top < 2) continue;
      parts.push(el("line", { class: "grid", x1: LEFT, x2: W - RIGHT, y1: y(v), y2: y(v) }));
      parts.push(el("text", { class: "axis", x: LEFT - 4, y: y(v) + 4, "text-anchor": "end" },
        Number.isInteger(v) ? v : v.toFixed(1)));
    }
    minutes.forEach((b, i) => {
      const x = LEFT + i * slot + slot * 0.12;
      const width = slot * 0.76;
      if (b.done) {
        const rect = el("rect", { class: "bar-done", x, width, y: y(b.done), height: y(0) - y(b.done) });
        rect.appendChild(el("title", {}, `${utc(b.at)}: ${b.done} done`));
        parts.push(rect);
      }
      if (b.failed) {
        const base = y(b.done);
        const rect = el("rect", { class: "bar-failed", x, width, y: base - (y(0) - y(b.failed)), height: y(0) - y(b.failed) });
        rect.appendChild(el("title", {}, `${utc(b.at)}: ${b.failed} failed`));
        parts.push(rect);
      }
    });
    const labels = [[0, "60 min ago"], [Math.floor(minutes.length / 2), "30 min ago"], [minutes.length - 1, "now"]];
    for (const [i, text] of labels) {
      const anchor = i === 0 ? "start" : i === minutes.length - 1 ? "end" : "middle";
      const x = i === minutes.length - 1 ? W - RIGHT : LEFT + i * slot + (i ? slot / 2 : 0);
      parts.push(el("text", { class: "axis", x, y: H - 6, "text-anchor": anchor }, text));
    }
    parts.push(el("line", { class: "baseline", x1: LEFT, x2: W - RIGHT, y1: y(0), y2: y(0) }));
    svg.replaceChildren(...parts);
    svg.dataset.bars = String(svg.querySelectorAll("rect").length);
    const canceled = t.canceled ? `, ${t.canceled} canceled` : "";
    setText(summary, `${t.done} done and ${t.failed} failed in the last hour${canceled}` +
      (busiest ? `; the busiest minute had ${busiest}.` : "."));
    const rows = minutes.filter((b) => b.done || b.failed).reverse().map((b) => {
      const row = document.createElement("tr");
      for (const text of [utc(b.at), b.done, b.failed]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        if (typeof text === "number") cell.className = "num";
        row.appendChild(cell);
      }
      return row;
    });
    if (!rows.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 3;
      cell.textContent = "No job ended in the last hour.";
      row.appendChild(cell);
      rows.push(row);
    }
    tbody.replaceChildren(...rows);
  }

  function showWorkers(consumer, activity) {
    const box = document.getElementById("workers");
    const put = (field, value) => setText(box.querySelector(`[data-field="${field}"]`), value);
    if (consumer) {
      put("pull_requests_waiting", consumer.pull_requests_waiting);
      put("held_by_workers", consumer.held_by_workers);
      put("last_delivered_at", utc(consumer.last_delivered_at, true));
      put("last_acknowledged_at", utc(consumer.last_acknowledged_at, true));
    }
    if (activity) {
      put("minutes", activity.minutes);
      put("stages_started", activity.capped ? `${activity.stages_started}+` : activity.stages_started);
      put("jobs", activity.jobs);
      put("last_event_at", utc(activity.last_event_at, true));
    }
    let verdict;
    if (!consumer) verdict = "Unknown: NATS did not answer.";
    else if (consumer.pull_requests_waiting || consumer.held_by_workers) {
      verdict = "Workers are connected: " +
        (consumer.pull_requests_waiting ? `${plural(consumer.pull_requests_waiting, "request")} for work waiting` : "none idle") +
        (consumer.held_by_workers ? `, ${plural(consumer.held_by_workers, "message")} being worked on.` : ".");
    } else {
      verdict = "No worker was asking for work nor holding a message when JetStream was read.";
    }
    setText(document.getElementById("workers-verdict"), verdict);
  }

  let last = null;
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (last) showThroughput(last.throughput); }, 150);
  });

  function show(stats) {
    last = stats;
    showQueues(stats.queues);
    showThroughput(stats.throughput);
    showWorkers(stats.consumer, stats.activity);
    const problems = document.getElementById("ops-problems");
    problems.hidden = !stats.problems.length;
    setText(problems, stats.problems.length ? `Not answering: ${stats.problems.join(", ")}. The figures from it are missing.` : "");
  }

  async function refresh() {
    timer = null;
    try {
      const result = await PC.api("GET", dataEl.dataset.url);
      if (result.status === 200 && result.body) {
        show(result.body);
        setText(document.getElementById("ops-updated"), new Date().toLocaleTimeString());
      } else {
        setText(document.getElementById("ops-updated"), `— not updated: ${PC.errorText(result)}`);
      }
    } catch (error) {
      setText(document.getElementById("ops-updated"), "— not updated: the server did not answer");
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !document.hidden) timer = setTimeout(refresh, EVERY_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden && timer !== null) { clearTimeout(timer); timer = null; }
    else schedule();
  });
  show(JSON.parse(dataEl.textContent));
  schedule();
})();
