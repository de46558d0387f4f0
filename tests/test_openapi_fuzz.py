"""schemathesis against the running graph's /openapi.json: every check, bounded examples.

No answer may be a 5xx, and every answer must match the document (status code, content
type, headers, body schema). It runs on an app of its own with its own storage root, so
the generated DELETE /v1/files/<path> calls cannot remove other tests' files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from ray import serve

from graph.app import build_graph
from reuse.settings import Settings
from tests.conftest import make_settings, wait_until

pytestmark = pytest.mark.slow
APP = "fuzz"
NODES = ["ffmpeg.extract_audio", "pyannote_audio.validate_diarization"]


@pytest.fixture(scope="module")
def fuzz_api(api: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz-share")
    s = make_settings(settings.redis_url, root)
    serve.run(build_graph(s, NODES), name=APP, route_prefix=f"/{APP}")
    base = f"{api}/{APP}"
    wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
    yield base
    serve.delete(APP)


def test_every_answer_matches_the_openapi_document(fuzz_api: str, tmp_path: Path) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert st, "schemathesis is a dev dependency"
    config = Path(__file__).with_name("schemathesis.toml")
    cmd = [st, "--config-file", str(config), "run", f"{fuzz_api}/openapi.json", "--url", fuzz_api,
           "--max-examples", "25", "--seed", "7", "--request-timeout", "30",
           "--generation-deterministic", "--workers", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
