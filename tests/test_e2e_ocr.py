"""Burned-in subtitles back to an SRT over HTTP, on generated videos whose cues and frames
are known: extract_keyframes -> detect_subtitle_area -> crop_subtitle_images ->
create_stitched_images -> perform_ocr -> postprocess_and_finalize on one task_id.
Text is checked by character error rate (printed, bounded), times to two frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pysubs2
import pytest
from PIL import Image, ImageFont

from tests.burned_subtitles import CUES, Cue, cjk_font, draw_frame, make_subtitled_video
from tests.conftest import post_task, run_task, unique, wait_stage

FPS = 25
SIZE = (640, 360)
CHAIN = ("ffmpeg.extract_keyframes", "paddleocr.detect_subtitle_area",
         "ffmpeg.crop_subtitle_images", "paddleocr.create_stitched_images",
         "paddleocr.perform_ocr", "paddleocr.postprocess_and_finalize")
VIDEO_NODES = ("ffmpeg.extract_keyframes", "ffmpeg.crop_subtitle_images",
               "paddleocr.postprocess_and_finalize")


@pytest.fixture(scope="module")
def burned(storage_root: Path) -> Path:
    return make_subtitled_video(storage_root / "inputs" / "burned.mp4", fps=FPS)[0]


@pytest.fixture(scope="module")
def no_subtitles(storage_root: Path) -> Path:
    return make_subtitled_video(storage_root / "inputs" / "no_subs.mp4", cues=(), seconds=4)[0]


def run_chain(client: httpx.Client, task_id: str, video: Path,
              extra: dict[str, Any] | None = None,
              keyframes: int = 40) -> dict[str, dict[str, Any]]:
    """Each node with only what the caller must give; the rest comes from the stages."""
    out = {}
    for name in CHAIN:
        data = {"video_path": str(video)} if name in VIDEO_NODES else {}
        if name == "ffmpeg.extract_keyframes":
            data["keyframe_sample_count"] = keyframes
        if name in ("paddleocr.detect_subtitle_area", "paddleocr.perform_ocr"):
            data.update(extra or {})
        out[name] = run_task(client, task_id, name, data, timeout=600)
    return out


def squeeze(text: str) -> str:
    return "".join(text.split())


def check_srt(srt: str, truth: list[Cue], label: str) -> None:
    """Same cues, CER over the text (spaces and line breaks ignored), times to 2 frames."""
    events = [e for e in pysubs2.load(srt, format_="srt") if not e.is_comment]
    read = [e.plaintext for e in events]
    assert len(events) == len(truth), read
    cer = jiwer.cer([squeeze(c.text) for c in truth], [squeeze(r) for r in read])
    errors = []
    for event, cue in zip(events, truth, strict=True):
        first, last = cue.frames(FPS)
        errors += [abs(event.start / 1000 - first / FPS), abs(event.end / 1000 - (last + 1) / FPS)]
    print(f"\n{label}: {len(events)} cues, CER {cer:.4f} over "
          f"{sum(len(squeeze(c.text)) for c in truth)} characters, worst timing error "
          f"{max(errors) * FPS:.2f} frames")
    assert cer <= 0.03
    assert max(errors) <= 2 / FPS + 0.001  # SRT keeps milliseconds
    # two-line cues keep their two lines
    assert [r.count("\n") for r in read] == [c.text.count("\n") for c in truth]


def test_burned_subtitles_become_an_srt_then_every_repeat_is_a_hit(
        client: httpx.Client, burned: Path) -> None:
    task_id = unique("ocr")
    out = run_chain(client, task_id, burned)
    area = out["paddleocr.detect_subtitle_area"]
    x1, y1, x2, y2 = area["subtitle_area"]
    assert (x1, x2) == (0, SIZE[0]) and 200 < y1 < 260 and 330 < y2 <= SIZE[1]
    assert area["static_text"] == ["REEL TV"] and area["lines"] == 2
    assert area["confidence"] >= 0.9 and area["engine"] == "rapidocr"
    crop = out["ffmpeg.crop_subtitle_images"]
    stitch = out["paddleocr.create_stitched_images"]
    ocr = out["paddleocr.perform_ocr"]
    assert crop["cropped_images_files_count"] == stitch["frames_count"] == 12 * FPS
    band_height = y2 - y1  # bands per image: as many as fit in 4000 px (with 10 px gaps)
    assert stitch["bands_per_image"] == 4010 // (band_height + 10)
    assert ocr["ocr_calls"] == stitch["stitched_images_count"] == \
        -(-12 * FPS // stitch["bands_per_image"])
    assert ocr["frames_processed"] == 12 * FPS
    final = out["paddleocr.postprocess_and_finalize"]
    assert final["fps"] == FPS and final["subtitles_count"] == len(CUES)
    check_srt(final["srt_file"], list(CUES), "rapidocr, HTTP chain")
    data = json.loads(Path(final["json_file"]).read_text())
    assert [s["text"] for s in data["segments"]] == [e.plaintext for e in
                                                      pysubs2.load(final["srt_file"])]
    # boxes carry full-frame coordinates (the band's offset added back)
    results = json.loads(Path(ocr["ocr_results_path"]).read_text())
    first = CUES[0].frames(FPS)[0]
    box = results["frames"][str(first)][0]["box"]
    assert all(y1 <= y <= y2 for _, y in box)

    first_status = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    for name in CHAIN:
        data = {"video_path": str(burned)} if name in VIDEO_NODES else {}
        r = post_task(client, task_id, name, data)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["reuse_info"]["reuse_hit"] is True
    after = client.get(f"/v1/tasks/{task_id}/status").json()["stages"]
    assert set(after) == set(CHAIN)
    for name, stage in first_status.items():
        assert after[name]["output"] == stage["output"]
        assert after[name]["attempt"] == stage["attempt"] == 1


def test_the_paddleocr_engine_reads_the_same_chain(client: httpx.Client, burned: Path) -> None:
    """PaddleOCR 3 on PaddlePaddle, from the folders scripts/paddleocr_models.py made
    offline, picked per request for both OCR nodes."""
    out = run_chain(client, unique("ocr-paddle"), burned, extra={"engine": "paddleocr"})
    area = out["paddleocr.detect_subtitle_area"]
    assert area["engine"] == out["paddleocr.perform_ocr"]["engine"] == "paddleocr"
    x1, y1, x2, y2 = area["subtitle_area"]
    assert (x1, x2) == (0, SIZE[0]) and 200 < y1 < 260 and 330 < y2 <= SIZE[1]
    assert area["static_text"] == ["REEL TV"] and area["lines"] == 2
    final = out["paddleocr.postprocess_and_finalize"]
    check_srt(final["srt_file"], list(CUES), "paddleocr, HTTP chain")
    results = json.loads(Path(out["paddleocr.perform_ocr"]["ocr_results_path"]).read_text())
    assert results["engine"] == "paddleocr"


@pytest.mark.slow
def test_three_minutes_of_burned_cues_are_all_read_to_the_end(
        client: httpx.Client, storage_root: Path) -> None:
    """75 cues over 3 minutes (4500 frames, 100 keyframes for the band): every one found,
    the last at the end of the video, CER and timing as on the short clip."""
    truth = [Cue(c.text, c.start + 12 * k, c.end + 12 * k) for k in range(15) for c in CUES]
    video, _ = make_subtitled_video(storage_root / "inputs" / "burned_3min.mp4", tuple(truth),
                                    seconds=180, fps=FPS)
    out = run_chain(client, unique("ocr-long"), video, keyframes=100)
    assert out["paddleocr.perform_ocr"]["frames_processed"] == 180 * FPS
    final = out["paddleocr.postprocess_and_finalize"]
    check_srt(final["srt_file"], truth, "rapidocr, 3 minutes")


def test_a_video_without_subtitles_gives_zero_cues_and_real_empty_files(
        client: httpx.Client, no_subtitles: Path) -> None:
    out = run_chain(client, unique("ocr-none"), no_subtitles)
    area = out["paddleocr.detect_subtitle_area"]
    assert area["confidence"] == 0 and area["frames_with_text"] == 0
    assert area["static_text"] == ["REEL TV"]  # the logo is text, not a subtitle
    assert area["subtitle_area"] == [0, 252, 640, 360]  # the lower 30 %
    final = out["paddleocr.postprocess_and_finalize"]
    assert final["subtitles_count"] == 0
    assert Path(final["srt_file"]).is_file() and Path(final["srt_file"]).read_text() == ""
    assert json.loads(Path(final["json_file"]).read_text())["segments"] == []


def test_area_detection_ignores_logo_watermark_and_credits_and_keeps_two_lines(
        client: httpx.Client, storage_root: Path) -> None:
    """Keyframes of a harder video: frames without text, the cues (one with two lines), a
    watermark at subtitle height in a corner, and scrolling credits at the end."""
    folder = storage_root / "inputs" / unique("hard-keyframes")
    folder.mkdir(parents=True)
    font = ImageFont.truetype(str(cjk_font()), 28)
    logo = ImageFont.truetype(str(cjk_font()), 22)
    shown: list[tuple[Cue | None, int | None]] = [(None, None)] * 4
    shown += [(CUES[k % len(CUES)], None) for k in range(20)]
    shown += [(None, 8 * k) for k in range(10)]  # credits crossing the whole frame
    for i, (cue, credits_at) in enumerate(shown):
        Image.fromarray(draw_frame(i, SIZE, cue, font, logo, watermark=True,
                                   credits_at=credits_at)).save(folder / f"frame_{i:04d}.png")
    out = run_task(client, unique("ocr-hard"), "paddleocr.detect_subtitle_area",
                   {"keyframe_dir": str(folder)}, timeout=300)
    x1, y1, x2, y2 = out["subtitle_area"]
    lines = json.loads(Path(out["detection_file"]).read_text())["frames"]
    band = [b for f in lines for b in f["boxes"] if b["band"]]
    assert {b["text"] for b in band} >= {"AI in video production", "字幕识别"}
    assert 200 < y1 < 260 and 330 < y2 <= SIZE[1]  # both lines of the two-line cue
    assert x1 == 0 and x2 < SIZE[0] - 96  # the watermark beside the band is left out
    assert "REEL TV" in out["static_text"] and len(out["static_text"]) == 2  # and "© REEL"
    assert out["frames_used"] == len(shown) and out["frames_with_text"] >= 18
    assert 0.6 <= out["confidence"] < 1  # credits frames hold text outside the band


def test_hd_bands_are_scaled_down_to_stitch_and_boxes_scaled_back(
        client: httpx.Client, storage_root: Path) -> None:
    """1080p bands (1920 px wide) are stitched at 1280 px; the text is still read and the
    boxes come back in the full frame's pixels."""
    folder = storage_root / "inputs" / unique("hd-bands")
    folder.mkdir(parents=True)
    font = ImageFont.truetype(str(cjk_font()), 84)
    logo = ImageFont.truetype(str(cjk_font()), 60)
    area = [0, 780, 1920, 1080]
    for frame in range(3):
        image = draw_frame(frame, (1920, 1080), CUES[1], font, logo)
        Image.fromarray(image[area[1]:area[3]]).save(folder / f"{frame:06d}.jpg")
    task_id = unique("ocr-hd")
    stitch = run_task(client, task_id, "paddleocr.create_stitched_images",
                      {"cropped_images_path": str(folder), "subtitle_area": area})
    manifest = json.loads(Path(stitch["manifest_path"]).read_text())
    assert (manifest["band_width"], manifest["band_height"]) == (1280, 200)
    ocr = run_task(client, task_id, "paddleocr.perform_ocr", {}, timeout=300)
    frames = json.loads(Path(ocr["ocr_results_path"]).read_text())["frames"]
    assert [[b["text"] for b in frames[str(f)]] for f in range(3)] == [[CUES[1].text]] * 3
    for f in range(3):
        (x1, y1), _, (x2, y2), _ = frames[str(f)][0]["box"]
        assert 500 < x1 < x2 < 1420 and 900 < y1 < y2 < 1080  # the line, in frame pixels


