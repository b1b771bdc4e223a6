// The dashboard's few behaviours, kept out of the pages so the Content-Security-Policy
// can refuse every inline script.
(function () {
  "use strict";

  // <button data-copy="element-id">: copies that element's text.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.textContent = "Copied";
      });
    });
  });

  // <div id="thread" data-src="...">: a ticket's thread, refreshed so that visitor
  // messages in a live chat appear without a reload (not while the agent is in it).
  var thread = document.querySelector("#thread[data-src]");
  if (thread) {
    setInterval(function () {
      var active = document.activeElement;
      if (active && active.closest && active.closest("#thread")) return;
      fetch(thread.dataset.src, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) thread.innerHTML = html; });
    }, 3000);
  }

  // The model page: while a tuning run goes, poll its progress; reload when it ends.
  var versions = document.querySelector("#versions[data-running]");
  if (versions) {
    var poll = setInterval(function () {
      fetch(versions.dataset.statusUrl, { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) return;
          var busy = false;
          data.versions.forEach(function (v) {
            var article = versions.querySelector('[data-version="' + v.id + '"]');
            if (["queued", "training", "evaluating"].indexOf(v.status) >= 0) busy = true;
            if (!article || !v.progress || !v.progress.total_steps) return;
            var bar = article.querySelector("progress");
            if (bar) bar.value = v.progress.step;
            [["step", v.progress.step], ["loss", v.progress.loss], ["eta", Math.round(v.progress.eta_seconds)]].forEach(function (pair) {
              var node = article.querySelector("." + pair[0]);
              if (node) node.textContent = String(pair[1]);
            });
          });
          if (!busy) { clearInterval(poll); window.location.reload(); }
        });
    }, 3000);
  }

  // The bot page's test chat: the button opens the widget once its script has loaded.
  var openChat = document.getElementById("open-test-chat");
  if (openChat) {
    var ready = function () { openChat.disabled = false; };
    openChat.addEventListener("click", function () { if (window.NeoSupport) window.NeoSupport.open(); });
    var widget = document.getElementById("test-chat-widget");
    if (widget) widget.addEventListener("load", ready);
    if (window.NeoSupport) ready();
  }
})();
