/* The hall display (综合屏, SPEC B8): the latest calls, newest highlighted; a column per
 * window when the branch is busy; waiting per business; the scrolling banner. Updated by
 * pushed events only — the page never reloads itself except for new software or layout. */
"use strict";

(() => {
  const {boot, $, el} = PD;
  const H = boot.hall;
  let status = null, shown = "";
  const fresh = new Map();  // window -> until (ms), highlighted after a call
  // With the box's voice on (status.voice), a call is shown when its announcement starts
  // (event: voice), in step with what the hall hears; these are called, not yet spoken.
  // A call the voice never speaks (it failed, or lags far behind) shows after VOICE_WAIT_MS.
  const unspoken = new Map();  // "number@window" -> {e, timer}
  const VOICE_WAIT_MS = (H.voice_wait_seconds || 20) * 1000;
  const key = (number, window) => number + "@" + window;

  function announce(number, window, windowName, quiet) {
    shown = number + "@" + window;
    $("#now-who").textContent = number;
    $("#now-where").textContent = `请 ${number} 号到 ${window} 号窗口`;
    $("#now-en").textContent = `Number ${number}, please go to window ${window}` +
      (windowName ? ` (${windowName})` : "");
    const box = $("#now");
    box.classList.remove("fresh");
    if (quiet) return;
    void box.offsetWidth;  // restart the flash
    box.classList.add("fresh");
    fresh.set(window, Date.now() + H.highlight_seconds * 1000);
  }

  function drawCalls(calls) {
    const rows = calls.slice(0, H.calls_shown).map((c, i) => el("tr", {class: i === 0 ? "newest" : ""},
      el("td", {class: "num", text: c.number}),
      el("td", {text: `${c.window} 号窗口`}),
      el("td", {text: c.queue_name})));
    $("#calls").replaceChildren(...rows);
  }

  /** The numbers called but not yet come: recalled (still called) or missed (过号). */
  function drawMissed(calls) {
    const missed = calls.filter((c) => c.state === "no_show" || (c.state === "called" && c.recalls > 0));
    $("#missed-panel").classList.toggle("hidden", !missed.length);
    $("#missed").replaceChildren(...missed.slice(0, H.calls_shown).map((c) => el("li",
      {class: c.state === "no_show" ? "missed" : "recalled", "data-number": c.number},
      el("span", {class: "num", text: c.number}),
      el("span", {text: c.state === "no_show" ? "过号" : `请到 ${c.window} 号窗口`}),
      el("small", {text: c.state === "no_show" ? "Missed: ask at the counter"
        : `Called again: window ${c.window}`}))));
  }

  function drawWindows(windows) {
    const serving = windows.filter((w) => w.state === "serving").length;
    const box = $("#windows");
    box.classList.toggle("hidden", serving < H.columns_when_serving);
    const now = Date.now();
    box.replaceChildren(...windows.map((w) => {
      const held = w.current && unspoken.get(key(w.current, w.number));
      const label = held && held.e.type === "ticket_called" ? "——"  // not yet spoken
        : w.state === "serving" ? w.current : w.state === "paused" ? "暂停服务"
        : w.state === "closed" ? "暂停服务" : "——";
      return el("div", {class: `h-win ${w.state}` + ((fresh.get(w.number) || 0) > now ? " fresh" : ""),
        "data-window": w.number},
        el("div", {class: "wname", text: w.name || `${w.number} 号窗口`}),
        el("div", {class: "num", text: label}));
    }));
  }

  function drawWaiting(queues) {
    $("#waiting").replaceChildren(...queues.map((q) => el("tr", {},
      el("td", {text: q.name}),
      el("td", {class: "n", text: q.paused ? "暂停" : String(q.waiting)}))));
  }

  function onStatus(s) {
    const first = status === null;
    status = s;
    if (!s.voice) for (const k of [...unspoken.keys()]) speak(k);  // the voice went away
    s.calls = unlisted(s.calls);
    const newest = s.calls[0];
    // A call this page did not see (it was offline, or just opened): show it, flash it
    // only when it is recent.
    if (newest && newest.number + "@" + newest.window !== shown) {
      const recent = PD.since(newest.called_at) < H.highlight_seconds;
      announce(newest.number, newest.window, newest.window_name, first || !recent);
    }
    drawCalls(s.calls);
    drawMissed(s.calls);
    drawWindows(s.windows);
    drawWaiting(s.queues);
  }

  function onEvent(e) {
    if ((e.type !== "ticket_called" && e.type !== "ticket_recalled") || e.replay) return;
    if (!status || !status.voice) { show(e); return; }
    const k = key(e.number, e.window);  // wait for the voice to say it
    clearTimeout((unspoken.get(k) || {}).timer);
    unspoken.set(k, {e, timer: setTimeout(() => speak(k), VOICE_WAIT_MS)});
    if (e.type === "ticket_called") drawCalls(status.calls = unlisted(status.calls));
  }

  function onVoice(v) {
    if (v.phase === "start") speak(key(v.number, v.window));
  }

  function speak(k) {
    const held = unspoken.get(k);
    if (!held) return;
    clearTimeout(held.timer);
    unspoken.delete(k);
    show(held.e);
  }

  // A first call not yet spoken is not listed yet (a recall keeps its line: only its
  // flash waits for the voice).
  function unlisted(calls) {
    return calls.filter((c) => {
      const held = unspoken.get(key(c.number, c.window));
      return !held || held.e.type !== "ticket_called";
    });
  }

  function show(e) {
    const w = status && status.windows.find((x) => x.number === e.window);
    announce(e.number, e.window, w && w.name);
    if (status) {  // show it at once; the status that follows confirms it
      const q = status.queues.find((x) => x.id === e.queue);
      status.calls = [{number: e.number, window: e.window, queue_name: q ? q.name : ""},
        ...status.calls.filter((c) => c.number !== e.number)];
      drawCalls(status.calls);
    }
  }

  PD.clock($("#clock"), true);
  PD.marquee($("#banner"), H.banner_speed);
  if (!$("#banner").textContent.trim()) document.querySelector(".banner").classList.add("empty");
  setInterval(() => { if (status) drawWindows(status.windows); }, 1000);
  PD.live("hall", {status: onStatus, event: onEvent, voice: onVoice});
})();
