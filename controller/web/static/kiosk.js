/* The kiosk (取号机, SPEC A1 A4–A7 A9 A10): tap a business, get a number.
 * Chinese first; the English toggle lasts until the screen returns to the start. */
"use strict";

(() => {
  const {boot, api, $, el} = PD;
  const L = boot.layout;
  let lang = "zh", status = null, timer = null, current = null;
  let away = null;  // several kiosks: this one's printer is down (the refusal, naming another)

  const T = {
    ahead: (n) => [`您前面还有 ${n} 位客户在等待`, `${n} customer(s) ahead of you`],
    // the expected wait (ticket.wait_minutes: the public status's estimate, controller/views.py)
    wait: (m) => m > 0 ? [`预计等待约${m}分钟`, `Expected wait: about ${m} min`]
      : ["无需等待,请留意叫号", "No wait: listen for your number"],
    back: (s) => [`${s} 秒后返回首页`, `Back to start in ${s} s`],
    printFailed: ["取号成功。", "Your number is issued. "],  // + the printer's own words
    reprinted: ["已重新打印,请取走号票。", "Printed again. Please take your ticket."],
    card: ["刷卡取号", "Swipe a card"],
    cardPrompt: ["请刷卡或插入身份证,也可以输入卡号", "Swipe your card or ID card, or key in its number"],
    appointment: ["预约取号", "Appointment"],
    appointmentPrompt: ["请输入6位预约码", "Enter your 6-digit appointment code"],
    appointmentShort: ["预约码为6位数字,请重新输入。", "The appointment code has 6 digits."],
    appointmentMissing: ["预约兑号暂未开通,请选择业务取号或咨询大堂经理。",
      "Appointments cannot be redeemed here yet. Please choose a service or ask the lobby manager."],
    paused: ["暂停取号", "No tickets now"],
    pausedWhy: ["排队机已签出,暂停取号。", "The ticket machine is signed out."],
    closed: ["现在不在营业时间", "We are closed now"],
    hours: ["营业时间:", "Business hours: "],
    rest: ["今日休息", "Closed today"],
    away: ["本机暂停取号", "This machine is out of service"],
    take: ["请取走号票,留意叫号。", "Please take your ticket and listen for your number."],
    remember: ["请记住您的号码,留意叫号。", "Please remember your number and listen for the call."],
  };
  const t = (pair) => pair[lang === "en" ? 1 : 0];

  function applyLang() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    for (const node of document.querySelectorAll("[data-zh]")) {
      const text = lang === "en" ? (node.dataset.en || node.dataset.zh) : node.dataset.zh;
      if (node.textContent !== text) node.textContent = text;
    }
    banner();
    drawClosed();
  }
  const banner = PD.marquee($("#banner"), L.banner_speed);

  function show(id) {
    for (const s of document.querySelectorAll(".screen")) s.classList.toggle("hidden", s.id !== id);
    document.body.dataset.screen = id;
  }

  /** Back to the first screen after `seconds`, counting down in `node`. */
  function countdown(node, seconds) {
    clearInterval(timer);
    let left = Math.round(seconds);
    const tick = () => {
      node.textContent = t(T.back(left));
      if (left-- <= 0) home();
    };
    tick();
    timer = setInterval(tick, 1000);
  }
  function home() {
    clearInterval(timer);
    lang = "zh";
    current = null;
    show("start");
    applyLang();
  }
  // what the pre-filled forms' step (kiosk_forms.js) needs of this page
  PD.kiosk = {show, home, countdown, applyLang, t, ticket: () => current,
    lang: () => lang, back: () => { show("result"); applyLang(); countdown($("#r-countdown"), L.result_seconds); }};

  // --- taking a ticket ------------------------------------------------------------------
  async function take(body) {
    if (busy()) return;  // one touch is one ticket
    const res = await ask("/api/tickets", body);
    if (res.ok) showTicket(res.data);
    else refusal(res);
  }
  /** One request from this kiosk, with the busy overlay while it runs and the ticket
   * buttons disabled; a ticket request carries one Idempotency-Key (docs/api.md), sent
   * again if the answer was lost, so it never makes two tickets. */
  async function ask(path, body) {
    $("#busy").classList.remove("hidden");
    const buttons = document.querySelectorAll(".k-btn");
    for (const b of buttons) b.disabled = true;
    const sent = Object.assign({}, body, {kiosk: boot.kiosk});
    try {
      return path === "/api/tickets" ? await PD.press(path, sent) : await api("POST", path, sent);
    } finally {
      for (const b of buttons) b.disabled = false;
      $("#busy").classList.add("hidden");
    }
  }
  const busy = () => !$("#busy").classList.contains("hidden");

  function showTicket(ticket) {
    current = ticket;
    $("#r-number").textContent = ticket.number;
    $("#r-queue").dataset.zh = ticket.queue_name;
    $("#r-queue").dataset.en = ticket.queue_name_en || ticket.queue_name;
    const ahead = T.ahead(ticket.ahead);
    Object.assign($("#r-ahead").dataset, {zh: ahead[0], en: ahead[1]});
    const wait = ticket.wait_minutes == null ? ["", ""] : T.wait(ticket.wait_minutes);
    Object.assign($("#r-wait").dataset, {zh: wait[0], en: wait[1]});
    Object.assign($("#r-notice").dataset, {zh: ticket.notice || "", en: ticket.notice_en || ticket.notice || ""});
    drawPrint(ticket);
    document.dispatchEvent(new CustomEvent("kiosk:ticket", {detail: ticket}));
    show("result");
    applyLang();
    countdown($("#r-countdown"), L.result_seconds * (ticket.printed === false ? 3 : 1));
  }

  function drawPrint(ticket) {
    const failed = ticket.printed === false;
    $("#result").classList.toggle("print-failed", failed);
    $("#r-print").classList.toggle("hidden", !failed && !ticket.reprinted);
    $("#reprint").classList.toggle("hidden", !failed);
    const err = ticket.print_error || {};
    const why = failed ? [T.printFailed[0] + (err.message || ""), T.printFailed[1] + (err.message_en || err.message || "")]
      : T.reprinted;
    Object.assign($("#r-fail").dataset, {zh: why[0], en: why[1]});
    const hint = failed ? ["", ""] : ticket.printed ? T.take : T.remember;  // null: no printer
    Object.assign($("#r-take").dataset, {zh: hint[0], en: hint[1]});
  }

  async function reprint() {
    if (!current) return;
    const res = await api("POST", "/api/tickets/" + encodeURIComponent(current.number) + "/reprint",
      {token: current.reprint_token, kiosk: boot.kiosk});
    if (!res.ok) { refusal(res); return; }
    current = {...res.data, ahead: res.data.ahead, reprinted: res.data.printed !== false};
    drawPrint(current);
    applyLang();
    countdown($("#r-countdown"), L.result_seconds);
  }

  /** What the box's card reader or a ticket button did (pushed, docs/screens.md): shown
   * exactly as this page's own ticket or refusal, in the language shown now. */
  function onOutcome(o) {
    $("#busy").classList.add("hidden");
    if (o.ok) showTicket(o.ticket);
    else message(o.error.message, "refusal", o.error.message_en);
  }

  /** The box's refusal of a request, in both languages. */
  function refusal(res) {
    const e = (res.data && res.data.error) || {};
    message(e.message || PD.errorText(res, "zh"), "refusal", e.message_en);
  }

  /** A refusal (A7) or a hint, large, then back to the start by itself. */
  function message(text, kind, en) {
    const node = $("#m-text");
    node.dataset.zh = text;
    node.dataset.en = en || text;
    $("#message").className = "screen " + kind;
    show("message");
    applyLang();
    countdown($("#m-countdown"), L.refusal_seconds);
  }

  // --- menus and hints ------------------------------------------------------------------
  function button(target) {
    return boot.buttons.find((b) => b.target === target);
  }
  function openMenu(b) {
    const grid = $("#menu-grid");
    grid.replaceChildren(...b.children.map((c) => {
      const label = el("span", {class: "k-label", "data-zh": c.label, "data-en": c.label_en || c.label});
      const notice = c.notice ? el("small", {"data-zh": c.notice, "data-en": c.notice_en || c.notice}) : null;
      return el("button", {type: "button", class: "k-btn k-queue", "data-target": c.id, "data-kind": "queue",
        onclick: () => take({queue: c.id})}, label, notice);
    }));
    Object.assign($("#menu-title").dataset, {zh: b.label, en: b.label_en || b.label});
    show("menu");
    applyLang();
    drawQueues();
    countdown($("#menu-countdown"), 60);
  }

  // --- card and appointment entry (A5, A6) -------------------------------------------------
  let entry = null, digits = "";
  function openEntry(kind) {
    entry = kind;
    digits = "";
    const [title, prompt] = kind === "card" ? [T.card, T.cardPrompt] : [T.appointment, T.appointmentPrompt];
    Object.assign($("#e-title").dataset, {zh: title[0], en: title[1]});
    Object.assign($("#e-prompt").dataset, {zh: prompt[0], en: prompt[1]});
    drawEntry();
    show("entry");
    applyLang();
    countdown($("#e-countdown"), 60);
  }
  function drawEntry() {
    const shown = entry === "appointment" ? digits.padEnd(6, "·") : (digits || "");
    $("#e-display").textContent = shown;
  }
  function key(k) {
    if (k === "clear") digits = "";
    else if (k === "ok") { submitEntry(); return; }
    else if (digits.length < (entry === "appointment" ? 6 : 19)) digits += k;
    drawEntry();
    countdown($("#e-countdown"), 60);
  }
  async function submitEntry() {
    if (entry === "card") {
      if (digits) await byCard(numberRead(digits));
      return;
    }
    if (!/^\d{6}$/.test(digits)) { message(T.appointmentShort[0], "refusal", T.appointmentShort[1]); return; }
    await redeem({code: digits});
  }

  /** Redeem a booking by its code or its QR (docs/appointments.md). */
  async function redeem(body) {
    if (busy()) return;
    const res = await ask("/api/appointments/redeem", body);
    if (res.ok) showTicket(res.data);
    else if (noRedemption(res)) message(T.appointmentMissing[0], "refusal", T.appointmentMissing[1]);
    else refusal(res);
  }
  // A box without the appointments component answers 404 not_found (an older one 405).
  const noRedemption = (res) => res.status === 405 || (res.status === 404 && errorCode(res) === "not_found");
  const errorCode = (res) => res.data && res.data.error && res.data.error.code;
  // "This card holds no booking for today": then it is an ordinary card, as on the box's
  // own readers (controller/appointments/: unknown, or only another day's booking).
  const NO_BOOKING = ["appointment_unknown", "appointment_other_day"];

  /** A card or ID number: its booking of today if it holds one, else a ticket by card. */
  async function byCard(read) {
    if (busy()) return;
    const res = await ask("/api/appointments/redeem", read);
    if (res.ok) showTicket(res.data);
    else if (noRedemption(res) || NO_BOOKING.includes(errorCode(res))) await take({card: read.card || read.id_number});
    else refusal(res);
  }

  // --- scanners and keyboard-style card readers (A5, A6) -----------------------------------
  /* A QR scanner or a keyboard-wedge card reader "types" what it read into whatever has the
   * focus, a few ms a character, then Enter. A burst is a scan when it has at least
   * SCAN.min characters, at most SCAN.average ms a key on average, and ends in Enter: a
   * person types 100-300 ms a key, so never makes one. A pause over SCAN.pause ms starts a
   * new burst (stray keys before a scan do not spoil it). The average, not each gap, is
   * held to the limit: the event times are the device's, but a busy test machine feeding
   * keys through the browser's debugging protocol is uneven (up to 40 ms a key seen). */
  const SCAN = {min: 8, pause: 300, average: 50};
  let burst = "", burstFrom = 0, burstAt = 0;
  /** Feed one keydown; the burst's text when this Enter ends a scan, else null. */
  function scanOf(ev) {
    const at = ev.timeStamp;
    if (!burst || at - burstAt > SCAN.pause) { burst = ""; burstFrom = at; }
    burstAt = at;
    if (ev.key !== "Enter") {
      if (ev.key.length === 1) burst += ev.key;
      return null;
    }
    const text = burst;
    burst = "";
    return text.length >= SCAN.min && (at - burstFrom) / text.length <= SCAN.average ? text : null;
  }
  const ID_NUMBER = /^\d{6}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dX]$/;
  /** A card or ID number as typed: which field of the redeem request it goes in. */
  function numberRead(text) {
    const s = text.trim().toUpperCase();
    return ID_NUMBER.test(s) ? {id_number: s} : {card: s};
  }
  /** A scan: a card reader's number (digits, an ID's trailing X, a track-2 line
   * ";PAN=…?" or an IC card's "PAN D…") or else a QR, whatever it holds. */
  function scanned(text) {
    const s = text.trim().toUpperCase();
    const pan = /;(\d{12,19})=/.exec(s) || /^(\d{12,19})D\d/.exec(s);
    if (pan) return byCard({card: pan[1]});
    if (/^\d{12,19}$/.test(s) || ID_NUMBER.test(s)) return byCard(numberRead(s));
    return redeem({qr: text.trim()});
  }

  document.addEventListener("keydown", (ev) => {
    const scan = scanOf(ev);
    if (scan !== null) {
      ev.preventDefault();  // its Enter must not press the button that has the focus
      if (!busy() && !document.body.classList.contains("closed")) scanned(scan);
      return;
    }
    if (document.body.dataset.screen !== "entry") return;
    if (/^[0-9]$/.test(ev.key)) key(ev.key);
    else if (ev.key === "Enter") { ev.preventDefault(); key("ok"); }
    else if (ev.key === "Backspace") { digits = digits.slice(0, -1); drawEntry(); }
    else if (ev.key === "X" || ev.key === "x") { if (entry === "card") { digits += "X"; drawEntry(); } }
  });

  // --- the live state: open or closed, paused businesses ----------------------------------
  function drawQueues() {
    if (!status) return;
    const byId = Object.fromEntries(status.queues.map((q) => [q.id, q]));
    for (const b of document.querySelectorAll(".k-btn[data-kind=queue]")) {
      const q = byId[b.dataset.target];
      if (!q) continue;
      b.classList.toggle("paused", q.paused);
      b.classList.toggle("not-now", !q.offered_now);
    }
  }
  function drawClosed() {
    if (!status) return;
    const anyOpen = status.queues.some((q) => q.offered_now);
    const overlay = $("#closed");
    if (!status.kiosk_open) {
      $("#c-title").textContent = t(T.paused);
      $("#c-hours").textContent = t(T.pausedWhy);
    } else if (!anyOpen) {
      $("#c-title").textContent = t(T.closed);
      const hours = status.hours_today || [];
      $("#c-hours").textContent = hours.length ? t(T.hours) + hours.join(" ") : t(T.rest);
    }
    if (status.kiosk_open && anyOpen && away) {
      $("#c-title").textContent = t(T.away);
      $("#c-hours").textContent = lang === "en" ? away.message_en : away.message;
    }
    const closed = !status.kiosk_open || !anyOpen || away !== null;
    overlay.classList.toggle("hidden", !closed);
    document.body.classList.toggle("closed", closed);
  }
  function onStatus(s) {
    status = s;
    drawQueues();
    drawClosed();
  }
  /** With several kiosks ([[kiosks]]): whether this one issues now (its printer), from
   * /api/health, asked again whenever a printer's health changes. */
  async function inService() {
    const res = await api("GET", "/api/health");
    const mine = res.ok ? (res.data.kiosks || []).find((k) => k.id === boot.kiosk) : null;
    away = mine && !mine.in_service ? mine.refusal : null;
    drawClosed();
  }
  function onHealth(d) {
    if (boot.several && d.name.startsWith("printer")) inService();
  }

  // --- media area -----------------------------------------------------------------------
  function media() {
    const box = $("#media");
    const list = boot.media;
    if (!list.length || L.media_position === "none") { box.remove(); return; }
    let i = 0;
    const next = () => {
      const item = list[i++ % list.length];
      let node;
      if (item.kind === "video") {
        node = el("video", {src: item.url, autoplay: true, muted: true, playsinline: true});
        node.muted = true;
        node.addEventListener("ended", next);
        node.addEventListener("error", () => setTimeout(next, 1000));
      } else {
        node = el("img", {src: item.url, alt: ""});
        setTimeout(next, L.media_seconds * 1000);
      }
      box.replaceChildren(node);
    };
    next();
  }

  // --- wiring -----------------------------------------------------------------------------
  for (const b of document.querySelectorAll("#grid .k-btn")) {
    b.addEventListener("click", () => {
      const conf = button(b.dataset.target);
      if (conf.kind === "queue") take({queue: conf.target});
      else if (conf.kind === "menu") openMenu(conf);
      else message(conf.hint, "hint", conf.hint_en);
    });
  }
  for (const b of document.querySelectorAll(".k-back")) b.addEventListener("click", home);
  for (const b of document.querySelectorAll("#keypad button")) {
    b.addEventListener("click", () => key(b.dataset.key || b.textContent.trim()));
  }
  $("#reprint").addEventListener("click", reprint);
  $("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; applyLang(); });
  const cardBtn = $("#card-entry"), apptBtn = $("#appointment-entry");
  if (L.card_entry) cardBtn.addEventListener("click", () => openEntry("card")); else cardBtn.remove();
  if (L.appointment_entry) apptBtn.addEventListener("click", () => openEntry("appointment")); else apptBtn.remove();
  if (!$("#banner").textContent.trim()) document.querySelector(".banner").classList.add("empty");

  PD.clock($("#clock"));
  media();
  home();
  PD.live("kiosk", {status: onStatus, outcome: onOutcome, health: onHealth});
  if (boot.several) inService();
})();
