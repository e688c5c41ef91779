/* The soft caller (软呼叫器, SPEC B6): every keypad function for a teller's PC, in
 * standard, compact or hidden mode, with configurable hotkeys (config [web.caller]). */
"use strict";

(() => {
  const {boot, api, $, el} = PD;
  const C = boot.caller;
  const MODES = ["standard", "compact", "hidden"];
  let win = null, panel = null, mode = localStorage.getItem("caller.mode") || C.mode;
  let refreshTimer = null;
  let busy = false;  // a press is in flight (see act)

  // --- session --------------------------------------------------------------------------
  async function start() {
    if (!boot.signed_in) { showLogin(); return; }  // no session to ask for: no 401 logged
    const res = await api("GET", "/api/auth/session?kind=teller");
    if (res.ok) enter(res.data.window, res.data.csrf_token, res.data.name);
    else showLogin();
  }
  function showLogin(msg) {
    win = null;
    document.body.className = "staff caller mode-standard";
    $("#login").classList.remove("hidden");
    $("#panel").classList.add("hidden");
    for (const id of ["#modes", "#logout"]) $(id).classList.add("hidden");
    $("#who").textContent = "";
    $("#l-error").textContent = msg || "";
  }
  function enter(window, csrf, name) {
    win = window;
    PD.setCsrf(csrf);
    $("#login").classList.add("hidden");
    $("#panel").classList.remove("hidden");
    for (const id of ["#modes", "#logout"]) $(id).classList.remove("hidden");
    $("#who").dataset.name = name || "";
    setMode(mode);
    refresh();
  }
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const n = $("#l-window").value;
    const res = await api("POST", `/api/windows/${n}/login`,
      {teller: $("#l-teller").value.trim(), password: $("#l-password").value});
    $("#l-password").value = "";
    if (!res.ok) { $("#l-error").textContent = PD.errorText(res); return; }
    const teller = res.data.teller;
    enter(Number(n), res.data.csrf_token, teller);
  });
  $("#logout").addEventListener("click", async () => {
    const res = await api("POST", `/api/windows/${win}/logout`);
    if (res.ok || res.status === 401) showLogin("已登出 Logged out");
    else note(PD.errorText(res), true);
  });

  // --- the panel --------------------------------------------------------------------------
  async function refresh() {
    if (win === null) return;
    const res = await api("GET", `/api/windows/${win}/panel`);
    if (res.status === 401) { showLogin("登录已失效,请重新登录。"); return; }
    if (res.ok) { panel = res.data; draw(); }
  }
  function soon() {  // many events arrive together: one refresh for them
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 80);
  }
  const stars = (n) => n ? "★".repeat(Math.min(n, 7)) : "";

  function draw() {
    const p = panel, cur = p.current;
    $("#who").textContent = `${p.name || p.window + "号窗口"} · ${p.teller_name || p.teller || ""}` +
      (p.paused ? " · 暂停服务" : "");
    $("#c-num").textContent = cur ? cur.number : "—";
    $("#current").classList.toggle("vip", !!(cur && (cur.stars || cur.customer_type === "vip")));
    $("#c-meta").replaceChildren(...(cur ? [
      el("div", {text: `${cur.queue_name}  ${cur.vip_name || ""}`}, el("span", {class: "stars", text: " " + stars(cur.stars)})),
      el("div", {text: `等候 ${PD.minutes(cur.waited_s)} · 办理 `}, el("span", {id: "c-serving", "data-since": cur.called_at})),
      el("div", {text: `呼叫 ${cur.calls} 次` + (cur.recalls ? `,重呼 ${cur.recalls} 次` : "") + (cur.appointment ? " · 预约" : "")}),
    ] : [el("div", {text: p.paused ? "暂停服务中" : "请按“叫号”呼叫下一位客户"})]));
    $("#c-waiting").textContent = p.waiting;
    $("#c-next").textContent = p.next ? `下一位 Next: ${p.next}` : "";
    $("#c-queues").replaceChildren(...p.queues.map((q) => el("tr", {},
      el("td", {text: q.name}), el("td", {text: String(q.priority)}), el("td", {class: "n", text: String(q.waiting)}))));
    const numbers = p.waiting_numbers || [];
    $("#c-numbers").textContent = numbers.length ? `等待号码 Waiting: ${numbers.join(" ")}` +
      (p.waiting > numbers.length ? ` … (${p.waiting})` : "") : "";
    drawToday(p.today);
    // the pre-filled form of the customer being served (caller_forms.js)
    document.dispatchEvent(new CustomEvent("caller:panel", {detail: {window: win, current: cur}}));
    const held = p.held.map((t) => t.number);
    $("#c-held").textContent = held.length ? `挂起 Held: ${held.join(" ")}` : "";
    $("#pause").firstChild.textContent = p.paused ? "恢复" : "暂停";
    $("#k-num").textContent = cur ? cur.number : "—";
    $("#k-wait").textContent = `等待 ${p.waiting}`;
    $("#hiddenbar").textContent = `软呼叫器已隐藏 · ${p.window}号窗口 当前 ${cur ? cur.number : "—"} · 等待 ${p.waiting} · ${C.hotkeys.mode || ""} 显示`;
    for (const b of document.querySelectorAll("[data-act]")) {
      const needsCurrent = ["recall", "finish", "no_show", "hold"].includes(b.dataset.act);
      b.disabled = (busy && b.dataset.act !== "mode") || (needsCurrent && !cur) ||
        (p.paused && ["call_next", "call_back"].includes(b.dataset.act));
    }
    tick();
  }
  /** The teller's own figures of the day (served, average handling time, ratings). */
  function drawToday(d) {
    $("#t-served").textContent = d ? String(d.served) : "0";
    $("#t-handle").textContent = d && d.avg_handle_s != null ? PD.minutes(d.avg_handle_s) : "—";
    $("#t-ratings").textContent = d && d.ratings ? `${d.ratings} 次 · 平均 ${d.avg_rating} 分` : "—";
  }
  function tick() {
    const node = $("#c-serving");
    if (node && node.dataset.since) node.textContent = PD.minutes(PD.since(node.dataset.since));
  }
  setInterval(tick, 1000);

  function note(text, bad) {
    const n = $("#note");
    n.textContent = text;
    n.classList.toggle("bad", !!bad);
  }

  // --- actions ------------------------------------------------------------------------------
  const PATH = {call_next: "call-next", recall: "recall", no_show: "no-show", finish: "finish",
    hold: "hold", transfer: "transfer", call_back: "call-back"};
  const WORDS = {call_next: "叫号", recall: "重呼", no_show: "弃号", finish: "完成", hold: "挂起",
    transfer: "转移", call_back: "回呼", pause: "暂停", resume: "恢复", insert_front: "插前"};

  async function post(action, path, body) {
    const res = await PD.press(path, body);  // one key per press: a repeat acts once
    if (res.status === 401) { showLogin("登录已失效,请重新登录。"); return res; }
    if (res.ok) {
      const cur = res.data.current;
      note(`${WORDS[action]}成功` + (cur ? `:当前 ${cur.number}` : (res.data.number ? `:${res.data.number}` : "")));
    } else note(PD.errorText(res), true);
    await refresh();
    return res;
  }
  /* One press is one request: while one is in flight every action button is disabled
   * and presses (clicks, hotkeys) are ignored, so a double-click calls one customer. */
  function setBusy(on) {
    busy = on;
    document.body.classList.toggle("busy", on);
    for (const b of document.querySelectorAll("[data-act]")) {
      if (b.dataset.act !== "mode") b.disabled = true;
    }
    if (!on && panel) draw();  // the buttons as the window's state allows them
  }
  async function act(action) {
    if (win === null || busy) return;
    if (action === "mode") { setMode(MODES[(MODES.indexOf(mode) + 1) % MODES.length]); return; }
    setBusy(true);
    try { await perform(action); } finally { setBusy(false); }
  }
  async function perform(action) {
    if (action === "pause") {
      const what = panel && panel.paused ? "resume" : "pause";
      await post(what, `/api/windows/${win}/${what}`);
    } else if (action === "finish") {
      await post(action, `/api/windows/${win}/finish`, {ask_rating: C.ask_rating});
    } else if (action === "transfer") {
      const body = await transferDialog();
      if (body) await post(action, `/api/windows/${win}/transfer`, body);
    } else if (action === "no_show") {
      const number = panel && panel.current ? panel.current.number : "";
      if (await confirmDialog("弃号 Discard the number", `确认 ${number} 号客户未到,弃号?` +
        ` Discard ${number}: the customer did not come?`, "弃号 Discard")) {
        await post(action, `/api/windows/${win}/no-show`);
      }
    } else if (action === "call_back") {
      const held = panel ? [...panel.held, ...panel.no_shows].map((t) => t.number) : [];
      const number = await numberDialog("回呼 Call back (空=最近挂起)", held, true);
      if (number !== null) await post(action, `/api/windows/${win}/call-back`, number ? {number} : {});
    } else if (action === "insert_front") {
      const number = await numberDialog("插前 Insert at front", [], false);
      if (number) await post(action, `/api/tickets/${encodeURIComponent(number)}/insert-front`);
    } else {
      await post(action, `/api/windows/${win}/${PATH[action]}`);
    }
  }
  for (const b of document.querySelectorAll("[data-act]")) {
    b.addEventListener("click", () => act(b.dataset.act));
  }

  function dialog(node) {
    return new Promise((resolve) => {
      node.addEventListener("close", () => resolve(node.returnValue === "ok"), {once: true});
      node.showModal();
    });
  }
  async function transferDialog() {
    const d = $("#d-transfer"), f = d.querySelector("form");
    const w = f.elements.to_window, q = f.elements.to_queue;
    w.replaceChildren(el("option", {value: "", text: "—"}),
      ...panel.windows.filter((x) => x.number !== win).map((x) => el("option", {value: x.number, text: x.name || x.number})));
    q.replaceChildren(el("option", {value: "", text: "—"}),
      ...panel.all_queues.map((x) => el("option", {value: x.id, text: x.name})));
    f.elements.number.value = "";
    if (!await dialog(d)) return null;
    const body = {};
    if (f.elements.number.value.trim()) body.number = f.elements.number.value.trim().toUpperCase();
    if (w.value) body.to_window = Number(w.value); else if (q.value) body.to_queue = q.value;
    else { note("请选择转移到的窗口或业务。", true); return null; }
    return body;
  }
  /** A destructive action asks first (issue 17): true when the teller confirms. */
  async function confirmDialog(title, text, yes) {
    const d = $("#d-confirm");
    $("#d-confirm-title").textContent = title;
    $("#d-confirm-text").textContent = text;
    $("#d-confirm-ok").textContent = yes;
    return dialog(d);
  }
  async function numberDialog(title, options, emptyOk) {
    const d = $("#d-number"), f = d.querySelector("form");
    $("#d-number-title").textContent = title;
    $("#d-number-list").replaceChildren(...options.map((n) => el("option", {value: n})));
    f.elements.number.value = options[0] || "";
    if (!await dialog(d)) return null;
    const n = f.elements.number.value.trim().toUpperCase();
    return n || (emptyOk ? "" : null);
  }

  // --- modes and hotkeys ----------------------------------------------------------------------
  function setMode(m) {
    mode = MODES.includes(m) ? m : "standard";
    localStorage.setItem("caller.mode", mode);
    document.body.className = `staff caller mode-${mode}`;
    for (const b of document.querySelectorAll("#modes button")) {
      b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
    }
  }
  for (const b of document.querySelectorAll("#modes button")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  function keyName(ev) {
    const parts = [];
    if (ev.ctrlKey) parts.push("Ctrl");
    if (ev.altKey) parts.push("Alt");
    if (ev.shiftKey) parts.push("Shift");
    const k = ev.key === " " ? "Space" : ev.key.length === 1 ? ev.key.toUpperCase() : ev.key;
    parts.push(k);
    return parts.join("+");
  }
  const byKey = Object.fromEntries(Object.entries(C.hotkeys).map(([a, k]) => [k, a]));
  for (const b of document.querySelectorAll("#actions [data-act]")) {
    const k = C.hotkeys[b.dataset.act];
    if (k) b.querySelector("kbd").textContent = k;
  }
  document.addEventListener("keydown", (ev) => {
    const action = byKey[keyName(ev)];
    if (!action || win === null || document.querySelector("dialog[open]")) return;
    ev.preventDefault();
    act(action);
  });

  PD.live("caller", {
    status: () => soon(),
    event: (e) => { if (win !== null && (e.window === win || e.type.startsWith("ticket_"))) soon(); },
  });
  start();
})();
