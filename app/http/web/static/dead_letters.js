// Dead letters: retry or delete one, those selected, or purge (after a confirmation), through
// the admin JSON routes; the list and the single dead letter's page.
"use strict";
(function () {
  const message = document.getElementById("dl-message");
  if (!message) return;
  message.tabIndex = -1;

  // A sentence in the status region, with a link to a job when there is one; focus goes there
  // so that a keyboard user whose button has just gone keeps their place.
  function say(text, jobs, focus) {
    const parts = [text];
    (jobs || []).forEach((jobId, i) => {
      parts.push(i ? ", " : " Job: ");
      const link = document.createElement("a");
      link.href = `/jobs/${jobId}`;
      link.textContent = jobId.slice(0, 8);
      link.className = "job-link";
      parts.push(link);
    });
    message.replaceChildren(...parts);
    if (focus) message.focus();
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

  async function retryOne(id) {
    const result = await PC.api("POST", `/api/dead-letters/${encodeURIComponent(id)}/retry`);
    if (result.status === 202) return { ok: true, job: result.body.job_id };
    return { ok: false, gone: result.status === 404, text: PC.errorText(result) };
  }

  async function deleteOne(id) {
    const result = await PC.api("DELETE", `/api/dead-letters/${encodeURIComponent(id)}`);
    if (result.status === 204) return { ok: true };
    return { ok: false, gone: result.status === 404, text: PC.errorText(result) };
  }

  // -- one dead letter ------------------------------------------------------------------------
  const letter = document.getElementById("letter");
  if (letter) {
    const id = letter.dataset.id;
    const retry = document.getElementById("retry-one");
    const remove = document.getElementById("delete-one");
    const done = (text, jobs) => {
      retry.disabled = remove.disabled = true;
      say(text, jobs, true);
      const back = document.createElement("a");
      back.href = "/dead-letters";
      back.textContent = "Back to the dead letters";
      message.append(" ", back);
    };
    retry.addEventListener("click", async () => {
      retry.disabled = true;
      const outcome = await retryOne(id);
      if (outcome.ok) done(`Sent back to its queue.`, outcome.job ? [outcome.job] : []);
      else { retry.disabled = false; say(`Not retried: ${outcome.text}.`, [], true); }
    });
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      const outcome = await deleteOne(id);
      if (outcome.ok) done("Deleted.");
      else { remove.disabled = false; say(`Not deleted: ${outcome.text}.`, [], true); }
    });
    return;
  }

  // -- the list -------------------------------------------------------------------------------
  const section = document.getElementById("letters");
  const table = document.getElementById("letters-table");
  const count = document.getElementById("letter-count");
  const selectAll = document.getElementById("select-all");
  const retrySelected = document.getElementById("retry-selected");
  const deleteSelected = document.getElementById("delete-selected");
  const selectedCount = document.getElementById("selected-count");
  const purge = document.getElementById("purge");
  const dialog = document.getElementById("purge-dialog");

  const picks = () => Array.from(document.querySelectorAll("input.pick"));
  const chosen = () => picks().filter((box) => box.checked).map((box) => box.value);

  function updateSelection() {
    const all = picks();
    const ids = chosen();
    retrySelected.disabled = deleteSelected.disabled = ids.length === 0;
    selectedCount.textContent = ids.length ? `${ids.length} selected` : "None selected";
    if (selectAll) {
      selectAll.checked = all.length > 0 && ids.length === all.length;
      selectAll.indeterminate = ids.length > 0 && ids.length < all.length;
    }
  }

  function removeRows(ids) {
    for (const id of ids) {
      const row = table && table.querySelector(`tr[data-id="${CSS.escape(String(id))}"]`);
      if (row) row.remove();
    }
    const left = picks().length;
    count.textContent = String(left);
    document.getElementById("letter-word").textContent = left === 1 ? "dead letter" : "dead letters";
    if (!left && table) {
      table.closest(".table-wrap").remove();
      const none = document.createElement("p");
      none.className = "muted";
      none.id = "no-letters";
      none.textContent = "No dead letters left here.";
      section.appendChild(none);
      section.querySelector(".toolbar").hidden = true;
    }
    updateSelection();
  }

  if (table) {
    table.addEventListener("change", (e) => {
      if (e.target === selectAll) picks().forEach((box) => { box.checked = selectAll.checked; });
      updateSelection();
    });
    table.addEventListener("click", async (e) => {
      const button = e.target.closest("button[data-action]");
      if (!button) return;
      const id = button.dataset.id;
      button.disabled = true;
      if (button.dataset.action === "retry") {
        const outcome = await retryOne(id);
        if (outcome.ok || outcome.gone) removeRows([id]);
        if (outcome.ok) say(`Dead letter #${id} was sent back to its queue.`, outcome.job ? [outcome.job] : [], true);
        else say(`Dead letter #${id} was not retried: ${outcome.text}.`, [], true);
      } else {
        const outcome = await deleteOne(id);
        if (outcome.ok || outcome.gone) removeRows([id]);
        say(outcome.ok ? `Dead letter #${id} was deleted.` : `Dead letter #${id} was not deleted: ${outcome.text}.`, [], true);
      }
      button.disabled = false;
    });
  }

  retrySelected.addEventListener("click", async () => {
    const ids = chosen();
    if (!ids.length) return;
    retrySelected.disabled = true;
    const result = await PC.api("POST", "/api/dead-letters/retry", { ids });
    if (result.status === 202 || result.status === 200) {
      const report = result.body;
      removeRows([...report.retried.map((r) => r.id), ...report.not_found]);
      const notes = [`${plural(report.retried.length, "dead letter")} sent back`];
      if (report.not_found.length) notes.push(`${report.not_found.length} already gone`);
      if (report.not_replayable.length) notes.push(`${report.not_replayable.length} cannot be sent back (#${report.not_replayable.join(", #")})`);
      say(`${notes.join("; ")}.`, report.retried.map((r) => r.job_id).filter(Boolean), true);
    } else {
      say(`Nothing was retried: ${PC.errorText(result)}.`, [], true);
    }
    updateSelection();
  });

  deleteSelected.addEventListener("click", async () => {
    const ids = chosen();
    if (!ids.length) return;
    deleteSelected.disabled = true;
    const gone = [];
    const failed = [];
    for (const id of ids) {
      const outcome = await deleteOne(id);
      if (outcome.ok || outcome.gone) gone.push(id); else failed.push(`#${id} (${outcome.text})`);
    }
    removeRows(gone);
    say(`${plural(gone.length, "dead letter")} deleted` + (failed.length ? `; not deleted: ${failed.join(", ")}.` : "."), [], true);
  });

  purge.addEventListener("click", () => {
    dialog.returnValue = "";
    dialog.showModal();
  });

  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "purge") { purge.focus(); return; }
    const filters = new URLSearchParams();
    if (section.dataset.queue) filters.set("queue", section.dataset.queue);
    if (section.dataset.actor) filters.set("actor", section.dataset.actor);
    const query = filters.toString();
    const result = await PC.api("DELETE", `/api/dead-letters${query ? `?${query}` : ""}`);
    if (result.status === 200) {
      removeRows(picks().map((box) => box.value));
      say(`Purged: ${plural(result.body.purged, "dead letter")} dropped.`, [], true);
    } else {
      say(`Nothing was purged: ${PC.errorText(result)}.`, [], true);
      purge.focus();
    }
  });

  updateSelection();
})();
