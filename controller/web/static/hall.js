/* The hall display (综合屏, SPEC B8): the latest calls, newest highlighted; a column per
 * window when the branch is busy; waiting per business; the scrolling banner. Updated by
 * pushed events only — the page never reloads itself except for new software or layout. */
"use strict";

(() => {
  const {boot, $, el} = PD;
  const H = boot.hall;
  let status = null, shown = "";
  const fresh = new Map();  // window -> until (ms), highlighted after a call

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

  function drawWindows(windows) {
    const serving = windows.filter((w) => w.state === "serving").length;
    const box = $("#windows");
    box.classList.toggle("hidden", serving < H.columns_when_serving);
    const now = Date.now();
    box.replaceChildren(...windows.map((w) => {
      const label = w.state === "serving" ? w.current : w.state === "paused" ? "暂停服务"
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
    const newest = s.calls[0];
    // A call this page did not see (it was offline, or just opened): show it, flash it
    // only when it is recent.
    if (newest && newest.number + "@" + newest.window !== shown) {
      const recent = PD.since(newest.called_at) < H.highlight_seconds;
      announce(newest.number, newest.window, newest.window_name, first || !recent);
    }
    drawCalls(s.calls);
    drawWindows(s.windows);
    drawWaiting(s.queues);
  }

  function onEvent(e) {
    if ((e.type === "ticket_called" || e.type === "ticket_recalled") && !e.replay) {
      const w = status && status.windows.find((x) => x.number === e.window);
      announce(e.number, e.window, w && w.name);
      if (status) {  // show it at once; the status that follows confirms it
        status.calls = [{number: e.number, window: e.window, queue_name: (status.queues.find((q) => q.id === e.queue) || {}).name || ""},
          ...status.calls.filter((c) => c.number !== e.number)];
        drawCalls(status.calls);
      }
    }
  }

  PD.clock($("#clock"), true);
  PD.marquee($("#banner"), H.banner_speed);
  if (!$("#banner").textContent.trim()) document.querySelector(".banner").classList.add("empty");
  setInterval(() => { if (status) drawWindows(status.windows); }, 1000);
  PD.live("hall", {status: onStatus, event: onEvent});
})();
