// The privacy page: confirm an erasure, and follow running erasures' progress.
"use strict";
(function () {
  const script = document.getElementById("privacy-script");
  const form = document.getElementById("erase");
  if (form) form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  const rows = () => Array.from(document.querySelectorAll("#erasures tr[data-status]"));
  const busy = () => rows().some((row) => ["queued", "running"].includes(row.dataset.status));
  async function poll() {
    if (!busy()) return;
    const response = await fetch(script.dataset.statusUrl, {headers: {Accept: "application/json"}});
    if (response.ok) {
      for (const erasure of (await response.json()).erasures) {
        const row = document.getElementById(`erasure-${erasure.id}`);
        if (!row) continue;
        row.dataset.status = erasure.status;
        row.querySelector(".status").textContent = erasure.status + (erasure.error ? ` ${erasure.error}` : "");
        row.querySelector("progress").value = erasure.steps_done;
        row.querySelector(".step").textContent = erasure.current_step || "";
        row.querySelector(".counts").textContent = Object.entries(erasure.counts).map(([k, v]) => `${k} ${v}`).join(", ");
      }
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
