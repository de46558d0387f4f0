"""docs/SINGLE_TASK_API_REFERENCE.md against the registry and real responses.

Each node is run through POST /v1/tasks (miss), repeated while it runs (pending: its input
is a gated URL on the loopback server, so it is deterministically still running), and
repeated after it finished (hit). The recorded examples in docs/examples/ must have the
shape of these real responses, and the reference must show exactly those examples.
Run `make docs` to re-record the examples and regenerate the reference.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageFont

from nodes import registry
from nodes.espeak import write_speech
from nodes.families.ocr_stitch import GAP, Manifest, Placement, Stitched
from nodes.spec import NodeSpec
from reuse.decide import Action
from reuse.redis_store import ClaimRequest, RedisStageStore
from reuse.settings import Settings
from reuse.status import ReuseMode
from tests.burned_subtitles import Cue, cjk_font, draw_frame, make_subtitled_video
from tests.conftest import wait_stage
from tests.loopback import LoopbackServer

DOCS = Path(__file__).resolve().parent.parent / "docs"
REFERENCE = DOCS / "SINGLE_TASK_API_REFERENCE.md"
EXAMPLES = DOCS / "examples"
WRITE = os.environ.get("REELSERVE_WRITE_EXAMPLES") == "1"

SRT = "1\n00:00:00,200 --> 00:00:01,500\nhello\n\n2\n00:00:02,000 --> 00:00:03,500\nworld\n"

Inputs = Callable[[str, Path], dict[str, Any]]
# node -> its example input_data, given the gated media URL and the storage root
INPUTS: dict[str, Inputs] = {
    "ffmpeg.extract_audio": lambda url, root: {"video_path": url},
    "ffmpeg.extract_keyframes": lambda url, root: {"video_path": url,
                                                   "keyframe_sample_count": 4},
    "ffmpeg.crop_subtitle_images": lambda url, root: {"video_path": url,
                                                      "subtitle_area": [0, 200, 320, 240]},
    "ffmpeg.split_audio_segments": lambda url, root: {"audio_path": url,
                                                      "subtitle_path": str(root / "doc.srt")},
    "audio_separator.separate_vocals": lambda url, root: {"video_path": url,
                                                          "quality_mode": "fast"},
    "faster_whisper.transcribe_audio": lambda url, root: {"audio_path": url,
                                                          "language": "en"},
    "pyannote_audio.diarize_speakers": lambda url, root: {"audio_path": url,
                                                          "num_speakers": 2},
    "pyannote_audio.get_speaker_segments": lambda url, root: {"diarization_file": url,
                                                              "speaker": "SPEAKER_01"},
    "pyannote_audio.validate_diarization": lambda url, root: {"diarization_file": url},
    "wservice.generate_subtitle_files": lambda url, root: {"segments_file": url,
                                                           "language": "en"},
    "wservice.correct_subtitles": lambda url, root: {"subtitle_path": url, "batch_size": 20},
    "wservice.ai_optimize_subtitles": lambda url, root: {"segments_file": url},
    "wservice.merge_speaker_segments": lambda url, root: {
        "segments_file": url, "diarization_file": str(diarization_json(root))},
    "wservice.merge_with_word_timestamps": lambda url, root: {
        "segments_file": url, "diarization_file": str(diarization_json(root))},
    "wservice.prepare_tts_segments": lambda url, root: {"segments_file": url,
                                                        "min_duration": 2.0},
    "indextts.generate_speech": lambda url, root: {"segments_file": url},
    "paddleocr.detect_subtitle_area": lambda url, root: {
        "keyframe_dir": str(ocr_inputs(root) / "keyframes"), "sample_count": 4},
    "paddleocr.create_stitched_images": lambda url, root: {
        "cropped_images_path": str(ocr_inputs(root) / "bands"), "subtitle_area": list(BAND)},
    "paddleocr.perform_ocr": lambda url, root: {
        "manifest_path": url, "multi_frames_path": str(ocr_inputs(root) / "stitched")},
    "paddleocr.postprocess_and_finalize": lambda url, root: {
        "ocr_results_path": url, "video_path": str(ocr_inputs(root) / "burned.mp4")},
}
# nodes whose inputs are local folders (no URL to gate): the pending example is answered
# while a claim the test holds through the real stage store is in flight
HELD = ("paddleocr.detect_subtitle_area", "paddleocr.create_stitched_images")

DIARIZATION = {
    "audio_path": "/share/inputs/dialogue.wav", "total_speakers": 2,
    "segments": [{"start": 0.0, "end": 2.9, "speaker": "SPEAKER_00", "duration": 2.9},
                 {"start": 3.3, "end": 6.1, "speaker": "SPEAKER_01", "duration": 2.8}],
    "metadata": {"model": "embedded:vad-mfcc-pitch-ward"},
}


def timed_words(text: str, start: float, end: float) -> list[dict[str, Any]]:
    tokens = text.split()
    step = (end - start) / len(tokens)
    return [{"word": " " + w, "start": round(start + i * step, 2),
             "end": round(start + (i + 1) * step, 2), "probability": 0.9}
            for i, w in enumerate(tokens)]


SAID = [(0.2, 2.8, "Hello, this is the reelserve speech example."),
        (3.4, 6.0, "And here a second voice answers.")]


def transcript_json(root: Path) -> Path:
    """A transcription (transcribe_audio's format, shortened) of the speech clip."""
    path = root / "doc-transcript.json"
    segments = [{"id": i, "start": a, "end": b, "text": t, "words": timed_words(t, a, b)}
                for i, (a, b, t) in enumerate(SAID)]
    path.write_text(json.dumps({"metadata": {"language": "en", "total_duration": 6.5},
                                "segments": segments}))
    return path


def tts_segments_json(root: Path) -> Path:
    path = root / "doc-tts-segments.json"
    segments = [{"id": i, "start": a, "end": b, "text": t, "speaker": f"SPEAKER_0{i}"}
                for i, (a, b, t) in enumerate(SAID)]
    path.write_text(json.dumps({"metadata": {"total_duration": 6.5}, "segments": segments}))
    return path


def srt_file(root: Path) -> Path:
    return root / "doc.srt"


def speech_clip(root: Path) -> Path:
    path = root / "doc-speech.wav"
    if not path.exists():
        write_speech(path, [("en-us", "Hello, this is the reelserve speech example."),
                            ("en-us+f2", "And here a second voice answers.")])
    return path


def diarization_json(root: Path) -> Path:
    path = root / "doc-diarization.json"
    path.write_text(json.dumps(DIARIZATION))
    return path


DOC_CUES = (Cue("Welcome to the show", 0.2, 1.4), Cue("你好世界", 1.6, 2.8))
BAND = (0, 246, 640, 352)


def ocr_inputs(root: Path) -> Path:
    """A 3 s video with two burned cues; keyframes, cropped bands, stitched images with
    their manifest, and OCR results as the chain's nodes write them."""
    folder = root / "doc-ocr"
    if (folder / "ocr_results.json").exists():
        return folder
    video = make_subtitled_video(folder / "burned.mp4", cues=DOC_CUES, seconds=3)[0]
    font = ImageFont.truetype(str(cjk_font()), 28)
    logo = ImageFont.truetype(str(cjk_font()), 22)
    for sub in ("keyframes", "bands", "stitched"):
        (folder / sub).mkdir(exist_ok=True)
    shown = {0: None, 25: DOC_CUES[0], 50: DOC_CUES[1], 60: DOC_CUES[1]}
    bands = []
    for i, (frame, cue) in enumerate(shown.items()):
        image = draw_frame(frame, (640, 360), cue, font, logo)
        Image.fromarray(image).save(folder / "keyframes" / f"frame_{i + 1:04d}.jpg")
        bands.append(image[BAND[1]:BAND[3], BAND[0]:BAND[2]])
        Image.fromarray(bands[-1]).save(folder / "bands" / f"{frame:06d}.jpg")
    height = BAND[3] - BAND[1]
    stack = np.zeros((len(bands) * (height + GAP) - GAP, 640, 3), np.uint8)
    for k, band in enumerate(bands):
        stack[k * (height + GAP):k * (height + GAP) + height] = band
    Image.fromarray(stack).save(folder / "stitched" / "stitched_000000.jpg")
    manifest = Manifest(band_width=640, band_height=height, gap=GAP, subtitle_area=list(BAND),
                        frames_count=len(bands), images=[Stitched(
                            file="stitched_000000.jpg",
                            frames=[Placement(frame=f, y=k * (height + GAP))
                                    for k, f in enumerate(shown)])])
    (folder / "stitched" / "manifest.json").write_text(manifest.model_dump_json())
    results: dict[str, list[dict[str, Any]]] = {}
    for frame in range(75):
        cue = next((c for c in DOC_CUES if c.frames(25)[0] <= frame <= c.frames(25)[1]), None)
        results[str(frame)] = [] if cue is None else [
            {"text": cue.text, "score": 0.99,
             "box": [[250, 300], [390, 300], [390, 334], [250, 334]]}]
    (folder / "ocr_results.json").write_text(json.dumps(
        {"engine": "rapidocr", "lang": "ch", "ocr_calls": 2, "subtitle_area": list(BAND),
         "frames": results}, ensure_ascii=False))
    return video.parent


# node -> the file its gated URL serves (default: the test video)
GATED: dict[str, Callable[[Path], Path]] = {
    "faster_whisper.transcribe_audio": speech_clip,
    "pyannote_audio.diarize_speakers": speech_clip,
    "pyannote_audio.get_speaker_segments": diarization_json,
    "pyannote_audio.validate_diarization": diarization_json,
    "wservice.generate_subtitle_files": transcript_json,
    "wservice.correct_subtitles": srt_file,
    "wservice.ai_optimize_subtitles": transcript_json,
    "wservice.merge_speaker_segments": transcript_json,
    "wservice.merge_with_word_timestamps": transcript_json,
    "wservice.prepare_tts_segments": transcript_json,
    "indextts.generate_speech": tts_segments_json,
    "paddleocr.perform_ocr": lambda root: ocr_inputs(root) / "stitched" / "manifest.json",
    "paddleocr.postprocess_and_finalize": lambda root: ocr_inputs(root) / "ocr_results.json",
}


def sanitize(value: Any, root: str, base: str) -> Any:
    """Stable text for the docs: the storage root as /share, the loopback host as a name."""
    if isinstance(value, dict):
        return {k: sanitize(v, root, base) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v, root, base) for v in value]
    if isinstance(value, str):
        return value.replace(root, "/share").replace(base, "https://media.example.com")
    return value


