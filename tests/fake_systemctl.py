"""A stand-in for ``systemctl --no-block`` in the update tests: starts and stops the box
and the update guard as real processes, the way the systemd units on a Pi do.

    python fake_systemctl.py --state DIR restart-box   (like: restart paidui-box.service)
    python fake_systemctl.py --state DIR start-guard   (like: start paidui-update-guard)
    python fake_systemctl.py --state DIR stop          (stop both, wait for them)

``DIR/box.json`` says how the box runs: {"root", "config", "data", "http", "start"}.
Like ``--no-block``, the first two return at once; the work goes on in a detached
process, so the box that called us may be stopped without killing the work.
The box runs ``ROOT/current/venv/bin/python -I -m controller`` (the slot's own code) and
the guard ``ROOT/previous/venv/bin/python -I -m controller.update guard`` — exactly what
deploy/ writes into the units.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie nobody reaps is dead enough


def stop_pid(pidfile: Path, grace: float = 20.0) -> None:
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        return
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # not our child: nothing to wait() on
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def start(state: Path, name: str, argv: list[str]) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    n = len(list(state.glob(f"{name}-*.log")))
    with (state / f"{name}-{n}.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    (state / f"{name}.pid").write_text(str(proc.pid))
    return proc.wait() if name == "guard" else 0


def restart_box(state: Path, how: dict[str, str]) -> None:
    stop_pid(state / "box.pid")
    root = Path(how["root"])
    target = os.readlink(root / "current")
    with (state / "restarts.log").open("a") as f:
        f.write(f"{target}\n")
    start(state, "box", [str(root / "current" / "venv" / "bin" / "python"), "-I", "-m",
                         "controller", "--config", how["config"], "--data-dir", how["data"],
                         "--http", how["http"], "--set", f"clock.start={how['start']}"])


def run_guard(state: Path, how: dict[str, str]) -> None:
    root = Path(how["root"])
    code = start(state, "guard", [str(root / "previous" / "venv" / "bin" / "python"), "-I", "-m",
                                  "controller.update", "guard", "--config", how["config"]])
    (state / "guard.exit").write_text(str(code))


def main(argv: list[str]) -> int:
    if argv[1:2] != ["--state"] or len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    state, cmd = Path(argv[2]), argv[3]
    how = json.loads((state / "box.json").read_text())
    if cmd in ("restart-box", "start-guard"):  # --no-block: detach and return
        subprocess.Popen([sys.executable, __file__, "--state", str(state), f"_{cmd}"],
                         start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        return 0
    if cmd == "_restart-box":
        restart_box(state, how)
    elif cmd == "_start-guard":
        run_guard(state, how)
    elif cmd == "stop":
        stop_pid(state / "guard.pid", 5)
        stop_pid(state / "box.pid")
    else:
        print(f"unknown command {cmd}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
