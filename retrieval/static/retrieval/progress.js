// Live document progress and index version: poll the status endpoint every second while
// anything is pending or processing, and now and then otherwise (a deletion or an import
// moves the index version in the background).
(function () {
  "use strict";
  const table = document.getElementById("documents");
  if (!table) return;
  const version = document.getElementById("index-version");
  const chunkTotal = document.getElementById("chunk-total"); // in the deletion warning
  const labels = { pending: "Pending", processing: "Processing", ready: "Ready", failed: "Failed" };
  const BUSY_MS = 1000;
  const IDLE_MS = 15000;

  function render(cell, doc) {
    cell.textContent = labels[doc.status] || doc.status;
    if (doc.status === "pending" || doc.status === "processing") {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = doc.progress;
      cell.append(" ", bar);
    }
    if (doc.error) {
      const error = document.createElement("div");
      error.className = "error";
      error.textContent = doc.error;
      cell.append(error);
    }
    if (doc.retry_advice) {
      const advice = document.createElement("div");
      advice.className = "advice";
      advice.textContent = doc.retry_advice;
      cell.append(advice);
    }
  }

  // Retry is offered only for failures a retry can fix; the form reuses the row's CSRF token.
  function renderRetry(row, doc) {
    const actions = row.querySelector(".actions");
    const existing = row.querySelector("form.retry");
    const token = row.querySelector("input[name=csrfmiddlewaretoken]");
    if (!doc.can_retry) {
      if (existing) existing.remove();
      return;
    }
    if (existing || !actions || !token || !row.dataset.retryUrl) return;
    const form = document.createElement("form");
    form.method = "post";
    form.action = row.dataset.retryUrl;
    form.className = "inline retry";
    const button = document.createElement("button");
    button.type = "submit";
    button.className = "link";
    button.textContent = "Retry";
    form.append(token.cloneNode(), button);
    actions.prepend(form, " ");
  }

  async function poll() {
    let busy = false;
    try {
      const response = await fetch(table.dataset.statusUrl, { credentials: "same-origin" });
      if (response.ok) {
        const status = await response.json();
        if (version && status.index_version !== undefined) version.textContent = status.index_version;
        if (chunkTotal) chunkTotal.textContent = status.documents.reduce((sum, doc) => sum + doc.chunk_count, 0);
        for (const doc of status.documents) {
          const row = table.querySelector(`tr[data-document="${doc.id}"]`);
          if (!row) continue;
          render(row.querySelector(".status"), doc);
          renderRetry(row, doc);
          row.querySelector(".chunks").textContent = doc.chunk_count;
          row.querySelector(".title").textContent = doc.title;
          busy = busy || doc.status === "pending" || doc.status === "processing";
        }
      }
    } catch (error) {
      // The server is restarting or the network dropped: try again later.
    } finally {
      schedule(busy ? BUSY_MS : IDLE_MS);
    }
  }

  function schedule(delay) {
    setTimeout(function () {
      if (document.visibilityState === "hidden") schedule(IDLE_MS);
      else poll();
    }, delay);
  }

  schedule(table.querySelector("progress") ? 500 : IDLE_MS);
})();