def shape(value: Any) -> Any:
    """Keys and value types, recursively (what a client relies on)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else "null"


def answer_while_held(client: httpx.Client, settings: Settings,
                      body: dict[str, Any]) -> httpx.Response:
    """The answer to `body` while an attempt of its stage is in flight (claimed through the
    real store, never run); the claim is then deleted with the task."""
    async def hold() -> None:
        store = RedisStageStore(settings)
        try:
            outcome = await store.claim(ClaimRequest(
                task_id=body["task_id"], task_name=body["task_name"], reuse_keys=[],
                mode=ReuseMode.AUTO, input_params=body["input_data"], fingerprint="held",
                request_params=body["input_data"]))
            assert outcome.decision.action is Action.RUN
        finally:
            await store.close()

    asyncio.run(hold())
    pending = client.post("/v1/tasks", json=body)
    r = client.delete(f"/v1/tasks/{body['task_id']}", params={"force": "true"})
    assert r.status_code == 200, r.text
    return pending


def capture(client: httpx.Client, loopback: LoopbackServer, video: Path, root: Path,
            settings: Settings, spec: NodeSpec) -> dict[str, Any]:
    task_id = f"doc-{spec.name.replace('.', '-').replace('_', '-')}"
    client.delete(f"/v1/tasks/{task_id}", params={"force": "true"})
    (root / "doc.srt").write_text(SRT)
    source = GATED[spec.name](root) if spec.name in GATED else video
    gate = f"{task_id}{source.suffix}"
    loopback.gates.pop(gate, None)
    url = loopback.serve_file(gate, source, gated=True)
    body = {"task_name": spec.name, "task_id": task_id,
            "input_data": INPUTS[spec.name](url, root)}
    out: dict[str, Any] = {"request": body}
    if spec.name in HELD:
        pending = answer_while_held(client, settings, body)
        miss = client.post("/v1/tasks", json=body)
    else:
        miss = client.post("/v1/tasks", json=body)
        pending = client.post("/v1/tasks", json=body)
    loopback.open_gate(gate)
    assert wait_stage(client, task_id, spec.name)["status"] == "SUCCESS"
    hit = client.post("/v1/tasks", json=body)
    for name, resp in (("miss", miss), ("pending", pending), ("hit", hit)):
        out[name] = {"http_status": resp.status_code, "body": resp.json()}
    return out


@pytest.mark.parametrize("spec", registry.NODES, ids=registry.names())
def test_examples_match_real_responses(client: httpx.Client, loopback: LoopbackServer,
                                       video: Path, storage_root: Path, settings: Settings,
                                       spec: NodeSpec) -> None:
    real = sanitize(capture(client, loopback, video, storage_root, settings, spec),
                    str(storage_root.resolve()), loopback.base)
    assert real["miss"]["http_status"] == 202
    assert real["miss"]["body"]["reuse_info"]["reason"] == "not_found"
    assert real["pending"]["http_status"] == 202
    assert real["pending"]["body"]["reuse_info"]["state"] == "pending"
    assert real["hit"]["http_status"] == 200
    assert real["hit"]["body"]["reuse_info"]["reuse_hit"] is True
    stage = real["hit"]["body"]["result"]["stages"][spec.name]
    assert set(stage["output"]) == set(spec.outputs)  # the registry tells the truth
    path = EXAMPLES / f"{spec.name}.json"
    if WRITE:
        path.write_text(json.dumps(real, indent=2, ensure_ascii=False) + "\n")
    recorded = json.loads(path.read_text())
    for form in ("miss", "pending", "hit"):
        assert recorded[form]["http_status"] == real[form]["http_status"]
        assert shape(recorded[form]["body"]) == shape(real[form]["body"]), form
        assert recorded[form]["body"]["reuse_info"].keys() == \
            real[form]["body"]["reuse_info"].keys()


def node_section(spec: NodeSpec) -> str:
    text = REFERENCE.read_text()
    match = re.search(rf"^### `{re.escape(spec.name)}`\n(.*?)(?=^### |^## |\Z)", text,
                      re.S | re.M)
    assert match, f"no section for {spec.name} in {REFERENCE.name}"
    return match.group(1)


@pytest.mark.parametrize("spec", registry.NODES, ids=registry.names())
def test_reference_has_a_complete_section_per_node(spec: NodeSpec) -> None:
    section = node_section(spec)
    for field in spec.params.model_fields:
        assert f"| `{field}` |" in section, f"{spec.name}: param {field} missing"
    for key in spec.outputs:
        assert f"`{key}`" in section, f"{spec.name}: output {key} missing"
    assert "Reuse rule" in section and all(f"`{k}`" in section for k in spec.reuse_keys)
    recorded = json.loads((EXAMPLES / f"{spec.name}.json").read_text())
    for form in ("miss", "pending", "hit"):
        shown = json.dumps(recorded[form]["body"], indent=2, ensure_ascii=False)
        assert shown in section, f"{spec.name}: the {form} example is not the recorded one"


def test_reference_lists_only_registered_nodes() -> None:
    documented = re.findall(r"^### `([a-z_]+\.[a-z_]+)`", REFERENCE.read_text(), re.M)
    assert documented == registry.names()
