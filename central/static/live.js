/* The live dashboard: org tree drill-down, figures pushed over Server-Sent Events.
 *
 * The stream (/api/live/stream?org=) sends a "view" at every change of the node's subtree
 * and at least every ping_s, and "charts" every few seconds. The browser's EventSource
 * reconnects by itself after a network glitch or a centre restart; a watchdog reopens it
 * when nothing came for three ping periods. Whenever the link is down, or a branch has
 * gone quiet, the page says so and shows how old its figures are. Open (unacknowledged)
 * alerts of the user's scope show in a panel above the figures, polled every 5 s from
 * /api/alerts, with a beep for each new one; they are acknowledged on /alerts. */
"use strict";
(() => {
  const {boot, $, el, api, errorText, dur, ago, when, num, toast} = PD;
  const pingMs = (boot.ping_s || 15) * 1000;
  let org = boot.org, view = boot.view, charts = boot.charts;
  let receivedAt = Date.now(), es = null, lastMsg = Date.now(), connected = false;
  let previous = {};
  const PAGE = 100;  // children per page (the API's default); a city of 500 comes in pages
  let offset = 0;
  const page = () => `&offset=${offset}&limit=${PAGE}`;

  /* --- the clock of the figures ------------------------------------------------------- */
  const serverNow = () => view.now + (Date.now() - receivedAt) / 1000;

  /* --- the tree ------------------------------------------------------------------------ */
  /* Loaded a node at a time (/api/orgs/children): the user's own roots first, then the
   * children of each node one opens, and of each node on the current node's path. A node
   * with many children shows them a page (200) at a time, "more" bringing the next. */
  const kidsOf = new Map();  // parent code ("" for the roots) -> {orgs, more, next}
  const opened = new Set();
  async function loadKids(parent, after) {
    const q = new URLSearchParams(parent ? {parent} : {});
    if (after) q.set("after", after);
    const res = await api("GET", "/api/orgs/children?" + q);
    if (!res.ok) return;
    const had = after && kidsOf.has(parent) ? kidsOf.get(parent).orgs : [];
    kidsOf.set(parent, {orgs: had.concat(res.data.orgs), more: res.data.more, next: res.data.next});
  }
  async function loadTree() {
    if (!kidsOf.has("")) await loadKids("");
    for (const p of view.path || []) {  // the path from the user's root down to the node
      if (p.code === org && !(view.children || []).length) break;
      opened.add(p.code);
      if (!kidsOf.has(p.code)) await loadKids(p.code);
    }
    drawTree();
  }
  async function toggle(code) {
    if (opened.has(code)) opened.delete(code);
    else {
      opened.add(code);
      if (!kidsOf.has(code)) await loadKids(code);
    }
    drawTree();
  }
  function drawTree() {
    const kids = {};
    for (const c of view.children || []) kids[c.code] = c;
    const list = (parent) => {
      const ul = el("ul");
      const got = kidsOf.get(parent) || {orgs: []};
      for (const o of got.orgs) {
        const k = kids[o.code];
        const dot = k ? el("span", {class: "dot " + statusClass(k)}) : null;
        const open = opened.has(o.code) && kidsOf.has(o.code);
        const twisty = o.has_children ? el("button", {type: "button", class: "twisty",
          "aria-expanded": open ? "true" : "false", "data-toggle": o.code,
          "aria-label": (open ? "收起 Close " : "展开 Open ") + o.name,
          onclick: () => toggle(o.code)}, open ? "▾" : "▸") : el("span", {class: "twisty"});
        const a = el("a", {href: "/live?org=" + o.code, class: o.code === org ? "current" : null,
          "data-org": o.code, onclick: (ev) => { ev.preventDefault(); go(o.code); }},
        el("span", {}, o.name), dot);
        ul.append(el("li", {}, twisty, a, open ? list(o.code) : null));
      }
      if (got.more) {
        ul.append(el("li", {class: "muted"}, el("button", {type: "button", class: "more",
          "data-more": parent, onclick: async () => { await loadKids(parent, got.next); drawTree(); }},
        "更多 more…")));
      }
      return ul;
    };
    $("#tree").replaceChildren(list(""));
  }
  function statusClass(k) {
    if (k.kind === "branch") {
      if (k.branch_online === false) return "bad";
      if (k.is_stale) return "warn";
      return k.branch_online ? "ok" : "";
    }
    if (k.offline) return "bad";
    if (k.stale) return "warn";
    return k.online ? "ok" : "";
  }

  /* --- drawing ------------------------------------------------------------------------- */
  function draw() {
    const t = view.totals, node = view.node;
    document.title = node.name + " · 实时监控";
    $("#path").replaceChildren(...view.path.map((p, i) => el("li", {},
      i === view.path.length - 1 ? el("span", {}, p.name)
        : el("a", {href: "/live?org=" + p.code, onclick: (ev) => { ev.preventDefault(); go(p.code); }},
          p.name))));
    $("#title").replaceChildren(node.name, el("small", {}, node.code + " · " + kindName(node.kind)));
    drawState();
    drawKpis(t);
    drawChildren();
    drawBranch();
    drawTree();
    drawLink();
  }
  function kindName(k) {
    return {head: "省分行 head office", city: "分行 city branch", branch: "网点 sub-branch"}[k] || k;
  }
  function drawState() {
    const b = view.branch, t = view.totals, now = serverNow();
    const parts = [];
    if (b) {
      if (b.online === true) parts.push(el("span", {class: "tag ok"}, "在线 online"));
      else if (b.online === false) parts.push(el("span", {class: "tag bad"},
        "离线 offline · 自 " + when(b.online_since) + " since"));
      else parts.push(el("span", {class: "tag"}, "尚未连接 never connected"));
      if (b.is_stale) parts.push(el("span", {class: "tag warn"}, "数据可能已过期 stale"));
      if (b.heard_at) parts.push("最后收到数据 last heard " + ago(now - b.heard_at) + " · ");
      if (b.online_since && b.online) parts.push("在线自 online since " + when(b.online_since) + " · ");
      if (b.day) parts.push("营业日 " + b.day + " · ");
      if (b.version) parts.push("软件 " + b.version + " · 配置 " + (b.config_version || "—"));
    } else {
      parts.push(`${t.branches} 个网点 branches:`,
        el("span", {class: "tag ok"}, `在线 ${t.online}`),
        el("span", {class: "tag " + (t.offline ? "bad" : "")}, `离线 ${t.offline}`),
        el("span", {class: "tag"}, `未连接 ${t.never}`),
        el("span", {class: "tag " + (t.stale ? "warn" : "")}, `数据过期 ${t.stale}`));
      if (t.oldest_age_s !== null && t.oldest_age_s !== undefined) {
        parts.push("最旧数据 oldest figures " + ago(t.oldest_age_s + (now - view.now)));
      }
    }
    $("#state").replaceChildren(...parts);
  }
  function kpi(key, label, value, cls) {
    const changed = previous[key] !== undefined && previous[key] !== value;
    previous[key] = value;
    return el("div", {class: "kpi " + (cls || "") + (changed ? " changed" : ""), "data-kpi": key},
      el("div", {class: "k"}, label), el("div", {class: "v"}, value));
  }
  function longest(t) {
    const grown = t.longest_waiting_now_s ? t.longest_waiting_now_s + (serverNow() - view.now) : 0;
    return Math.max(t.max_called_wait_s || 0, grown);
  }
  function drawKpis(t) {
    const wait = longest(t);
    $("#kpis").replaceChildren(
      kpi("online", "网点在线 Online", `${t.online}/${t.branches}`, t.offline ? "bad" : ""),
      kpi("issued", "今日取号 Issued", num(t.issued)),
      kpi("waiting", "等待 Waiting", num(t.waiting), t.waiting > 30 ? "warn" : ""),
      kpi("serving", "办理中 Serving", num(t.serving)),
      kpi("served", "已办结 Served", num(t.served)),
      kpi("avg", "平均等待 Avg wait", dur(t.avg_wait_s)),
      kpi("longest", "最长等待 Longest", dur(wait), wait > 1800 ? "bad" : wait > 900 ? "warn" : ""),
      kpi("windows", "开放窗口 Windows", `${t.windows_open}/${t.windows_total}`),
      kpi("devices", "设备异常 Devices", num(t.devices_not_ok), t.devices_not_ok ? "bad" : ""),
      kpi("vips", "VIP在场 VIPs", num(t.vips)),
      kpi("paused", "暂停业务 Paused", num(t.paused_queues), t.paused_queues ? "warn" : ""));
  }
  function row(cells, attrs) {
    return el("tr", attrs || {}, ...cells.map((c) => c instanceof Node && c.tagName === "TD"
      ? c : el("td", {}, c)));
  }
  function n(v) { return el("td", {class: "n"}, num(v)); }
  function head(...names) {
    return el("thead", {}, el("tr", {}, ...names.map((h) => {
      const [text, cls] = Array.isArray(h) ? h : [h, null];
      return el("th", {class: cls}, text);
    })));
  }
  function drawPager() {
    const total = view.children_total || 0, first = view.offset || 0;
    const shown = (view.children || []).length;
    const pager = $("#children-pager");
    pager.classList.toggle("hidden", total <= shown && first === 0);
    $("#children-range").textContent = shown
      ? `第 ${num(first + 1)}–${num(first + shown)} 个,共 ${num(total)} 个 · ${first + 1}–${first + shown} of ${total}`
      : `共 ${num(total)} 个 · ${total} in all`;
    $("#children-prev").disabled = first <= 0;
    $("#children-next").disabled = first + shown >= total;
  }
  async function turn(to) {
    const res = await api("GET", `/api/live?org=${org}&offset=${to}&limit=${PAGE}`);
    if (!res.ok) { toast(errorText(res), true); return; }
    offset = to; view = res.data; receivedAt = Date.now(); draw();
    connect();
  }
  $("#children-prev").addEventListener("click", () => turn(Math.max(0, offset - PAGE)));
  $("#children-next").addEventListener("click", () => turn(offset + PAGE));
  function drawChildren() {
    const kids = view.children || [];
    $("#children-card").classList.toggle("hidden", !kids.length && !view.children_total);
    drawPager();
    if (!kids.length) return;
    const now = serverNow();
    const body = el("tbody", {}, ...kids.map((k) => row([
      el("td", {}, el("a", {href: "/live?org=" + k.code, title: k.code}, k.name || branchName(k.code))),
      el("td", {}, statusTag(k)),
      n(k.issued), n(k.waiting), n(k.served), el("td", {class: "n"}, dur(k.avg_wait_s)),
      el("td", {class: "n"}, dur(k.longest_wait_s)),
      el("td", {class: "n"}, `${k.windows_open}/${k.windows_total}`),
      el("td", {class: "n"}, num(k.devices_not_ok)),
      el("td", {}, k.kind === "branch" ? ago(k.heard_at ? now - k.heard_at : null)
        : (k.oldest_age_s !== null && k.oldest_age_s !== undefined ? ago(k.oldest_age_s) : "—")),
    ], {class: "click", "data-org": k.code, onclick: (ev) => { ev.preventDefault(); go(k.code); }})));
    $("#children").replaceChildren(head("机构 Node", "状态 State", ["取号 Issued", "n"],
      ["等待 Waiting", "n"], ["已办 Served", "n"], ["平均等待 Avg", "n"], ["最长 Longest", "n"],
      ["窗口 Windows", "n"], ["设备 Devices", "n"], "数据 Figures"), body);
  }
  function statusTag(k) {
    if (k.kind === "branch") {
      if (k.branch_online === false) return el("span", {class: "tag bad"}, "离线 自" + when(k.online_since));
      if (k.branch_online === null || k.branch_online === undefined) return el("span", {class: "tag"}, "未连接");
      if (k.is_stale) return el("span", {class: "tag warn"}, "数据过期");
      return el("span", {class: "tag ok"}, "在线");
    }
    const cls = k.offline ? "bad" : k.stale || k.online < k.branches ? "warn" : k.online ? "ok" : "";
    return el("span", {class: "tag " + cls}, `在线 ${k.online}/${k.branches}`);
  }
  function drawBranch() {
    const b = view.branch;
    $("#branch").classList.toggle("hidden", !b);
    if (!b) return;
    $("#queues").replaceChildren(head("业务 Business", ["等待 Waiting", "n"], ["已取号 Issued", "n"],
      "状态 State", boot.can_control ? "操作 Action" : ""), el("tbody", {}, ...(b.queues || []).map((q) => row([
      el("td", {}, q.name, el("small", {}, q.id)), n(q.waiting), n(q.issued),
      el("td", {}, q.paused ? el("span", {class: "tag warn"}, "暂停:" + (q.pause_reason || ""))
        : el("span", {class: "tag ok"}, "正常")),
      el("td", {}, boot.can_control && b.online ? (q.paused
        ? el("button", {type: "button", "data-resume": q.id, onclick: () => resume(b.code, q)}, "恢复 Resume")
        : el("button", {type: "button", class: "danger", "data-pause": q.id, onclick: () => pause(b.code, q)}, "暂停 Pause"))
        : ""),
    ], {"data-queue": q.id}))));
    $("#windows").replaceChildren(head("窗口 Window", "柜员 Teller", "状态 State", "当前号码 Now serving"),
      el("tbody", {}, ...(b.windows || []).map((w) => row([
        el("td", {}, w.name || w.number + "号窗口"), w.teller_name || w.teller || "—",
        el("td", {}, windowTag(w.state)),
        el("td", {class: "ticket"}, w.current || "—"),
      ], {"data-window": w.number}))));
    const vips = b.vip_list || [];
    $("#vips").replaceChildren(head("号码 No.", "客户 Customer", "星级 Stars", "业务 Business",
      "状态 State", ["已等 Waited", "n"]), el("tbody", {}, ...(vips.length ? vips.map((v) => row([
        v.number, v.name || "—", el("td", {class: "stars"}, "★".repeat(v.stars || 0)),
        v.queue_name, v.state === "called" ? `办理中 ${v.window}号窗口` : v.state === "held" ? "挂起" : "等待中",
        el("td", {class: "n"}, dur(v.waited_s))])) : [row([el("td", {colspan: 6, class: "muted"}, "无 None")])])));
    const link = b.link || {}, out = b.outbox || {};
    $("#devices").replaceChildren(head("设备 Device", "状态 State", "说明 Detail"), el("tbody", {},
      ...(b.devices || []).map((d) => row([el("td", {title: d.name, "data-device": d.name},
        PD.deviceName(d.name, b.windows)), el("td", {}, deviceTag(d.state)), d.detail || ""])),
      row(["上行链路 Uplink", el("td", {}, link.connected ? el("span", {class: "tag ok"}, "已连接")
        : el("span", {class: "tag bad"}, "未连接")),
      `断线 ${num(link.disconnects)} · 连接失败 ${num(link.connection_failures)} · 超时 ${num(link.timeouts)} · 待上传 ${num(out.backlog)}`])));
  }
  function windowTag(s) {
    const names = {serving: ["办理中", "ok"], open: ["空闲", "ok"], paused: ["暂停", "warn"], closed: ["未登录", ""]};
    const [t, c] = names[s] || [s, ""];
    return el("span", {class: "tag " + c}, t);
  }
  const DEVICE_STATES = {ok: "正常 OK", warning: "警告 Warning", fault: "故障 Fault", offline: "离线 Offline"};
  function deviceTag(s) {
    return el("span", {class: "tag " + (s === "ok" ? "ok" : s === "warning" ? "warn" : "bad")},
      DEVICE_STATES[s] || s);
  }
  function drawCharts() {
    if (!charts) return;
    const slot = charts.slot_s || 900;
    PDChart.line($("#chart-waiting"), charts.waiting, (i) => {
      const m = i * slot / 60;
      return m % 120 === 0 ? String(m / 60).padStart(2, "0") + ":00" : null;
    }, "今日等待人数");
    const words = charts.band_words || [];  // the reports' band names (central/figures.py)
    PDChart.bars($("#chart-hist"), charts.bands.map((b) => charts.wait_hist[b] || 0),
      charts.bands.map((b, i) => (words[i] || [b])[0]), (i) => i === 3, "等待时长分布");
    PDChart.bars($("#chart-hourly"), charts.hourly, charts.hourly.map((_, h) => h % 2 ? "" : String(h)),
      null, "每小时取号");
  }

  /* --- the link ------------------------------------------------------------------------ */
  function drawLink() {
    const l = $("#link"), age = (Date.now() - receivedAt) / 1000;
    const stale = view.totals && view.totals.stale;
    l.className = "link" + (connected ? (stale ? " stale" : "") : " down");
    l.textContent = connected
      ? `实时 Live · 更新于 ${when(view.now)}` + (stale ? ` · ${stale} 个网点数据过期` : "")
      : `连接中断,正在重连 Reconnecting · 数据截至 ${when(view.now)}(${ago(age)})`;
  }
  function connect() {
    if (es) es.close();
    es = new EventSource("/api/live/stream?org=" + encodeURIComponent(org) + page());
    es.addEventListener("open", () => { connected = true; lastMsg = Date.now(); drawLink(); });
    es.addEventListener("view", (e) => {
      lastMsg = Date.now(); connected = true;
      const v = JSON.parse(e.data);
      if (v.node.code !== org) return;
      view = v; receivedAt = Date.now(); draw();
    });
    es.addEventListener("charts", (e) => {
      lastMsg = Date.now();
      const c = JSON.parse(e.data);
      if (c.org === org) { charts = c; drawCharts(); }
    });
    es.addEventListener("ended", () => { es.close(); location.href = "/login"; });
    es.addEventListener("error", () => { connected = false; drawLink(); });
  }
  setInterval(() => {  // the watchdog, and the ages and longest wait ticking on
    if (Date.now() - lastMsg > 3 * pingMs) { connected = false; connect(); lastMsg = Date.now(); }
    drawLink(); drawState();
    const k = document.querySelector('[data-kpi="longest"] .v');
    if (k && view.totals) k.textContent = dur(longest(view.totals));
  }, 1000);

  /* --- drill-down without reloading ------------------------------------------------------ */
  async function go(code, noHistory) {
    if (code === org) return;
    const res = await api("GET", `/api/live?org=${code}&offset=0&limit=${PAGE}`);
    if (!res.ok) { toast(errorText(res), true); return; }
    org = code; offset = 0; view = res.data; receivedAt = Date.now(); previous = {};
    if (!noHistory) history.pushState({org: code}, "", "/live?org=" + code);
    draw();
    loadTree();
    const c = await api("GET", "/api/live/charts?org=" + code);
    if (c.ok) { charts = c.data; drawCharts(); }
    connect();
  }
  window.addEventListener("popstate", (ev) => {
    const code = (ev.state && ev.state.org) || new URLSearchParams(location.search).get("org");
    if (code) go(code, true);
  });

  /* --- live control (G3) ----------------------------------------------------------------- */
  let pausing = null;
  function pause(code, q) {
    pausing = {code, q};
    $("#pause-what").textContent = `${view.node.name} · ${q.name} (${q.id})`;
    $("#pause-reason").value = "";
    $("#pause-error").textContent = "";
    $("#pause-dialog").showModal();
  }
  $("#pause-cancel").addEventListener("click", () => $("#pause-dialog").close());
  $("#pause-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const reason = $("#pause-reason").value.trim();
    if (!reason || !pausing) return;
    const {code, q} = pausing;
    const res = await api("POST", `/api/branches/${code}/queues/${q.id}/pause`, {reason});
    if (!res.ok) { $("#pause-error").textContent = errorText(res); return; }
    $("#pause-dialog").close();
    confirmReply(code, res.data.id, `已暂停 ${q.name} Paused`);
  });
  async function resume(code, q) {
    const res = await api("POST", `/api/branches/${code}/queues/${q.id}/resume`);
    if (!res.ok) { toast(errorText(res), true); return; }
    confirmReply(code, res.data.id, `已恢复 ${q.name} Resumed`);
  }
  async function confirmReply(code, id, done) {
    toast("已发送,等待网点确认… Sent, waiting for the branch");
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const r = await api("GET", `/api/branches/${code}/replies/${id}`);
      if (r.ok) {
        if (r.data.ok) toast("网点已确认:" + done);
        else toast("网点拒绝 Refused: " + ((r.data.error || {}).message || ""), true);
        return;
      }
    }
    toast("网点未确认(可能离线) No answer from the branch (offline?)", true);
  }

  /* --- open alerts of the user's whole scope (not only the node shown) ---------------- */
  const ALERTS_SHOWN = 5, SOUND_KEY = "paidui.dashboard.sound";
  const seenAlerts = new Set();
  let alertsLoaded = false;
  $("#alerts-sound").checked = localStorage.getItem(SOUND_KEY) !== "off";
  $("#alerts-sound").addEventListener("change", (ev) =>
    localStorage.setItem(SOUND_KEY, ev.target.checked ? "on" : "off"));
  async function loadAlerts() {
    const scope = (boot.user && boot.user.scope) || org;
    const res = await api("GET", "/api/alerts?" + new URLSearchParams({org: scope, state: "unacked", limit: "50"}));
    if (!res.ok) return;  // no alerts service on this centre, or a glitch: try again later
    const rows = res.data.alerts || [];  // newest first
    const fresh = rows.filter((a) => !seenAlerts.has(a.id));
    rows.forEach((a) => seenAlerts.add(a.id));
    if (alertsLoaded && fresh.length && $("#alerts-sound").checked) PD.beep();
    alertsLoaded = true;
    drawAlerts(rows, new Set(fresh.map((a) => a.id)));
  }
  let alertNames = new Map();
  function branchName(code) {
    return alertNames.get(code) || code || "";
  }
  async function drawAlerts(rows, fresh) {
    alertNames = await PD.orgNameMap(rows.slice(0, ALERTS_SHOWN).map((a) => a.branch));
    $("#alerts-card").classList.toggle("hidden", !rows.length);
    $("#alerts-count").textContent = rows.length >= 50 ? "50+" : String(rows.length);
    $("#alerts-link").href = "/alerts?org=" + encodeURIComponent((boot.user && boot.user.scope) || org);
    const items = rows.slice(0, ALERTS_SHOWN).map((a) => el("li", {"data-alert": a.id,
      class: (a.level === "critical" ? "bad" : "warn") + (fresh.has(a.id) && alertsLoaded ? " new" : "")},
    el("span", {class: "when"}, when(a.raised_at)),
    el("span", {class: "tag " + (a.level === "critical" ? "bad" : "warn"), title: a.branch},
      branchName(a.branch)),
    el("a", {href: "/alerts?org=" + encodeURIComponent(a.branch || "")}, PD.plain(a.message, "zh"),
      el("small", {}, PD.plain(a.message_en, "en")))));
    if (rows.length > ALERTS_SHOWN) {
      items.push(el("li", {class: "more"}, el("a", {href: $("#alerts-link").href},
        `还有 ${rows.length - ALERTS_SHOWN} 条 ${rows.length - ALERTS_SHOWN} more…`)));
    }
    $("#alerts-list").replaceChildren(...items);
  }

  draw();
  drawCharts();
  loadTree();
  connect();
  loadAlerts();
  setInterval(loadAlerts, 5000);
  window.addEventListener("resize", drawCharts);
})();
