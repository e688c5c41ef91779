/* The lobby manager's page (大堂经理, SPEC D3 A8 C2 G3): waiting per business and window,
 * VIP customers, the threshold and bad-rating pop-ups with sound, pausing a business,
 * device health. */
"use strict";

(() => {
  const {boot, api, $, el} = PD;
  let on = false, overview = null, devices = {}, timer = null;
  const popups = [];

  async function start() {
    if (!boot.signed_in) { showLogin(); return; }  // no session to ask for: no 401 logged
    const res = await api("GET", "/api/auth/session?kind=lobby");
    if (res.ok) enter(res.data.csrf_token, res.data.name);
    else showLogin();
  }
  function showLogin(msg) {
    on = false;
    $("#login").classList.remove("hidden");
    $("#dash").classList.add("hidden");
    $("#logout").classList.add("hidden");
    $("#who").textContent = "";
    $("#l-error").textContent = msg || "";
  }
  function enter(csrf, name) {
    on = true;
    PD.setCsrf(csrf);
    $("#login").classList.add("hidden");
    $("#dash").classList.remove("hidden");
    $("#logout").classList.remove("hidden");
    $("#who").textContent = name || "";
    refresh();
    health();
    history();
  }
  /** On login: the last hour's alerts in the log, and the queue pop-up at once when the
   * branch is over its threshold already (a new crossing is not needed to be told). */
  async function history() {
    const res = await api("GET", "/api/lobby/alerts");
    if (!res.ok) return;
    $("#log").replaceChildren(...res.data.history.map((h) =>
      el("li", {"data-kind": h.kind, title: h.message_en || "", text: `${h.time} ${h.message}`})));
    if (res.data.over_threshold) {
      popup("排队提醒 Queue alert", `请注意,目前网点排队等待人数已经超过${res.data.threshold}个。`, false);
    }
  }
  $("#login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const res = await api("POST", "/api/auth/lobby",
      {user: $("#l-user").value.trim(), password: $("#l-password").value});
    $("#l-password").value = "";
    if (!res.ok) { $("#l-error").textContent = PD.errorText(res); return; }
    enter(res.data.csrf_token, res.data.name);
  });
  $("#logout").addEventListener("click", async () => {
    await api("POST", "/api/auth/logout?kind=lobby");
    showLogin("已登出 Logged out");
  });

  async function refresh() {
    if (!on) return;
    const res = await api("GET", "/api/lobby/overview");
    if (res.status === 401 || res.status === 403) { showLogin("登录已失效,请重新登录。"); return; }
    if (res.ok) { overview = res.data; draw(); }
  }
  function soon() { clearTimeout(timer); timer = setTimeout(refresh, 100); }
  async function health() {
    const res = await api("GET", "/api/health");
    if (res.ok) { for (const d of res.data.devices) devices[d.name] = d; drawDevices(); }
  }
  setInterval(() => { if (on) health(); }, 30000);

  const STATE = {closed: "未登录", paused: "暂停", serving: "服务中", open: "空闲",
    waiting: "等待中", called: "服务中", held: "挂起"};
  function draw() {
    const o = overview;
    const total = $("#total");
    total.textContent = o.waiting_total;
    total.classList.toggle("over", o.over_threshold);
    $("#threshold").textContent = o.threshold ? `提醒阈值 Alert above: ${o.threshold}` : "";
    $("#kiosk").textContent = o.kiosk_open ? "取号中 Open" : "已签出 Signed out";
    $("#kiosk").className = "tag " + (o.kiosk_open ? "ok" : "paused");
    $("#kiosk-toggle").textContent = o.kiosk_open ? "签出 Sign out" : "签入 Sign in";
    const typing = document.activeElement && document.activeElement.dataset.reason;
    $("#queues").replaceChildren(...o.queues.map(queueRow));
    if (typing) { const again = document.querySelector(`input[data-reason="${typing}"]`); if (again) again.focus(); }
    $("#windows").replaceChildren(...o.windows.map((w) => el("tr", {},
      el("td", {text: w.name || String(w.number)}), el("td", {text: w.teller_name || "—"}),
      el("td", {}, el("span", {class: "tag " + w.state, text: STATE[w.state] || w.state})),
      el("td", {text: w.current || "—"}), el("td", {class: "n", text: String(w.waiting)}),
      el("td", {class: "n", text: String(w.served)}))));
    $("#vips").replaceChildren(...(o.vips.length ? o.vips.map((v) => el("tr", {"data-number": v.number},
      el("td", {text: v.number}), el("td", {text: v.vip_name || "VIP"}),
      el("td", {class: "stars", text: "★".repeat(v.stars || 0)}), el("td", {text: v.queue_name}),
      el("td", {class: "manager", text: v.manager || "—"}),
      el("td", {text: (STATE[v.state] || v.state) + (v.window ? ` · ${v.window}号窗口` : "")}),
      el("td", {class: "n", text: PD.minutes(v.waited_s)}))) : [el("tr", {}, el("td", {colspan: 7, text: "暂无 None"}))]));
    vipArrivals(o.vips);
  }
  // A VIP with an account manager who takes a ticket pops up once (SPEC I1); the ones already
  // waiting when the page opens are only listed.
  let seenVips = null;
  function vipArrivals(vips) {
    const fresh = seenVips === null ? [] : vips.filter((v) => v.manager && !seenVips.has(v.number));
    seenVips = new Set(vips.map((v) => v.number));
    for (const v of fresh) {
      popup("VIP客户到达 VIP arrival",
        `${v.vip_name || "VIP客户"} 已取号 ${v.number}(${v.queue_name}),请通知客户经理${v.manager}。`);
    }
  }
  // A pause reason being typed survives the table's redraws (every change in the hall).
  const reasons = {};
  function queueRow(q) {
    const reason = el("input", {placeholder: "原因 reason", maxlength: 60, "aria-label": "reason " + q.id,
      "data-reason": q.id, value: reasons[q.id] || ""});
    reason.addEventListener("input", () => { reasons[q.id] = reason.value; });
    const form = el("div", {class: "pause-form"});
    if (q.paused) {
      form.append(el("button", {type: "button", class: "resume", text: "恢复 Resume",
        onclick: () => command(`/api/queues/${q.id}/resume`)}));
    } else {
      form.append(reason, el("button", {type: "button", text: "暂停 Pause", onclick: () => {
        if (!reason.value.trim()) { reason.focus(); return; }
        delete reasons[q.id];
        command(`/api/queues/${q.id}/pause`, {reason: reason.value.trim()});
      }}));
    }
    return el("tr", {"data-queue": q.id},
      el("td", {text: q.name}), el("td", {class: "n", text: String(q.waiting)}),
      el("td", {class: "n", text: PD.minutes(q.longest_wait_s)}),
      el("td", {}, el("span", {class: "tag " + (q.paused ? "paused" : "ok"),
        text: q.paused ? `暂停:${q.pause_reason || ""}` : "正常"})),
      el("td", {}, form));
  }
  async function command(path, body) {
    const res = await api("POST", path, body);
    if (res.status === 401) { showLogin("登录已失效,请重新登录。"); return; }
    if (!res.ok) log(PD.errorText(res));
    refresh();
  }
  $("#kiosk-toggle").addEventListener("click", () =>
    command(overview && overview.kiosk_open ? "/api/kiosk/sign-out" : "/api/kiosk/sign-in"));

  // Devices needing attention are rows with their detail; the ones that are fine are small
  // tags below (a branch has ~30 devices: a row each would push everything else away).
  function drawDevices() {
    const list = Object.values(devices).sort((a, b) => a.name.localeCompare(b.name));
    const bad = list.filter((d) => d.state !== "ok"), fine = list.filter((d) => d.state === "ok");
    $("#dev-summary").textContent = !list.length ? "暂无设备报告 No device reports"
      : `${fine.length} 正常 OK` + (bad.length ? ` · ${bad.length} 需处理 need attention` : "");
    $("#dev-summary").className = "tag " + (bad.length ? "fault" : list.length ? "ok" : "");
    $("#devices").replaceChildren(...bad.map((d) => el("tr", {"data-device": d.name},
      el("td", {text: d.name}), el("td", {}, el("span", {class: "tag " + d.state, text: d.state})),
      el("td", {text: d.detail || ""}))));
    $("#devices-ok").replaceChildren(...fine.map((d) => el("span", {
      class: "tag ok", "data-device": d.name, title: d.detail || "", text: d.name})));
  }

  // --- pop-ups (A8, C2) ---------------------------------------------------------------------
  function log(text) {
    $("#log").prepend(el("li", {text: `${PD.hhmm(PD.now())} ${text}`}));
  }
  function popup(title, text, logged = true) {
    if (logged) log(text);
    popups.push([title, text]);
    if (popups.length === 1) showPopup();
  }
  function showPopup() {
    const [title, text] = popups[0];
    $("#p-title").textContent = title;
    $("#p-text").textContent = text;
    $("#popup").classList.remove("hidden");
    PD.beep(3);
  }
  $("#p-ok").addEventListener("click", () => {
    popups.shift();
    if (popups.length) showPopup(); else $("#popup").classList.add("hidden");
  });
  function levelName(score) {
    const l = boot.rating_levels.find((r) => r.score === score);
    return l ? l.name : String(score);
  }
  function onEvent(e) {
    if (!on) return;
    if (e.type === "lobby_alert") {
      popup("排队提醒 Queue alert", `请注意,目前网点排队等待人数已经超过${e.threshold}个。`);
    } else if (e.type === "ticket_rated" && e.bad) {
      popup("差评提醒 Bad rating",
        `${e.window}号窗口 柜员${boot.tellers[e.teller] || e.teller || ""} 办理的 ${e.number} 号客户评价为“${levelName(e.score)}”,请及时处理。`);
    }
  }

  PD.live("lobby", {
    status: (s) => {
      for (const d of s.devices || []) devices[d.name] = d;
      if (on) { soon(); drawDevices(); }
    },
    event: onEvent,
    health: (d) => { devices[d.name] = d; if (on) drawDevices(); },
    notice: (n) => {  // a cleared alert is noted in the log, quietly: no pop-up, no sound
      if (!on) return;
      if (n.level === "clear") log(n.message); else popup(n.title || "中心提醒 Centre alert", n.message);
    },
  });
  start();
})();
