// relaygate dashboard: draws the overview's charts (uPlot) from the JSON its part carries, again each time
// htmx swaps a fresh part in; shows the date fields only for a period of dates. No inline script anywhere.
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  var SERIES = {
    cost: [["Cost (USD)", "cost", "--series-1"]],
    requests: [["Requests", "requests", "--series-1"], ["Errors", "errors", "--series-2"]],
    tokens: [["Input", "input_tokens", "--series-1"], ["Output", "output_tokens", "--series-3"]],
    latency: [["p50 (ms)", "p50", "--series-1"], ["p95 (ms)", "p95", "--series-2"]],
  };

  var charts = [];

  function drawCharts(root) {
    var source = root.querySelector(".chart-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.getAttribute("data-series"));
    charts.forEach(function (c) { c.plot.destroy(); });
    charts = [];
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var wanted = SERIES[el.getAttribute("data-chart")];
      if (!wanted) return;
      var text = css("--text"), line = css("--line");
      var axis = { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
      var opts = {
        width: Math.max(el.clientWidth, 200),
        height: 200,
        scales: { x: { time: true } },
        axes: [axis, Object.assign({}, axis, { size: 60 })],
        series: [{ label: "UTC" }].concat(wanted.map(function (s) {
          return { label: s[0], stroke: css(s[2]), width: 2, points: { show: data.t.length < 60 }, spanGaps: false };
        })),
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      };
      var columns = [data.t].concat(wanted.map(function (s) { return data[s[1]]; }));
      el.textContent = "";
      charts.push({ el: el, plot: new uPlot(opts, columns, el) });
    });
  }

  function resize() {
    charts.forEach(function (c) {
      c.plot.setSize({ width: Math.max(c.el.clientWidth, 200), height: 200 });
    });
  }

  function customFields(form) {
    var select = form.querySelector("[data-custom-toggle]");
    if (!select) return;
    var show = select.value === "custom";
    form.querySelectorAll(".field.custom").forEach(function (field) {
      field.hidden = !show;
      field.querySelectorAll("input").forEach(function (input) { input.disabled = !show; });
    });
  }

  function start() {
    drawCharts(document);
    document.querySelectorAll("form.filters").forEach(function (form) {
      customFields(form);
      form.addEventListener("change", function () { customFields(form); });
    });
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(resize, 150);
    });
    if (window.matchMedia) {
      window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { drawCharts(document); });
    }
    // A refreshed part replaces the old one: details the reader opened stay open, and the charts are drawn anew.
    var opened = [];
    document.body.addEventListener("htmx:beforeSwap", function () {
      opened = Array.prototype.map.call(document.querySelectorAll("details[id][open]"), function (d) { return d.id; });
    });
    document.body.addEventListener("htmx:afterSettle", function () {
      opened.forEach(function (id) {
        var details = document.getElementById(id);
        if (details) details.open = true;
      });
      var overview = document.getElementById("overview");
      if (overview) drawCharts(overview);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
