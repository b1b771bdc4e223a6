// Live document progress: poll the status endpoint while anything is pending or processing.
(function () {
  "use strict";
  const table = document.getElementById("documents");
  if (!table) return;
  const labels = { pending: "Pending", processing: "Processing", ready: "Ready", failed: "Failed" };

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
  }

  async function poll() {
    const response = await fetch(table.dataset.statusUrl, { credentials: "same-origin" });
    if (!response.ok) return;
    const { documents } = await response.json();
    let busy = false;
    for (const doc of documents) {
      const row = table.querySelector(`tr[data-document="${doc.id}"]`);
      if (!row) continue;
      render(row.querySelector(".status"), doc);
      row.querySelector(".chunks").textContent = doc.chunk_count;
      row.querySelector(".title").textContent = doc.title;
      busy = busy || doc.status === "pending" || doc.status === "processing";
    }
    if (busy) setTimeout(poll, 1000);
  }

  if (table.querySelector("progress")) setTimeout(poll, 500);
})();
