/* Small SVG charts for the dashboard (no library): a line over the day and bar charts.
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

  return {line, bars};
})();
