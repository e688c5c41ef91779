/* Reports (E1–E5, C4, I5): the page over the reports service's JSON API. The service lives
 * in central/reports (GET /api/reports, /api/reports/{id}[/xlsx|/csv]); until it is on this
 * centre the page says so instead of failing. Filters: an org node, any of its branches,
 * businesses and customer types (none chosen: all); the staff search by 工号
 * (teller-services) adds the staff number and served / not served. The downloads take the
 * same query. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, orgOptions, orgNameMap, num, day} = PD;
  const SHOWN = 1000;  // rows drawn on the page; the total row and the exports cover all
  $("#date").value = day();  // today in the province, not in UTC (toISOString)

  /* The branches of the chosen node: a city's own (its children, up to 1000), or for a
   * province the first 50 in code order (a city narrows them; a code searches). */
  async function branchOptions() {
    const under = $("#org").value;
    if (!under) return;
    const kids = await api("GET", "/api/orgs/children?" + new URLSearchParams({parent: under, limit: "1000"}));
    let list = kids.ok ? kids.data.orgs.filter((o) => o.kind === "branch") : [];
    let more = false;
    if (!list.length && kids.ok && kids.data.orgs.length) {
      const found = await api("GET", "/api/orgs/search?" + new URLSearchParams({q: under, kind: "branch"}));
      list = found.ok ? found.data.orgs : [];
      more = found.ok && found.data.more;
    } else if (!list.length) {  // a branch itself
      const chosen = $("#org").selectedOptions[0];
      if (chosen && chosen.dataset.kind === "branch") list = [{code: under, name: chosen.textContent.trim()}];
    }
    if (under !== $("#org").value) return;  // another node was chosen meanwhile
    const kept = new Set(picked($("#branch")));  // kept when the same node is listed again
    $("#branch").replaceChildren(...list.map((o) => el("option", {value: o.code, title: o.code,
      selected: kept.has(o.code)}, o.name)),
      ...(more ? [el("option", {disabled: true}, "… 更多网点请先选分行 more: choose a city")] : []));
  }
  function choiceOptions(select, list) {
    select.replaceChildren(...(list || []).map((c) => el("option", {value: c.id},
      c.name === c.id ? c.id : `${c.name} ${c.id}`)));
  }
  const picked = (select) => Array.from(select.selectedOptions).map((o) => o.value);
  orgOptions($("#org"), boot.org).then(branchOptions);
  $("#org").addEventListener("change", branchOptions);
  $("#clear").addEventListener("click", () => {
    for (const id of ["#branch", "#queue", "#ctype"]) {
      for (const o of $(id).options) o.selected = false;
    }
  });

  const STAFF_SEARCH = "teller-services";  // the report that takes a 工号 (SPEC I5)
  function staffFields() {
    const on = $("#report").value === STAFF_SEARCH;
    for (const label of document.querySelectorAll(".staff-search")) label.classList.toggle("hidden", !on);
    $("#teller").required = on;
  }
  $("#report").addEventListener("change", staffFields);

  async function catalogue() {
    const res = await api("GET", "/api/reports");
    if (!res.ok) return false;
    const list = res.data.reports || [];
    $("#report").replaceChildren(...list.map((r) => el("option", {value: r.id},
      (r.spec ? r.spec + " · " : "") + (r.title || r.id) + (r.title_en ? " " + r.title_en : ""))));
    const choices = res.data.choices || {};
    choiceOptions($("#queue"), choices.queues);
    choiceOptions($("#ctype"), choices.customer_types);
    $("#note").textContent = "";
    staffFields();
    return true;
  }
  function dateFor(period, date) {
    return period === "year" ? date.slice(0, 4) : period === "month" ? date.slice(0, 7) : date;
  }
  function query() {
    const period = $("#period").value;
    const q = new URLSearchParams({org: $("#org").value, period, date: dateFor(period, $("#date").value)});
    for (const [key, select] of [["branch", "#branch"], ["queue", "#queue"], ["customer_type", "#ctype"]]) {
      for (const v of picked($(select))) q.append(key, v);
    }
    if ($("#report").value === STAFF_SEARCH) {
      q.set("teller", $("#teller").value.trim());
      q.set("outcome", $("#outcome").value);
    }
    return q;
  }
  function table(data) {
    const cols = data.columns || [];
    const label = (c) => c.header || [c.title, c.unit ? `(${c.unit})` : ""].join("");
    const cell = (v) => (typeof v === "number" ? el("td", {class: "n"}, num(Math.round(v * 100) / 100)) : el("td", {}, v === null || v === undefined ? "—" : String(v)));
    const rows = (data.rows || []).map((r) => el("tr", {}, ...cols.map((c) => cell(r[c.key]))));
    if (data.total) {
      rows.push(el("tr", {class: "total"}, ...cols.map((c, i) =>
        cell(i === 0 && data.total[c.key] === undefined ? data.total.label || "合计" : data.total[c.key]))));
    }
    // A header in two lines (Chinese with its unit, the English below) so 13 columns fit a
    // 1366-wide screen; the whole header stays on hover.
    const head = (c) => c.title ? el("th", {title: label(c)}, c.title + (c.unit ? `(${c.unit})` : ""),
      el("small", {}, [c.title_en, c.unit_en ? `(${c.unit_en})` : ""].join(" ").trim())) : el("th", {}, label(c));
    return el("div", {class: "scroll"}, el("table", {class: "list", id: "report-table"},
      el("thead", {}, el("tr", {}, ...cols.map(head))), el("tbody", {}, ...rows)));
  }
  function chart(data) {
    const ch = data.chart;
    if (!ch || !ch.series || !ch.series.length || !(data.rows || []).length) return null;
    const titles = {};
    for (const c of data.columns || []) titles[c.key] = c.header || c.title || c.key;
    const series = ch.series.map((key) => ({name: titles[key] || key,
      values: data.rows.map((r) => Number(r[key]) || 0)}));
    const box = el("div", {class: "chart wide", id: "report-chart"});
    setTimeout(() => PDChart.groups(box, series, data.rows.map((r) => String(r[ch.category] ?? "")),
      !!ch.stacked, ch.title), 0);
    return el("figure", {class: "card"}, el("figcaption", {}, ch.title || ""), box);
  }
  $("#filters").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = $("#report").value, q = query();
    // a page of rows (60,000 tellers of 10,000 branches are not drawn); exports hold all
    const res = await api("GET", `/api/reports/${encodeURIComponent(id)}?${q}&rows=${SHOWN}`);
    if (!res.ok) { $("#result").replaceChildren(el("p", {class: "error"}, errorText(res))); return; }
    const d = res.data;
    // The scope by names ("机构 org 郑州金水路支行"), not the org codes the API's label uses.
    const label = (d.scope && d.scope.label) || "";
    const names = await orgNameMap(label.match(/\b\d{4,16}\b/g) || []);  // the codes it names
    const named = (text) => (text || "").replace(/\b\d{4,16}\b/g, (code) => names.get(code) || code);
    const scope = [d.scope && named(d.scope.label), d.period && d.period.label].filter(Boolean).join(" · ");
    $("#result").replaceChildren(...[el("h2", {}, d.title || id, el("small", {}, d.title_en || "")),
      scope ? el("p", {class: "muted", id: "report-scope"}, scope) : null, chart(d), table(d),
      d.rows_total > (d.rows || []).length ? el("p", {class: "muted", id: "rows-shown"},
        `共 ${num(d.rows_total)} 行,此处显示前 ${num(d.rows.length)} 行,导出的 Excel/CSV 含全部 · ` +
        `${d.rows_total} rows, the first ${d.rows.length} shown; the exports hold all`) : null,
      ...(d.notes || []).map((n) => el("p", {class: "muted"}, n))].filter(Boolean));
    for (const fmt of ["xlsx", "csv"]) {
      const a = $("#" + fmt);
      a.href = `/api/reports/${encodeURIComponent(id)}/${fmt}?${q}`;
      a.classList.remove("hidden");
    }
  });
  catalogue();
})();
