"use strict";
// The exposure chart: prednisone-equivalent mg per day over the lookback (actual and planned),
// the dose lines the rules use, IV pulse days, and one lane per course labelled with its drug
// and source record. SVG built node by node (text via textContent, never markup).
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;
  const WIDTH = 760;
  const PLOT = { left: 44, right: 12, top: 16, height: 240 };
  const LANE = 17;
  const MAX_LANES = 14;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const day = (iso) => Date.parse(iso + "T00:00:00Z") / DAY_MS;
  const fmt = (mg) => (Math.round(mg * 100) / 100).toLocaleString("en-US");

  function niceMax(value) {
    const step = value <= 40 ? 5 : value <= 100 ? 10 : 50;
    return Math.ceil(value / step) * step;
  }

  function draw(container, chart) {
    container.replaceChildren();
    if (!chart) return;
    const first = day(chart.window_start);
    const today = day(chart.today);
    const ends = [today + 1]
      .concat(chart.planned.map((r) => day(r.end) + 1))
      .concat(chart.courses.map((c) => Math.min(day(c.end) + 1, today + 120)));
    const last = Math.max(...ends);
    const pulseDays = new Set(chart.pulses.map((p) => p.day));
    const lineMax = Math.max(0, ...chart.lines.map((l) => l.mg));
    const ordinary = chart.daily.concat(chart.planned).filter((r) => !pulseDays.has(r.start));
    const yMax = niceMax(Math.max(lineMax * 1.2, ...ordinary.map((r) => r.mg), 1));
    const plotWidth = WIDTH - PLOT.left - PLOT.right;
    const x = (d) => PLOT.left + ((Math.max(first, Math.min(last, d)) - first) / (last - first)) * plotWidth;
    const y = (mg) => PLOT.top + PLOT.height - (Math.min(mg, yMax) / yMax) * PLOT.height;
    const bottom = PLOT.top + PLOT.height;
    const courses = chart.courses.slice(0, MAX_LANES);
    const height = bottom + 28 + Math.max(1, courses.length) * LANE + (chart.courses.length > MAX_LANES ? LANE : 0) + 6;

    const svg = el("svg", {
      id: "exposure-chart",
      viewBox: `0 0 ${WIDTH} ${height}`,
      width: WIDTH,
      height,
      role: "img",
      "aria-label": "Prednisone-equivalent mg per day over the lookback",
    });
    svg.appendChild(el("title", {}, "Prednisone-equivalent mg/day over the lookback"));

    // y axis: ticks and grid
    const step = yMax <= 40 ? 5 : yMax <= 100 ? 10 : 50;
    for (let mg = 0; mg <= yMax; mg += step) {
      svg.appendChild(el("line", { class: "grid", x1: PLOT.left, x2: PLOT.left + plotWidth, y1: y(mg), y2: y(mg) }));
      svg.appendChild(el("text", { class: "tick", x: PLOT.left - 6, y: y(mg) + 4, "text-anchor": "end" }, String(mg)));
    }
    svg.appendChild(el("text", { class: "axis-label", x: 4, y: PLOT.top - 4 }, "mg/day"));

    // x axis: month starts
    const start = new Date(first * DAY_MS);
    for (let m = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1)); m.getTime() / DAY_MS < last; m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1))) {
      const at = x(m.getTime() / DAY_MS);
      svg.appendChild(el("line", { class: "month", x1: at, x2: at, y1: bottom, y2: bottom + 4 }));
      const label = m.getUTCMonth() === 0 ? String(m.getUTCFullYear()) : MONTHS[m.getUTCMonth()];
      svg.appendChild(el("text", { class: "tick", x: at + 2, y: bottom + 15 }, label));
    }

    // exposure: actual then planned, one rectangle per run of equal days
    for (const [runs, cls] of [[chart.daily, "exposure"], [chart.planned, "exposure planned"]]) {
      for (const run of runs) {
        const x0 = x(day(run.start));
        const x1 = x(day(run.end) + 1);
        const rect = el("rect", { class: cls, x: x0, y: y(run.mg), width: Math.max(0.5, x1 - x0), height: bottom - y(run.mg), "data-mg": run.mg });
        rect.appendChild(el("title", {}, `${fmt(run.mg)} mg/day, ${run.start} to ${run.end}${cls.includes("planned") ? " (planned)" : ""}`));
        svg.appendChild(rect);
      }
    }

    // the dose lines the rules use
    for (const line of chart.lines) {
      const at = y(line.mg);
      const g = el("g", { class: "threshold", "data-mg": line.mg });
      g.appendChild(el("line", { x1: PLOT.left, x2: PLOT.left + plotWidth, y1: at, y2: at }));
      g.appendChild(el("text", { x: PLOT.left + 4, y: at - 3 }, `${fmt(line.mg)} mg/day: ${line.label}`));
      g.appendChild(el("title", {}, `${fmt(line.mg)} mg/day: ${line.label} (${line.paths.join(", ")})`));
      svg.appendChild(g);
    }

    // IV pulses: a marker above the day, with the dose
    let previousPulse = null;
    for (const pulse of chart.pulses) {
      const at = x(day(pulse.day) + 0.5);
      if (previousPulse === null || day(pulse.day) - previousPulse > 1) {
        svg.appendChild(el("text", { class: "pulse-label", x: at + 7, y: PLOT.top + 9 }, `IV pulse ${fmt(pulse.mg)} mg`));
      }
      previousPulse = day(pulse.day);
      const g = el("g", { class: "pulse" });
      g.appendChild(el("path", { d: `M${at - 5},${PLOT.top + 10} L${at + 5},${PLOT.top + 10} L${at},${PLOT.top} Z` }));
      g.appendChild(el("title", {}, `IV pulse ${pulse.day}: ${fmt(pulse.mg)} mg prednisone-equivalent [${pulse.source}]`));
      svg.appendChild(g);
    }

    // today
    svg.appendChild(el("line", { class: "today", x1: x(today), x2: x(today), y1: PLOT.top, y2: bottom }));
    svg.appendChild(el("text", { class: "tick", x: x(today) - 3, y: PLOT.top + 22, "text-anchor": "end" }, "today"));
    svg.appendChild(el("line", { class: "axis", x1: PLOT.left, x2: PLOT.left + plotWidth, y1: bottom, y2: bottom }));

    // courses: one lane each, labelled with drug, dose and source
    courses.forEach((course, i) => {
      const top = bottom + 24 + i * LANE;
      const x0 = x(day(course.start));
      const x1 = x(day(course.end) + 1);
      const g = el("g", { class: "course" + (course.planned ? " planned" : "") + (course.mg === null ? " unknown" : "") });
      g.appendChild(el("rect", { x: x0, y: top, width: Math.max(2, x1 - x0), height: LANE - 5 }));
      const dose = course.mg === null ? "dose unknown" : `${fmt(course.mg)} mg/day`;
      const label = `${course.drug} ${dose} · ${course.source}`;
      const rightSide = x1 + 4 + label.length * 5.6 < WIDTH;
      g.appendChild(el("text", { x: rightSide ? x1 + 4 : x0 - 4, y: top + LANE - 7, "text-anchor": rightSide ? "start" : "end" }, label));
      g.appendChild(el("title", {}, `${label}, ${course.start} to ${course.end} (${course.route}${course.planned ? ", planned" : ""})`));
      svg.appendChild(g);
    });
    if (chart.courses.length > MAX_LANES) {
      svg.appendChild(el("text", { class: "tick", x: PLOT.left, y: bottom + 24 + MAX_LANES * LANE + 10 }, `and ${chart.courses.length - MAX_LANES} more courses (see the explanation)`));
    }
    if (!chart.courses.length) {
      svg.appendChild(el("text", { class: "tick", x: PLOT.left, y: bottom + 36 }, "No systemic glucocorticoid on record in the lookback."));
    }
    container.appendChild(svg);
  }

  window.PreviewChart = { draw };
})();
