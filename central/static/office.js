/* Shared by the centre's pages: the boot data, API calls with the CSRF token, formatting,
 * a tiny element builder. Plain ES2017, no libraries, nothing from the network. */
"use strict";

const PD = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  /** Call the centre's API; resolves to {ok, status, data}, never rejects. */
  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && boot.csrf) headers["X-CSRF-Token"] = boot.csrf;
    try {
      const r = await fetch(path, {method, headers, credentials: "same-origin", cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body)});
      let data = {};
      try { data = await r.json(); } catch (e) { data = {}; }
      if (r.status === 401 && !path.startsWith("/api/auth/login")) {
        location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      }
      return {ok: r.ok, status: r.status, data: data || {}};
    } catch (e) {
      return {ok: false, status: 0, data: {error: {code: "offline",
        message: "无法连接监控中心,请稍后再试。", message_en: "Cannot reach the centre."}}};
    }
  }
  function errorText(res) {
    const e = (res.data && res.data.error) || {};
    const zh = e.message || (res.data && res.data.detail && JSON.stringify(res.data.detail)) ||
      ("HTTP " + res.status);
    return e.message_en && e.message_en !== zh ? zh + "\n" + e.message_en : zh;
  }

  const two = (n) => String(n).padStart(2, "0");
  /** Seconds as "3分05秒" or "1时02分". */
  function dur(s) {
    if (s === null || s === undefined || isNaN(s)) return "—";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + "秒";
    if (s < 3600) return Math.floor(s / 60) + "分" + two(s % 60) + "秒";
    return Math.floor(s / 3600) + "时" + two(Math.floor(s / 60) % 60) + "分";
  }
  /** How long ago (seconds) in words. */
  function ago(s) {
    if (s === null || s === undefined) return "从未 never";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " 秒前";
    if (s < 3600) return Math.floor(s / 60) + " 分钟前";
    if (s < 86400) return Math.floor(s / 3600) + " 小时前";
    return Math.floor(s / 86400) + " 天前";
  }
  /** Epoch seconds as local "MM-DD HH:MM:SS" (or only the time today). */
  function when(t) {
    if (!t) return "—";
    const d = new Date(t * 1000), today = new Date();
    const hms = two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
    if (d.toDateString() === today.toDateString()) return hms;
    return two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " + hms;
  }
  function num(n) { return n === null || n === undefined ? "—" : String(n); }

  let toastTimer = null;
  function toast(text, bad) {
    const t = $("#toast");
    t.textContent = text;
    t.classList.toggle("bad", !!bad);
    t.classList.remove("hidden");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.add("hidden"), bad ? 8000 : 4000);
  }

  /** Options of an org <select>: the user's subtree (from /api/orgs). */
  async function orgOptions(select, selected, filter) {
    const res = await api("GET", "/api/orgs");
    if (!res.ok) return [];
    select.textContent = "";
    const orgs = res.data.orgs.filter(filter || (() => true));
    for (const o of orgs) {
      const depth = o.code.length <= 4 ? 0 : o.code.length <= 6 ? 1 : 2;
      select.append(el("option", {value: o.code, selected: o.code === selected},
        "\u00a0\u00a0".repeat(depth) + o.name + " " + o.code));
    }
    return orgs;
  }

  const out = $("#logout");
  if (out) out.addEventListener("click", async () => {
    await api("POST", "/api/auth/logout");
    location.href = "/login";
  });

  const account = $("#account");
  if (account) {
    account.addEventListener("click", () => {
      $("#pw-error").textContent = "";
      $("#password-form").reset();
      $("#password-dialog").showModal();
    });
    $("#pw-cancel").addEventListener("click", () => $("#password-dialog").close());
    $("#password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const res = await api("POST", "/api/auth/password",
        {old: $("#pw-old").value, new: $("#pw-new").value});
      if (!res.ok) { $("#pw-error").textContent = errorText(res); return; }
      $("#password-dialog").close();
      toast("密码已修改 Password changed");
    });
  }

  /** A short tone for a new alert (WebAudio, no sound file). A browser may keep audio
   * suspended until the user has clicked on the page; it is resumed on each beep. */
  let audio = null;
  function beep() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = audio || new Ctx();
    if (audio.state === "suspended") audio.resume();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g); g.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.35);
  }

  return {boot, $, el, api, errorText, dur, ago, when, num, toast, orgOptions, beep};
})();
