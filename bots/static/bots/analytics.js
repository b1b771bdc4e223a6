// Charts for the analytics page (templates/dashboard/analytics.html). The figures come
// from the page's <script type="application/json" id="analytics-data">; the tables and
// cards on the page say the same in text, so nothing is lost without this script.
(function () {
  "use strict";

  var source = document.getElementById("analytics-data");
  if (!source || typeof window.Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var Chart = window.Chart;
  var palette = ["#2563eb", "#0d9488", "#d97706", "#b42318", "#7c3aed", "#6b7280"];
  if (window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches) {
    Chart.defaults.animation = false;
  }

  function canvas(id) {
    return document.getElementById(id);
  }

  function lineChart(element) {
    var days = data.daily.map(function (day) { return day.date; });
    var series = [
      ["Conversations", "conversations"],
      ["Visitor messages", "visitor_messages"],
      ["Handoffs", "handed_off"],
      ["Deflected", "deflected"],
    ];
    new Chart(element, {
      type: "line",
      data: {
        labels: days,
        datasets: series.map(function (entry, index) {
          return {
            label: entry[0],
            data: data.daily.map(function (day) { return day[entry[1]]; }),
            borderColor: palette[index],
            backgroundColor: palette[index],
            tension: 0.2,
            pointRadius: days.length > 60 ? 0 : 2,
          };
        }),
      },
      options: {
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function moderationChart(element) {
    var filters = data.moderation.map(function (row) { return row.filter; });
    var actions = [];
    data.moderation.forEach(function (row) {
      Object.keys(row.actions).forEach(function (action) {
        if (actions.indexOf(action) === -1) actions.push(action);
      });
    });
    new Chart(element, {
      type: "bar",
      data: {
        labels: filters,
        datasets: actions.map(function (action, index) {
          return {
            label: action,
            data: data.moderation.map(function (row) { return row.actions[action] || 0; }),
            backgroundColor: palette[(index + 2) % palette.length],
          };
        }),
      },
      options: {
        maintainAspectRatio: false,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }

  function thumbsChart(element) {
    new Chart(element, {
      type: "doughnut",
      data: {
        labels: ["Thumbs up", "Thumbs down"],
        datasets: [{
          data: [data.totals.thumbs_up, data.totals.thumbs_down],
          backgroundColor: ["#0d9488", "#b42318"],
        }],
      },
      options: { maintainAspectRatio: false },
    });
  }

  if (canvas("chart-daily")) lineChart(canvas("chart-daily"));
  if (canvas("chart-moderation")) moderationChart(canvas("chart-moderation"));
  if (canvas("chart-thumbs")) thumbsChart(canvas("chart-thumbs"));
})();
