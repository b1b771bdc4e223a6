// The moderation log's chart (templates/dashboard/moderation.html): the share of screened
// messages each filter flagged per day, from <script type="application/json"
// id="moderation-data">. The table under it says the same in text.
(function () {
  "use strict";

  var source = document.getElementById("moderation-data");
  var element = document.getElementById("chart-moderation-daily");
  if (!source || !element || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var palette = ["#b42318", "#d97706", "#2563eb", "#0d9488", "#7c3aed", "#6b7280"];
  if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    window.Chart.defaults.animation = false;
  }
  new window.Chart(element, {
    type: "line",
    data: {
      labels: data.days,
      datasets: Object.keys(data.series).map(function (name, index) {
        return {
          label: name,
          data: data.series[name].map(function (share) { return share * 100; }),
          borderColor: palette[index % palette.length],
          backgroundColor: palette[index % palette.length],
          tension: 0.2,
          pointRadius: 2,
        };
      }),
    },
    options: {
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, title: { display: true, text: "% of screened messages" } } },
    },
  });
})();
