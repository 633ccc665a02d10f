// statustrace console: charts (uPlot) from JSON script elements, and live
// updates: a page with data-live follows that server-sent-events stream and
// re-renders its content from the server (?fragment=1) when a change
// arrives. No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#4b5563"];

  function charts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var src = document.getElementById(el.getAttribute("data-chart"));
      if (!src) return;
      var d = JSON.parse(src.textContent || "{}");
      if (!d.x || !d.x.length) { el.textContent = "no data"; return; }
      var spark = el.classList.contains("spark");
      var width = spark ? 160 : Math.max(280, Math.min(el.clientWidth || 900, 1100));
      var opts = {
        width: width, height: spark ? 40 : 260,
        legend: { show: !spark },
        // Headroom above the largest count, so a line at the top or the
        // bottom is not lost on the edge.
        scales: { y: { range: function (u, min, max) { var m = Math.max(1, max); return [-0.06 * m, 1.15 * m]; } } },
        cursor: { show: !spark },
        axes: spark ? [{ show: false }, { show: false }] : [{}, {}],
        series: [{}].concat(d.series.map(function (s, i) {
          // Counts per step: stepped on the big chart; a sparkline is a
          // plain line, which stays visible when only the last step is busy.
          return { label: s.label, stroke: palette[i % palette.length], width: 1.5,
            paths: !spark && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined };
        }))
      };
      el.textContent = "";
      new uPlot(opts, [d.x].concat(d.series.map(function (s) { return s.values; })), el);
    });
  }

  function live() {
    var main = document.getElementById("content");
    var url = main && main.getAttribute("data-live");
    if (!url || typeof EventSource === "undefined") return;
    var status = document.getElementById("live-status");
    // A list re-renders at most every 2 s under a stream of changes; one
    // event's page at once.
    var delay = parseInt(main.getAttribute("data-live-delay") || "2000", 10);
    var pending = null, changes = 0;
    function refresh() {
      pending = null;
      var u = new URL(window.location.href);
      u.searchParams.set("fragment", "1");
      fetch(u, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          // Keep focus and scroll where they are: only the content changes.
          main.innerHTML = html;
          charts(main);
          if (status) status.textContent = "live · updated " + new Date().toLocaleTimeString() + " (" + changes + " changes)";
          main.setAttribute("data-updated", String(changes));
        })
        .catch(function () { if (status) status.textContent = "live · update failed, retrying"; });
    }
    var es = new EventSource(url, { withCredentials: true });
    es.addEventListener("status", function () {
      changes++;
      if (!pending) pending = setTimeout(refresh, delay);
    });
    es.addEventListener("open", function () { if (status) status.textContent = "live"; main.setAttribute("data-live-open", "1"); });
    es.addEventListener("error", function () { if (status) status.textContent = "live · reconnecting"; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    charts(document);
    live();
  });
})();
