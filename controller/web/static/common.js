/* Shared by every screen: the live link to the box, API calls, the box's clock, a beep.
 * Plain ES2017, no libraries: the pages must run on a Pi's Chromium with no network. */
"use strict";

const PD = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  let offset = 0;        // box clock minus browser clock, ms
  let synced = false;
  const clocks = [];
  let csrf = "";

  /** Box time now (the box's clock, which may be a demo clock), as a Date. */
  function now() { return new Date(Date.now() + offset); }
  function syncClock(iso) {
    if (!iso) return;
    offset = Date.parse(iso) - Date.now();
    if (!synced) { synced = true; clocks.forEach((tick) => tick()); }
  }
  function two(n) { return String(n).padStart(2, "0"); }
  // Every time on the screens is the branch's wall time (boot.zone, its [branch] timezone),
  // whatever zone the PC or kiosk showing the page is set to.
  const zoned = (() => {
    const opts = {hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"};
    try { return new Intl.DateTimeFormat("en-GB", Object.assign({timeZone: boot.zone}, opts)); }
    catch (e) { return new Intl.DateTimeFormat("en-GB", opts); }  // a zone this browser lacks
  })();
  /** A Date, ISO string or epoch ms as the branch's wall clock: {year, month, day, hour,
   * minute, second}, each a zero-padded string. */
  function wall(t) {
    const d = t instanceof Date ? t : new Date(typeof t === "string" ? Date.parse(t) : t);
    const p = {};
    for (const {type, value} of zoned.formatToParts(d)) p[type] = value;
    return p;
  }
  /** "HH:MM" (and "HH:MM:SS") at the branch. */
  function hhmm(t) { const p = wall(t); return p.hour + ":" + p.minute; }
  function hhmmss(t) { const p = wall(t); return p.hour + ":" + p.minute + ":" + p.second; }
  /** "YYYY-MM-DD", the branch's date of t. */
  function day(t) { const p = wall(t); return p.year + "-" + p.month + "-" + p.day; }
  function minutes(s) {
    s = Math.max(0, Math.round(s));
    return Math.floor(s / 60) + ":" + two(s % 60);
  }
  function since(iso) { return iso ? (now() - Date.parse(iso)) / 1000 : 0; }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);

  /** Call the box's API. Resolves to {ok, status, data}; never rejects on HTTP errors.
   * extra: more headers (e.g. an Idempotency-Key, docs/api.md). */
  async function api(method, path, body, extra) {
    const headers = Object.assign({"Accept": "application/json"}, extra || {});
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
    try {
      const r = await fetch(path, {method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store"});
      let data = null;
      try { data = await r.json(); } catch (e) { data = null; }
      return {ok: r.ok, status: r.status, data: data || {}};
    } catch (e) {
      return {ok: false, status: 0, data: {error: {code: "offline",
        message: "无法连接排队主机,请稍后再试。", message_en: "Cannot reach the queue box."}}};
    }
  }
  function setCsrf(token) { csrf = token || ""; }
  /** A fresh Idempotency-Key for one press (crypto.randomUUID needs HTTPS; this does not). */
  function pressKey() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }
  /** POST once per press: the same key again if the answer was lost (status 0). */
  async function press(path, body) {
    const key = {"Idempotency-Key": pressKey()};
    const res = await api("POST", path, body, key);
    return res.status === 0 ? api("POST", path, body, key) : res;
  }
  function errorText(res, lang) {
    const e = (res.data && res.data.error) || {};
    return (lang === "en" ? e.message_en : e.message) || e.message || ("HTTP " + res.status);
  }

  /**
   * Keep a live link to the box: an EventSource on /api/events/stream that reconnects by
   * itself (box restart, network drop, days idle). handlers: status(snapshot), event(e),
   * health(device), link(up), notice(an alert from the centre), outcome(what a card swipe
   * or ticket button did: kiosk pages only, by boot.kiosk). A watchdog reopens the
   * stream when no message (not even a ping) came for three ping periods, and re-fetches
   * /api/live whenever it reconnects.
   */
  function live(page, handlers) {
    let es = null, lastId = "", lastMsg = Date.now(), backoff = 1000, retry = null;
    const pingMs = boot.ping_ms || 15000;
    const touch = () => { lastMsg = Date.now(); };
    const link = (up) => {
      document.body.classList.toggle("offline", !up);
      if (handlers.link) handlers.link(up);
    };
    function onStatus(s) {
      syncClock(s.now);
      if ((s.config_version && s.config_version !== boot.config_version) ||
          (s.version && s.version !== boot.version)) {
        location.reload();  // new software or a new layout: the only full reload there is
        return;
      }
      handlers.status(s);
    }
    function open() {
      if (es) es.close();
      clearTimeout(retry);
      const url = "/api/events/stream?page=" + page +
        (boot.kiosk ? "&kiosk=" + encodeURIComponent(boot.kiosk) : "") +
        (lastId ? "&after=" + encodeURIComponent(lastId) : "");
      es = new EventSource(url);
      es.onopen = () => { backoff = 1000; touch(); link(true); };
      es.onerror = () => {
        link(false);
        if (es.readyState === EventSource.CLOSED) {  // the browser gave up: we do not
          retry = setTimeout(open, backoff);
          backoff = Math.min(backoff * 2, 5000);  // a local box: come back quickly
        }
      };
      es.addEventListener("status", (m) => { touch(); onStatus(JSON.parse(m.data)); });
      es.addEventListener("box", (m) => {
        touch();
        if (m.lastEventId) lastId = m.lastEventId;
        if (handlers.event) handlers.event(JSON.parse(m.data));
      });
      es.addEventListener("health", (m) => {
        touch();
        if (handlers.health) handlers.health(JSON.parse(m.data));
      });
      es.addEventListener("ping", (m) => { touch(); syncClock(JSON.parse(m.data).now); });
      es.addEventListener("notice", (m) => {  // an alert from the centre
        touch();
        if (handlers.notice) handlers.notice(JSON.parse(m.data));
      });
      es.addEventListener("voice", (m) => {  // the box's voice starts or ends a call
        touch();
        if (handlers.voice) handlers.voice(JSON.parse(m.data));
      });
      es.addEventListener("outcome", (m) => {  // a card swipe or ticket button at the box
        touch();
        if (handlers.outcome) handlers.outcome(JSON.parse(m.data));
      });
    }
    async function refetch() {
      const r = await api("GET", "/api/live");
      if (r.ok) onStatus(r.data);
    }
    setInterval(() => {
      if (Date.now() - lastMsg > 3 * pingMs + 2000) {
        touch();
        link(false);
        open();
        refetch();
      }
    }, Math.max(1000, Math.min(pingMs, 5000)));
    window.addEventListener("online", () => { open(); refetch(); });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refetch();
    });
    open();
    return {reopen: open, refetch};
  }

  let audio = null;
  /** A short alarm (WebAudio; no sound file needed). */
  function beep(times) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (let i = 0; i < (times || 3); i++) {
        const o = audio.createOscillator(), g = audio.createGain();
        o.frequency.value = i % 2 ? 660 : 880;
        o.connect(g); g.connect(audio.destination);
        const t = audio.currentTime + i * 0.35;
        g.gain.setValueAtTime(0.25, t);
        g.gain.exponentialRampToValueAtTime(0.001, t + 0.3);
        o.start(t); o.stop(t + 0.3);
      }
      document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    } catch (e) { /* no audio device: the pop-up still shows */ }
  }

  /** A clock element showing the box's time. */
  function clock(node, seconds) {
    // Blank until the box has said what time it is (its clock, not this PC's).
    const tick = () => { if (synced) node.textContent = seconds ? hhmmss(now()) : hhmm(now()); };
    clocks.push(tick);
    setInterval(tick, 1000);
  }

  /** A scrolling banner: speed in px/s, restarts when the text changes. */
  function marquee(span, speed) {
    const run = () => {
      const box = span.parentElement.clientWidth, width = span.scrollWidth;
      const seconds = Math.max(5, width / (speed || 80));
      span.style.animationDuration = seconds + "s";
      // Start with the text already at the left edge, not off-screen to the right.
      span.style.animationDelay = -(seconds * box / Math.max(width, 1)) + "s";
    };
    run();
    window.addEventListener("resize", run);
    return run;
  }

  return {boot, api, press, setCsrf, errorText, live, beep, clock, marquee, el, $, now, syncClock,
          since, minutes, hhmm, hhmmss, day};
})();