@pytest.mark.parametrize(("name", "data", "message"), [
    ("paddleocr.detect_subtitle_area", {"keyframe_dir": "/etc"}, "outside the storage root"),
    ("paddleocr.detect_subtitle_area", {"keyframe_dir": "inputs/burned.mp4"},
     "is not a folder"),
    ("paddleocr.detect_subtitle_area", {"keyframe_dir": "inputs", "engine": "tesseract"},
     "engine"),
    ("paddleocr.create_stitched_images", {"cropped_images_path": "inputs",
                                          "subtitle_area": [10, 10, 5, 20]}, "subtitle_area"),
    ("paddleocr.create_stitched_images", {"cropped_images_path": "inputs",
                                          "concat_batch_size": 0}, "concat_batch_size"),
    ("paddleocr.perform_ocr", {"manifest_path": "inputs/burned.mp4",
                               "multi_frames_path": "inputs", "lang": "fr"}, "lang"),
    ("paddleocr.perform_ocr", {"manifest_path": "inputs/burned.mp4",
                               "multi_frames_path": "https://example.com/x"}, "not a folder"),
    ("paddleocr.postprocess_and_finalize", {"ocr_results_path": "inputs/burned.mp4"},
     "video_path"),
    ("ffmpeg.crop_subtitle_images", {"video_path": "inputs/burned.mp4",
                                     "subtitle_area": [0, 0, 10 ** 40, 10]}, "at most 100000"),
    ("paddleocr.postprocess_and_finalize", {"ocr_results_path": "inputs/burned.mp4",
                                            "video_path": "inputs/burned.mp4",
                                            "min_duration_seconds": -1}, "min_duration"),
])
def test_bad_ocr_requests_are_refused_with_nothing_written(
        client: httpx.Client, burned: Path, name: str, data: dict[str, Any],
        message: str) -> None:
    task_id = unique("ocr-bad")
    r = post_task(client, task_id, name, data)
    assert r.status_code == 422, r.text
    assert message in r.text
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404  # nothing written


