"""A private pcscd with vsmartcard's virtual reader (vpcd), for tests of the real PC/SC path.

pcscd 1.9 has its socket path built in (/run/pcscd/pcscd.comm), so the test's daemon is
given its own listening socket the systemd way (LISTEN_FDS=1, the socket as fd 3) and the
client library is pointed at it with PCSCLITE_CSOCK_NAME: the machine's own pcscd, if any,
is not touched. vpcd listens for the virtual card on the port its reader.conf names (on
every interface: vpcd has no option to bind loopback only; the port is a free one, and
lives as long as the test).
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")


@dataclass
class Pcscd:
    socket_path: Path
    port: int  # vpcd's first slot; the virtual card connects here


def _free_port_pair() -> int:
    for _ in range(20):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        with socket.socket() as b:  # vpcd opens a second slot on port + 1
            try:
                b.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def _wait_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                time.sleep(0.05)  # vpcd not listening yet: pcscd is still loading it
                continue
        return
    raise TimeoutError("vpcd did not start listening")


def start_pcscd(tmp: Path) -> Iterator[Pcscd]:
    """Run a private pcscd with one vpcd reader; skip when the packages are missing."""
    pytest.importorskip("smartcard")
    if shutil.which("pcscd") is None or not VPCD_DRIVER.exists():
        pytest.skip("needs the Debian packages pcscd and vsmartcard-vpcd")
    port = _free_port_pair()
    conf = tmp / "reader.conf.d"
    conf.mkdir()
    (conf / "vpcd").write_text(f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{port}\n'
                               f"LIBPATH {VPCD_DRIVER}\nCHANNELID {port}\n")
    path = tmp / "pcscd.comm"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(16)

    def as_fd3() -> None:
        os.dup2(listener.fileno(), 3)
        # pcscd FD_SETs its descriptors: keep them under FD_SETSIZE
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    daemon = subprocess.Popen(
        ["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec pcscd --foreground -c "$0"', str(conf)],
        pass_fds=(listener.fileno(), 3), preexec_fn=as_fd3, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        _wait_listening(port)
        yield Pcscd(path, port)
    finally:
        daemon.terminate()
        daemon.wait(10)
        listener.close()
