"""`serve run serve_config.yaml` on a CPU-only machine with a Ray it starts itself (issue 11).

The file's GPU fractions must not leave the GPU nodes pending there: with REELSERVE_GPU's
default (`auto`) the builder sees a cluster without GPUs and places every node on the CPU,
and the CPU reservations of the whole graph fit two cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT, free_port, run_task, unique, wait_until
from tests.media import make_video

pytestmark = pytest.mark.slow


def test_serve_run_of_the_config_on_a_cpu_only_fresh_ray(redis_url: str, tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"]["port"] = port  # only the port differs from the shipped file
    path = tmp_path / "serve_config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    share = tmp_path / "share"
    video = make_video(share / "inputs" / "clip.mp4", seconds=3)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_SERVE_", "RAY_ADDRESS", "REELSERVE_"))}
    env.update({"REDIS_URL": redis_url, "REELSERVE_STORAGE_ROOT": str(share),
                "CUDA_VISIBLE_DEVICES": "",
                "RAY_OVERRIDE_RESOURCES": '{"CPU": 2, "GPU": 0}'})
    # `-a local`: a new Ray on this machine, as on one where none runs (this session's Ray
    # would otherwise be found); it sees no GPU (CUDA_VISIBLE_DEVICES is empty) and
    # two CPUs (RAY_OVERRIDE_RESOURCES: as on a 2-core machine whatever this one has)
    log = (tmp_path / "serve-run.log").open("w")
    serve = str(Path(sys.executable).parent / "serve")
    proc = subprocess.Popen([serve, "run", str(path), "-a", "local"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, timeout=420,
                   every=1)
        with httpx.Client(base_url=base, timeout=60) as client:
            task_id = unique("serve-run")
            audio = run_task(client, task_id, "ffmpeg.extract_audio",
                             {"video_path": str(video)}, timeout=300)
            # the nodes with GPU fractions in the file run (on the CPU) instead of pending
            for name in ("audio_separator.separate_vocals", "faster_whisper.transcribe_audio",
                         "pyannote_audio.diarize_speakers"):
                run_task(client, task_id, name, {"audio_path": audio["audio_path"]},
                         timeout=300)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # serve run shuts down Serve and its Ray
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    text = (tmp_path / "serve-run.log").read_text()
    assert "node GPU fractions off (REELSERVE_GPU=auto; the cluster has 0 GPUs)" in text, \
        text[-3000:]