def test_a_frame_folder_with_a_link_out_of_the_root_fails_its_stage(
        client: httpx.Client, storage_root: Path) -> None:
    folder = storage_root / "inputs" / unique("linked-frames")
    folder.mkdir(parents=True)
    outside = storage_root.parent / unique("outside-frame")
    Image.new("RGB", (64, 16)).save(outside.with_suffix(".png"))
    Image.new("RGB", (64, 16)).save(folder / "000000.png")
    (folder / "000001.png").symlink_to(outside.with_suffix(".png"))
    task_id = unique("ocr-link")
    r = post_task(client, task_id, "paddleocr.create_stitched_images",
                  {"cropped_images_path": str(folder)})
    assert r.status_code == 202, r.text
    stage = wait_stage(client, task_id, "paddleocr.create_stitched_images")
    assert stage["status"] == "FAILED" and "outside the storage root" in stage["error"]


def results_file(folder: Path, frames: dict[str, list[dict[str, Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ocr_results.json"
    path.write_text(json.dumps({"engine": "rapidocr", "frames": frames}))
    return path


def reading(text: str) -> list[dict[str, Any]]:
    return [{"text": text, "score": 0.99, "box": [[10, 300], [300, 300], [300, 330], [10, 330]]}]


def test_burned_text_shaped_like_srt_stays_inside_its_cue(
        client: httpx.Client, storage_root: Path, burned: Path) -> None:
    """Text that would forge cues in the SRT (style braces that hide a `-->`, escaped line
    breaks, a row of two timestamps) is written so that the file reads back as exactly
    its cues, and correct_subtitles reads the same cues from it."""
    forged = ["Hello\\N\\N2\\N00:00:05,000 --{}> 00:00:09,000\\NINJECTED",
              "Time: 1:23:45.678 and 2:34:56.789", "42\n\n00:00:01,000 --> 00:00:02,000"]
    frames = {str(f): reading(forged[f // 40]) if f % 40 < 30 else [] for f in range(120)}
    path = results_file(storage_root / "inputs" / unique("forged"), frames)
    task_id = unique("ocr-forged")
    final = run_task(client, task_id, "paddleocr.postprocess_and_finalize",
                     {"ocr_results_path": str(path), "video_path": str(burned)})
    events = pysubs2.load(final["srt_file"], format_="srt")
    assert final["subtitles_count"] == len(events) == 3
    assert [round(e.start / 1000, 2) for e in events] == [0.0, 1.6, 3.2]
    assert "INJECTED" in events[0].plaintext and "1\u223623\u223645.678" in events[1].plaintext
    assert not any("-->" in e.plaintext for e in events)


@pytest.mark.parametrize(("manifest", "message"), [
    ({"images": [{"file": "stitched_000000.jpg", "frames": [{"frame": 0, "y": 0}]}] * 2,
      "frames_count": 2}, "named more than once"),
    ({"images": [{"file": "stitched_000000.jpg", "frames": []}], "frames_count": 0},
     "at least 1 item"),
    ({"images": [{"file": "stitched_000000.jpg", "frames": [{"frame": 0, "y": 0}]}],
      "frames_count": 1, "band_height": 10 ** 400}, "band_height"),
])
def test_a_crafted_manifest_fails_its_stage_clearly(
        client: httpx.Client, storage_root: Path, manifest: dict[str, Any],
        message: str) -> None:
    folder = storage_root / "inputs" / unique("crafted")
    folder.mkdir(parents=True)
    Image.new("RGB", (640, 100)).save(folder / "stitched_000000.jpg")
    body = {"version": 1, "band_width": 640, "band_height": 100, "gap": 10, **manifest}
    (folder / "manifest.json").write_text(json.dumps(body))
    task_id = unique("ocr-crafted")
    r = post_task(client, task_id, "paddleocr.perform_ocr",
                  {"manifest_path": str(folder / "manifest.json"),
                   "multi_frames_path": str(folder)})
    assert r.status_code == 202, r.text
    stage = wait_stage(client, task_id, "paddleocr.perform_ocr")
    assert stage["status"] == "FAILED" and message in stage["error"], stage["error"]


def test_results_of_another_video_or_two_names_for_one_frame_fail_clearly(
        client: httpx.Client, storage_root: Path, burned: Path) -> None:
    path = results_file(storage_root / "inputs" / unique("far"), {"0": [], "99999": []})
    task_id = unique("ocr-far")
    post_task(client, task_id, "paddleocr.postprocess_and_finalize",
              {"ocr_results_path": str(path), "video_path": str(burned)})
    stage = wait_stage(client, task_id, "paddleocr.postprocess_and_finalize")
    assert stage["status"] == "FAILED" and "past the video's" in stage["error"]
    folder = storage_root / "inputs" / unique("twice")
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 16)).save(folder / "000001.jpg")
    Image.new("RGB", (64, 16)).save(folder / "1.png")
    post_task(client, task_id, "paddleocr.create_stitched_images",
              {"cropped_images_path": str(folder)})
    stage = wait_stage(client, task_id, "paddleocr.create_stitched_images")
    assert stage["status"] == "FAILED" and "are both frame 1" in stage["error"]
