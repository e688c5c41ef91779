/* Small SVG charts for the dashboard (no library): a line over the day, bar charts, and
 * grouped or stacked bars of several series (the reports).
 * Each draws into a container at its current pixel size, so text is never stretched. */
"use strict";

const PDChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PAD = {l: 34, r: 8, t: 20, b: 20};

  function svg(container) {
    container.textContent = "";
    const w = Math.max(200, container.clientWidth), h = Math.max(120, container.clientHeight);
    const s = document.createElementNS(NS, "svg");
    s.setAttribute("viewBox", `0 0 ${w} ${h}`);
    s.setAttribute("role", "img");
    container.append(s);
    return {s, w, h};
  }
  function add(parent, tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    parent.append(e);
    return e;
  }
  /** A whole-number scale: {max, step} with at most about 5 gridlines. */
  function scale(v) {
    const raw = Math.max(1, v) / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = Math.max(1, [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw));
    return {max: Math.max(step, Math.ceil(Math.max(1, v) / step) * step), step};
  }
  function yAxis(g, w, h, sc) {
    for (let v = 0; v <= sc.max; v += sc.step) {
      const y = PAD.t + (h - PAD.t - PAD.b) * (1 - v / sc.max);
      add(g, "line", {x1: PAD.l, x2: w - PAD.r, y1: y, y2: y, class: v ? "grid" : "axis"});
      add(g, "text", {x: PAD.l - 4, y: y + 3, "text-anchor": "end", class: "label"}, String(v));
    }
  }
  function empty(g, w, h, text) {
    add(g, "text", {x: w / 2, y: h / 2, class: "empty"}, text || "暂无数据 No data yet");
  }

  /** values: numbers or null (no data); label(i) gives an x label or null. */
  function line(container, values, label, title) {
    const {s, w, h} = svg(container);
    if (title) s.setAttribute("aria-label", title);
    const known = values.filter((v) => v !== null && v !== undefined);
    const sc = scale(Math.max(1, ...known)), max = sc.max;
    yAxis(s, w, h, sc);
    const n = values.length, x = (i) => PAD.l + (w - PAD.l - PAD.r) * (i + .5) / n;
    const y = (v) => PAD.t + (h - PAD.t - PAD.b) * (1 - v / max);
    for (let i = 0; i < n; i++) {
      const text = label(i);
      if (text) add(s, "text", {x: x(i), y: h - 6, "text-anchor": "middle", class: "label"}, text);
    }
    if (!known.length) { empty(s, w, h); return; }
    let path = "", area = "", first = null, last = null;
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      path += (path ? "L" : "M") + x(i).toFixed(1) + "," + y(v).toFixed(1);
      if (first === null) first = i;
      last = i;
    });
    area = path + `L${x(last).toFixed(1)},${y(0)}L${x(first).toFixed(1)},${y(0)}Z`;
    add(s, "path", {d: area, class: "area"});
    add(s, "path", {d: path, class: "line"});
    add(s, "circle", {cx: x(last), cy: y(values[last]), r: 3.5, class: "dot"});  // now
    add(s, "text", {x: x(last), y: y(values[last]) - 7, class: "value"}, String(values[last]));
  }

  /** Bars with a label under each and the value above it; hot(i) marks a bar. */
  function bars(container, values, labels, hot, title) {
    const {s, w, h} = svg(container);
    if (title) s.setAttribute("aria-label", title);
    const sc = scale(Math.max(1, ...values)), max = sc.max;
    yAxis(s, w, h, sc);
    const n = values.length, slot = (w - PAD.l - PAD.r) / n;
    const y = (v) => PAD.t + (h - PAD.t - PAD.b) * (1 - v / max);
    values.forEach((v, i) => {
      const x0 = PAD.l + slot * i + slot * .15, bw = slot * .7;
      add(s, "rect", {x: x0, y: y(v), width: bw, height: Math.max(0, y(0) - y(v)),
        class: "bar" + (hot && hot(i) ? " hot" : "")});
      if (v && slot > 14) add(s, "text", {x: x0 + bw / 2, y: y(v) - 3, class: "value"}, String(v));
      if (labels[i]) add(s, "text", {x: x0 + bw / 2, y: h - 6, "text-anchor": "middle",
        class: "label"}, labels[i]);
    });
    if (!values.some((v) => v)) empty(s, w, h);
  }

  /** Several series over the same categories: bars side by side per category, or stacked;
   * series: [{name, values}], each series its own colour, named in a legend on top. */
  function groups(container, series, labels, stacked, title) {
    const {s, w, h} = svg(container);
    if (title) s.setAttribute("aria-label", title);
    const n = labels.length, k = series.length;
    const tops = labels.map((_, i) => stacked
      ? series.reduce((sum, se) => sum + (se.values[i] || 0), 0)
      : Math.max(0, ...series.map((se) => se.values[i] || 0)));
    const sc = scale(Math.max(1, ...tops)), max = sc.max;
    yAxis(s, w, h, sc);
    const slot = (w - PAD.l - PAD.r) / Math.max(1, n);
    const y = (v) => PAD.t + (h - PAD.t - PAD.b) * (1 - v / max);
    const bw = stacked ? slot * .7 : slot * .8 / Math.max(1, k);
    labels.forEach((label, i) => {
      const x0 = PAD.l + slot * i + slot * (stacked ? .15 : .1);
      let base = 0;
      series.forEach((se, j) => {
        const v = se.values[i] || 0, x = stacked ? x0 : x0 + bw * j;
        const top = y(base + v), bottom = y(base);
        add(s, "rect", {x, y: top, width: Math.max(1, bw - 1), height: Math.max(0, bottom - top),
          class: "bar s" + (j % 6), "data-series": j});
        if (v && !stacked && bw > 16) add(s, "text", {x: x + bw / 2, y: top - 3, class: "value"}, String(v));
        if (stacked) base += v;
      });
      if (label && slot > 24) add(s, "text", {x: PAD.l + slot * (i + .5), y: h - 6,
        "text-anchor": "middle", class: "label"}, label);
    });
    let lx = PAD.l;
    series.forEach((se, j) => {  // the legend, one line along the top
      add(s, "rect", {x: lx, y: 4, width: 10, height: 10, class: "bar s" + (j % 6)});
      const t = add(s, "text", {x: lx + 14, y: 13, class: "label legend"}, se.name);
      lx += 24 + (t.getComputedTextLength ? t.getComputedTextLength() : se.name.length * 10);
    });
    if (!tops.some((v) => v)) empty(s, w, h);
  }

  return {line, bars, groups};
})();
