// Draws every [data-chart] element from the page's chart specs with plotly.js (served by the app).
(function () {
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  var config = { responsive: true, displayModeBar: false, locale: "ja" };
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var spec = specs[el.dataset.chart];
    if (spec) { Plotly.newPlot(el, spec.data, spec.layout, config); }
  });
  document.documentElement.dataset.chartsReady = "true";
})();
