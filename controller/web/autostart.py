"""Chromium kiosk autostart on a Pi: the kiosk and the hall display open by themselves.

Writes, for each screen, a systemd *user* unit (``systemd/user/paidui-screen-NAME.service``)
and/or an XDG autostart entry (``autostart/paidui-screen-NAME.desktop``) under a config
folder (normally ``~/.config`` of the desktop user). Each screen runs its own Chromium
profile, full screen, at its own position (a second monitor for the hall display), waits
for the box to answer before it starts, and is restarted if it dies.

``flash.sh`` runs, as the desktop user::

    python -m controller.web.autostart write --out ~/.config \\
        --screen kiosk=http://127.0.0.1:8080/kiosk \\
        --screen hall=http://127.0.0.1:8080/hall@1920,0
    systemctl --user daemon-reload
    systemctl --user enable paidui-screen-kiosk.service paidui-screen-hall.service

``python -m controller.web.autostart wait URL`` is what each unit runs before Chromium.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["CHROMIUM_FLAGS", "Screen", "chromium_command", "desktop_entry", "main",
           "systemd_unit", "wait_for", "write"]

CHROMIUM_FLAGS = (
    "--kiosk", "--noerrdialogs", "--disable-infobars", "--disable-session-crashed-bubble",
    "--disable-features=Translate,TranslateUI", "--check-for-update-interval=31536000",
    "--no-first-run", "--disable-pinch", "--overscroll-history-navigation=0",
    "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--password-store=basic",
)
_NAME = re.compile(r"^[a-z][a-z0-9\-]{0,31}$")
Format = Literal["systemd", "xdg", "both"]


@dataclass(frozen=True, slots=True)
class Screen:
    """One screen: its name (``kiosk``, ``hall``), page URL and top-left position."""

    name: str
    url: str
    x: int = 0
    y: int = 0

    @classmethod
    def parse(cls, text: str) -> Screen:
        """``NAME=URL[@X,Y]``, e.g. ``hall=http://127.0.0.1:8080/hall@1920,0``."""
        name, sep, rest = text.partition("=")
        url, _, at = rest.partition("@")
        if not sep or not _NAME.match(name) or not url.startswith(("http://", "https://")):
            raise ValueError(f"expected NAME=http://HOST:PORT/PAGE[@X,Y], got {text!r}")
        x, _, y = at.partition(",") if at else ("0", "", "0")
        if not (x.isdigit() and y.isdigit()):
            raise ValueError(f"position must be X,Y in pixels, got {at!r}")
        return cls(name, url, int(x), int(y))

    @property
    def unit(self) -> str:
        return f"paidui-screen-{self.name}"


def chromium_command(screen: Screen, *, browser: str, profiles: str) -> list[str]:
    """Chromium full screen on ``screen.url``, in a profile of its own."""
    return [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profiles}/{screen.name}",
            f"--window-position={screen.x},{screen.y}", screen.url]


def _box_url(url: str) -> str:
    m = re.match(r"^(https?://[^/]+)", url)
    return (m.group(1) if m else url) + "/api/status"


def systemd_unit(screen: Screen, *, browser: str, python: str, profiles: str,
                 display: str = ":0") -> str:
    """A systemd user unit that keeps the screen's Chromium running."""
    wait = [python, "-m", "controller.web.autostart", "wait", _box_url(screen.url)]
    return "\n".join([
        "[Unit]",
        f"Description=paidui {screen.name} screen (Chromium kiosk on {screen.url})",
        "After=graphical-session.target",
        "PartOf=graphical-session.target",
        "",
        "[Service]",
        f"Environment=DISPLAY={display}",
        f"ExecStartPre={shlex.join(wait)}",
        f"ExecStart={shlex.join(chromium_command(screen, browser=browser, profiles=profiles))}",
        "Restart=always",
        "RestartSec=3",
        "",
        "[Install]",
        "WantedBy=graphical-session.target",
        "",
    ])


def desktop_entry(screen: Screen, *, browser: str, python: str, profiles: str,
                  restart_s: float = 3.0) -> str:
    """An XDG autostart entry (for desktops that run those rather than user units), kept
    running as the user unit is (``Restart=always``): it waits for the box — however long
    it takes — opens Chromium, and opens it again ``restart_s`` after it ends or crashes."""
    wait = shlex.join([python, "-m", "controller.web.autostart", "wait", _box_url(screen.url)])
    run = shlex.join(chromium_command(screen, browser=browser, profiles=profiles))
    loop = f"while :; do until {wait}; do sleep 1; done; {run}; sleep {restart_s:g}; done"
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        f"Name=paidui {screen.name} screen",
        f"Exec=sh -c {shlex.quote(loop)}",
        "X-GNOME-Autostart-enabled=true",
        "NoDisplay=true",
        "",
    ])


def write(out: Path, screens: Sequence[Screen], *, fmt: Format = "both",
          browser: str = "/usr/bin/chromium", python: str = sys.executable,
          profiles: str | None = None) -> list[Path]:
    """Write the autostart files under ``out`` (a ``~/.config``); return their paths."""
    names = [s.name for s in screens]
    if len(set(names)) != len(names):
        raise ValueError("two screens have the same name")
    profiles = profiles or str(out / "paidui-chromium")
    written = []
    for s in screens:
        if fmt in ("systemd", "both"):
            path = out / "systemd" / "user" / f"{s.unit}.service"
            written.append(_put(path, systemd_unit(s, browser=browser, python=python,
                                                   profiles=profiles)))
        if fmt in ("xdg", "both"):
            path = out / "autostart" / f"{s.unit}.desktop"
            written.append(_put(path, desktop_entry(s, browser=browser, python=python,
                                                    profiles=profiles)))
    return written


def _put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def wait_for(url: str, timeout: float, every: float = 2.0) -> bool:
    """True once ``url`` answers 200 (the box is up), False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=every) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() + every > deadline:
            return False
        time.sleep(every)  # a polling loop at boot, not a test: nothing to await


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m controller.web.autostart",
                                description="Chromium kiosk autostart for the box's screens.")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="write systemd user units / XDG autostart entries")
    w.add_argument("--out", required=True, type=Path, help="the desktop user's ~/.config")
    w.add_argument("--screen", action="append", required=True, metavar="NAME=URL[@X,Y]")
    w.add_argument("--format", choices=("systemd", "xdg", "both"), default="both")
    w.add_argument("--browser", default="/usr/bin/chromium")
    w.add_argument("--python", default=sys.executable)
    q = sub.add_parser("wait", help="wait until the box answers")
    q.add_argument("url")
    q.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args(argv)
    if args.cmd == "wait":
        return 0 if wait_for(args.url, args.timeout) else 1
    try:
        screens = [Screen.parse(s) for s in args.screen]
        for path in write(args.out, screens, fmt=args.format, browser=args.browser,
                          python=args.python):
            print(path)
    except ValueError as exc:
        print(f"autostart: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
