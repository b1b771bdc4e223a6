// The knowledge base page: as soon as files are chosen, say how many chunks each will
// make and how long indexing will take, and warn about a long one before it is uploaded.
// The numbers come from retrieval/estimates.py through the file input's data attributes.
(function () {
  "use strict";
  var input = document.getElementById("files");
  var out = document.getElementById("upload-estimate");
  if (!input || !out) return;
  var charsPerChunk = Number(input.dataset.charsPerChunk);
  var perSecond = Number(input.dataset.chunksPerSecond);
  var pageChars = Number(input.dataset.pdfPageChars);
  var longSeconds = Number(input.dataset.longSeconds);
  var textPerByte = { html: 0.35, htm: 0.35, docx: 0.8, pdf: 0.05 };

  function duration(seconds) {
    if (seconds < 90) return Math.max(1, seconds) + (seconds === 1 ? " second" : " seconds");
    var minutes = Math.round(seconds / 60);
    if (minutes < 90) return minutes + " minutes";
    return (minutes / 60).toFixed(1) + " hours";
  }

  function pdfPages(file) {
    // Page objects counted in the raw bytes, as the server does; 0 when they are compressed.
    return file.arrayBuffer().then(function (buffer) {
      var text = new TextDecoder("latin1").decode(buffer);
      var found = text.match(/\/Type\s*\/Page(?![a-zA-Z])/g);
      return found ? found.length : 0;
    });
  }

  function estimate(file) {
    var extension = (file.name.split(".").pop() || "").toLowerCase();
    var pages = extension === "pdf" ? pdfPages(file) : Promise.resolve(0);
    return pages.then(function (count) {
      var text = count ? count * pageChars : file.size * (textPerByte[extension] || 1);
      var chunks = Math.max(1, Math.round(text / charsPerChunk));
      return { name: file.name, chunks: chunks, seconds: Math.max(1, Math.round(chunks / perSecond)) };
    });
  }

  function show(estimates) {
    out.textContent = "";
    var anyLong = false;
    estimates.forEach(function (e) {
      var line = document.createElement("div");
      var long = e.seconds >= longSeconds;
      anyLong = anyLong || long;
      line.className = long ? "estimate long" : "estimate";
      line.textContent = e.name + ": about " + e.chunks.toLocaleString("en") + (e.chunks === 1 ? " chunk" : " chunks") +
        ", about " + duration(e.seconds) + " to index" + (long ? " (a long upload)." : ".");
      out.appendChild(line);
    });
    if (anyLong) {
      var note = document.createElement("div");
      note.className = "muted";
      note.textContent = "Chats keep answering meanwhile, and documents added after it do not wait for it to finish.";
      out.appendChild(note);
    }
    out.hidden = estimates.length === 0;
  }

  input.addEventListener("change", function () {
    Promise.all(Array.prototype.map.call(input.files, estimate)).then(show);
  });
})();
