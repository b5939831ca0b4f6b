// The economy page's chart: the daily figures from the page's JSON data block, drawn with
// uPlot (served by this bot). The table below the chart holds the same figures.
"use strict";
(() => {
  const data = document.getElementById("economy-data");
  const target = document.getElementById("economy-chart");
  if (!data || !target || typeof uPlot === "undefined") return;
  const chart = JSON.parse(data.textContent);
  const names = Object.keys(chart.series);
  const colors = ["#3fcf8e", "#4ea8ff", "#f5a524", "#a970ff", "#ff6b6b", "#9b9bab"];
  const muted = getComputedStyle(document.body).getPropertyValue("--muted").trim() || "#9b9bab";
  const grid = getComputedStyle(document.body).getPropertyValue("--line").trim() || "#2e2e3a";
  const format = new Intl.NumberFormat("en-US", { notation: "compact" });
  const axis = (scale, side) => ({
    scale, side, stroke: muted, grid: { stroke: grid, width: 1, show: side === 3 },
    values: (u, ticks) => ticks.map((v) => format.format(v)), size: 60,
  });
  const options = {
    width: Math.max(320, target.clientWidth),
    height: 320,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, points: { auto: true }, total: { auto: true } },
    axes: [{ stroke: muted, grid: { stroke: grid, width: 1 } }, axis("points", 3), axis("total", 1)],
    series: [{}].concat(names.map((name, i) => ({
      label: name,
      scale: name === "In circulation" ? "total" : "points",
      stroke: colors[i % colors.length],
      width: name === "In circulation" ? 2 : 1.5,
      dash: name === "In circulation" ? [6, 4] : undefined,
      points: { show: chart.x.length < 40 },
    }))),
  };
  const plot = new uPlot(options, [chart.x].concat(names.map((n) => chart.series[n])), target);
  window.addEventListener("resize", () => plot.setSize({ width: Math.max(320, target.clientWidth), height: 320 }));
})();
