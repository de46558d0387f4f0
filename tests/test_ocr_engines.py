"""The embedded OCR engine (rapidocr: PP-OCR as ONNX) on frames of the burned-subtitle
generator: Chinese and English, one and two lines, a logo elsewhere; character error rate
printed and bounded (the OCR nodes build on this)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import jiwer
import numpy as np
import pytest
from PIL import ImageFont

from nodes.families.ocr_engines import OcrEngine, TextBox, load_engine
from nodes.families.segments import is_cjk
from nodes.media import ffmpeg_binary
from reuse.errors import InputError
from reuse.settings import Settings
from tests.burned_subtitles import CUES, cjk_font, draw_frame, make_subtitled_video

SIZE = (640, 360)


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return load_engine("rapidocr")


def lines_of(boxes: list[TextBox]) -> list[str]:
    """Boxes grouped into rows (overlapping vertically), each row read left to right."""
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: b.top):
        if rows and box.top < rows[-1][-1].bottom - 0.5 * (box.bottom - box.top):
            rows[-1].append(box)
        else:
            rows.append([box])
    out = []
    for row in rows:
        texts = [b.text for b in sorted(row, key=lambda b: b.left)]
        out.append(("" if is_cjk("".join(texts)) else " ").join(texts))
    return out


def test_burned_lines_are_read_back(engine: OcrEngine) -> None:
    font = ImageFont.truetype(str(cjk_font()), 28)
    logo = ImageFont.truetype(str(cjk_font()), 22)
    truth, read = [], []
    for cue in CUES:
        for frame in (0, 25):  # the background moves between them
            boxes = engine.read(draw_frame(frame, SIZE, cue, font, logo))
            band = [b for b in boxes if b.top > 0.6 * SIZE[1]]  # the subtitle band
            assert [b for b in boxes if b.bottom < 0.2 * SIZE[1]], "the logo is text too"
            truth.append(cue.text)
            read.append("\n".join(lines_of(band)))
    squeeze = [t.replace(" ", "").replace("\n", "") for t in truth]
    cer = jiwer.cer(squeeze, [r.replace(" ", "").replace("\n", "") for r in read])
    cer_spaces = jiwer.cer(truth, read)
    print(f"\nrapidocr on burned subtitles: CER {cer:.3f} (counting spaces and line breaks "
          f"{cer_spaces:.3f}) over {sum(map(len, squeeze))} characters")
    assert cer <= 0.03
    assert [r.count("\n") for r in read] == [t.count("\n") for t in truth]  # two-line cues


def test_a_frame_without_subtitles_has_no_text_in_the_band(engine: OcrEngine) -> None:
    font = ImageFont.truetype(str(cjk_font()), 28)
    boxes = engine.read(draw_frame(7, SIZE, None, font, ImageFont.truetype(str(cjk_font()), 22)))
    assert [b for b in boxes if b.top > 0.6 * SIZE[1]] == []
    assert any("REEL" in b.text for b in boxes)  # only the logo


def test_the_generated_video_shows_each_cue_on_its_frames(engine: OcrEngine,
                                                          tmp_path: Path) -> None:
    """The generator's truth holds in the encoded video: each cue's first and last frame
    show it, the frames just outside do not."""
    fps = 25
    video, cues = make_subtitled_video(tmp_path / "burned.mp4", fps=fps)
    frames = decode_frames(video)
    assert len(frames) == 12 * fps
    for cue in cues[:3]:
        first, last = cue.frames(fps)
        for index, shown in ((first - 1, False), (first, True), (last, True), (last + 1, False)):
            band = [b for b in engine.read(frames[index]) if b.top > 0.6 * SIZE[1]]
            assert bool(band) == shown, (cue.text, index)


def decode_frames(video: Path) -> list[np.ndarray]:
    raw = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", str(video),
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], check=True,
                         capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, SIZE[1], SIZE[0], 3)
    return list(frames)


def test_the_paddleocr_engine_needs_its_model_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="REELSERVE_PADDLEOCR_MODEL_DIR"):
        load_engine("paddleocr", Settings(storage_root=tmp_path))
    with pytest.raises(InputError, match="not a PaddleOCR model folder"):
        load_engine("paddleocr", Settings(storage_root=tmp_path, paddleocr_model_dir=tmp_path))
