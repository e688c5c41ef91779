"""The shipped Mosquitto configuration: rendering it, provisioning credentials, running one.

* :func:`render_config` writes ``mosquitto.conf`` (from ``central/mosquitto/mosquitto.conf.in``)
  and the ACL into a directory: persistence on, ``max_queued_messages`` raised, password
  file + ACL, a websockets listener and an optional TLS listener.
* :func:`provision` adds or replaces one user in the password file with ``mosquitto_passwd``:
  a branch (user name = branch code), ``centre`` or ``dashboard``.
* :class:`LocalBroker` runs a private ``mosquitto`` from such a directory on a loopback
  port: tests, benchmarks and try-outs kill and restart it without touching the shared one.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CentreError

__all__ = ["BrokerFiles", "LocalBroker", "free_port", "provision", "render_config"]

HERE = Path(__file__).resolve().parent / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
USER = re.compile(r"^(\d{4,16}|centre|dashboard|[a-z][a-z0-9_-]{1,31})$")


@dataclass(frozen=True)
class BrokerFiles:
    conf: Path
    passwd: Path
    acl: Path
    data: Path
    port: int
    ws_port: int | None
    tls_port: int | None


def render_config(directory: str | Path, *, port: int = 1883, host: str = "127.0.0.1",
                  ws_port: int | None = 9001, tls_port: int | None = None,
                  tls_cert: str | None = None, tls_key: str | None = None,
                  tls_ca: str | None = None, log_file: str | None = None,
                  run_as: str | None = None, anonymous: bool = False) -> BrokerFiles:
    """Write a ready-to-run broker configuration into ``directory``.

    ``run_as``: the account Mosquitto keeps when started as root (default: it drops to
    ``mosquitto``). ``anonymous=True`` only for benchmarks of the bare broker.
    """
    d = Path(directory).resolve()
    (d / "data").mkdir(parents=True, exist_ok=True)
    acl = d / "acl"
    shutil.copyfile(HERE / "acl", acl)
    passwd = d / "passwd"
    passwd.touch()
    ws_block = f"listener {ws_port} {host}\nprotocol websockets" if ws_port else ""
    tls_block = ""
    if tls_port:
        if not (tls_cert and tls_key):
            raise CentreError("broker.tls: a TLS listener needs tls_cert and tls_key")
        tls_block = f"listener {tls_port} {host}\ncertfile {tls_cert}\nkeyfile {tls_key}"
        if tls_ca:
            tls_block += f"\ncafile {tls_ca}"
    text = (HERE / "mosquitto.conf.in").read_text().format(
        passwd=passwd, acl=acl, data=d / "data", port=port, host=host,
        ws_block=ws_block, tls_block=tls_block,
        user_line=f"user {run_as}" if run_as else "",
        log_dest=f"file {log_file}" if log_file else "stderr",
    )
    if anonymous:
        text = text.replace("allow_anonymous false", "allow_anonymous true")
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith(("password_file",
                                                                              "acl_file")))
    conf = d / "mosquitto.conf"
    conf.write_text(text)
    return BrokerFiles(conf, passwd, acl, d / "data", port, ws_port, tls_port)


def provision(passwd: str | Path, user: str, password: str | None = None) -> str:
    """Add (or replace) ``user`` in the broker's password file; return the password.

    A branch's user name is its branch code (the ACL's ``%u``); a new random password is
    made unless one is given. Reload the broker afterwards (``kill -HUP``).
    """
    if not USER.match(user):
        raise CentreError(f"provision: {user!r} is not a branch code or service user")
    password = password or secrets.token_urlsafe(18)
    path = Path(passwd)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    result = subprocess.run([MOSQUITTO_PASSWD, "-b", str(path), user, password],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise CentreError(f"mosquitto_passwd failed: {result.stderr.strip()}")
    return password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# An MQTT 3.1.1 CONNECT with an empty client id: any CONNACK (even "not authorised") shows
# the broker's main loop runs, which is also when its signal handlers are in place.
_CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0])


def answers_connect(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
        s.sendall(_CONNECT)
        return s.recv(1)[:1] == b"\x20"
    return False


def _mqtt_string(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def accepts(port: int, user: str, password: str) -> bool:
    """Does the broker on ``port`` accept ``user``/``password`` now (CONNACK code 0)?

    An MQTT 3.1.1 CONNECT with those credentials and an empty client id, then DISCONNECT.
    """
    body = (_mqtt_string("MQTT") + bytes([4, 0xC2, 0, 60]) + _mqtt_string("")
            + _mqtt_string(user) + _mqtt_string(password))
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as s:
        s.sendall(b"\x10" + _remaining_length(len(body)) + body)
        ack = s.recv(4)
        s.sendall(b"\xe0\x00")
        return ack[:1] == b"\x20" and ack[3:4] == b"\x00"
    return False


@dataclass
class LocalBroker:
    """A private Mosquitto on loopback, started from :func:`render_config` files.

    ``kill()`` is a SIGKILL (what a power cut does to the broker); ``start()`` again keeps
    the port and the persistence directory.
    """

    directory: Path
    anonymous: bool = False
    websockets: bool = False
    port: int = field(default_factory=free_port)
    ws_port: int | None = None
    files: BrokerFiles | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if self.websockets and self.ws_port is None:
            self.ws_port = free_port()
        run_as = getpass.getuser() if os.geteuid() == 0 else None
        self.files = render_config(
            self.directory, port=self.port, ws_port=self.ws_port, run_as=run_as,
            anonymous=self.anonymous, log_file=str(Path(self.directory) / "mosquitto.log"),
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def add_user(self, user: str, password: str | None = None, timeout: float = 10.0) -> str:
        """Provision ``user`` and reload the running broker; return the password.

        Mosquitto reloads on SIGHUP at its next loop turn, which a busy broker reaches late:
        this returns only once the broker accepts the new credentials, so a client that
        connects next is not refused, and the next provisioning does not rewrite the
        password file while the broker may still be reading it.
        """
        assert self.files is not None
        password = provision(self.files.passwd, user, password)
        if self.process is None or self.process.poll() is not None:
            return password
        self.process.send_signal(signal.SIGHUP)  # reload the password file
        deadline = time.monotonic() + timeout
        while not accepts(self.port, user, password):
            if time.monotonic() > deadline:
                raise CentreError(f"mosquitto did not accept {user} within {timeout}s")
            time.sleep(0.02)  # the reload is the broker's own: nothing to await
        return password

    def start(self, timeout: float = 10.0) -> None:
        assert self.files is not None
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.files.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CentreError(f"mosquitto exited with {self.process.returncode}; "
                                  f"see {self.directory}/mosquitto.log")
            if answers_connect(self.port):
                return
            time.sleep(0.02)  # polling a port that is not open yet: nothing to await
        raise CentreError(f"mosquitto did not listen on {self.port} within {timeout}s")

    def kill(self) -> None:
        """SIGKILL the broker and reap it. Safe when it is not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """A polite SIGTERM (Mosquitto saves its persistence file). Safe twice."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
