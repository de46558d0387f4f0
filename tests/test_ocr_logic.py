"""The OCR nodes' pure parts: the subtitle band from boxes, lines from boxes, cues from the
text of consecutive frames (fuzzy runs, flicker, misread frames)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from nodes.families.images import read_rgb
from nodes.families.ocr_area import find_area
from nodes.families.ocr_cues import OcrBox, cues_of, frame_text
from nodes.families.ocr_engines import TextBox
from reuse.errors import InputError

W, H = 640, 360
WORDS = ("apple", "river", "stone", "cloud", "music", "green", "table", "horse", "light",
         "paper", "quiet", "storm", "dance", "bread", "ocean")  # subtitles that differ


def box(text: str, left: float, top: float, width: float = 200, height: float = 30) -> TextBox:
    return TextBox(((left, top), (left + width, top), (left + width, top + height),
                    (left, top + height)), text, 0.95)


def ocr_box(text: str, left: float, top: float, height: float = 30) -> TextBox:
    """A box as read back from ocr_results.json."""
    return OcrBox(text=text, box=[(left, top), (left + 100, top), (left + 100, top + height),
                                  (left, top + height)]).text_box()


def test_no_text_gives_the_lower_part_with_zero_confidence() -> None:
    area = find_area([[] for _ in range(10)], W, H, min_text_len=2, y_padding=10)
    assert area.box == (0, 252, W, H) and area.confidence == 0 and area.frames_with_text == 0


def test_a_logo_alone_is_static_not_a_subtitle() -> None:
    frames = [[box("REEL TV", 10, 8, 90)] for _ in range(10)]
    area = find_area(frames, W, H, min_text_len=2, y_padding=10)
    assert area.static_text == ["REEL TV"] and area.confidence == 0


def test_the_subtitle_row_wins_over_a_sign_seen_once_and_gets_its_second_line() -> None:
    frames = [[box(WORDS[k], 220, 300 + k % 3)] for k in range(12)]  # jitter of 2 px
    for k in (2, 5, 8):
        frames[k].append(box(WORDS[-k], 230, 262))  # two-line cues
    frames[4].append(box("EXIT", 40, 120, 60))  # a sign, once
    area = find_area(frames, W, H, min_text_len=2, y_padding=10)
    assert area.box == (0, 252, W, 342) and area.lines == 2
    assert area.frames_with_text == 12 and area.confidence == 1.0


def test_a_single_frame_of_text_has_low_confidence() -> None:
    frames = [[] for _ in range(9)] + [[box("Chapter one", 220, 300)]]
    area = find_area(frames, W, H, min_text_len=2, y_padding=10)
    assert area.confidence == round(1 / 3, 3)


def test_short_boxes_are_ignored() -> None:
    frames = [[box("a", 220, 300)] for _ in range(5)]
    assert find_area(frames, W, H, min_text_len=2, y_padding=10).confidence == 0


def test_frame_text_reads_lines_top_down_and_joins_cjk_without_spaces() -> None:
    boxes = [ocr_box("production", 300, 300), ocr_box("AI in video", 100, 302),
             ocr_box("人工智能", 300, 260), ocr_box("我们今天讨论", 100, 261)]
    assert frame_text(boxes) == "我们今天讨论人工智能\nAI in video production"
    assert frame_text([ocr_box("a --> b", 0, 0)]) == "a -> b"  # cannot break an SRT


def frames(*spans: tuple[str, int]) -> list[tuple[int, str]]:
    """Consecutive frames: (text, how many frames)."""
    out: list[tuple[int, str]] = []
    for text, count in spans:
        out += [(len(out), text) for _ in range(count)]
    return [(i, t) for i, (_, t) in enumerate(out)]


def test_ocr_noise_and_a_misread_frame_do_not_split_a_cue() -> None:
    texts = frames(("", 5), ("Welcome to the show", 10), ("Welcome to tha show", 3),
                   ("w", 1), ("Welcome to the show", 6), ("", 4))
    cues = cues_of(texts, fps=25, min_duration=0.2)
    assert [(c.text, c.start, c.end) for c in cues] == [("Welcome to the show", 0.2, 1.0)]


def test_flicker_is_dropped_and_different_cues_stay_apart() -> None:
    texts = frames(("你好\uff0c欢迎收看", 20), ("", 2), ("字幕", 2), ("", 3), ("字幕识别", 15),
                   ("谢谢观看", 15))
    cues = cues_of(texts, fps=25, min_duration=0.2)
    assert [(c.text, round(c.start * 25), round(c.end * 25)) for c in cues] == [
        ("你好\uff0c欢迎收看", 0, 20), ("字幕识别", 27, 42), ("谢谢观看", 42, 57)]


def test_the_reading_most_frames_agree_on_is_the_cue_text() -> None:
    texts = frames(("Thank you for watchimg!", 3), ("Thank you for watching!", 8),
                   ("Thank yau for watching!", 2))
    assert [c.text for c in cues_of(texts, fps=25, min_duration=0.2)] == [
        "Thank you for watching!"]


def test_centred_cues_in_one_place_are_not_a_logo() -> None:
    """Few samples, two of them the same cue: the place is the subtitles', not static."""
    frames = [[box("REEL TV", 10, 8, 90)], [box("REEL TV", 10, 8, 90), box("Welcome", 220, 300)],
              [box("REELTV", 10, 8, 90), box("你好世界", 260, 300, 120)],
              [box("REEL TV", 10, 8, 90), box("你好世界", 260, 301, 120)]]
    area = find_area(frames, W, H, min_text_len=2, y_padding=10)
    assert area.static_text == ["REEL TV"] and area.frames_with_text == 3
    assert area.box == (0, 290, W, 341)


def test_a_cue_that_comes_back_through_the_video_is_not_static() -> None:
    """The same two-line cue every fifth sample (a catchphrase): still the subtitles."""
    frames = []
    for k in range(40):
        boxes = [box("REEL TV", 10, 8, 90)]
        if k % 5 == 1:
            boxes += [box("我们今天讨论人工智能", 230, 262),
                      box("AI in video production", 220, 300)]
        elif k % 5 in (2, 3):
            boxes.append(box(WORDS[k % len(WORDS)], 220, 300))
        frames.append(boxes)
    area = find_area(frames, W, H, min_text_len=2, y_padding=10)
    assert area.static_text == ["REEL TV"]
    assert area.box == (0, 252, W, 340) and area.lines == 2


def test_a_frame_text_is_bounded_and_empty_readings_are_skipped() -> None:
    """An attacker's frame of 1800 boxes of 1000 letters is cut to 500 characters (the
    fuzzy comparison is quadratic in them); an empty box beside a CJK one is no error."""
    huge = [ocr_box("x" * 1000, k * 10, 300) for k in range(1800)]
    assert len(frame_text(huge)) == 500
    assert frame_text([ocr_box("你好", 0, 300), ocr_box("", 120, 300)]) == "你好"


def test_burned_text_cannot_forge_srt_rows() -> None:
    """Style braces, backslash breaks, control characters and a row of two timestamps
    (an SRT timing row to a reader) are neutralised; the text stays readable."""
    texts = frames(("Hello\\N\\N2\\N00:00:05,000 --{}> 00:00:09,000\\NINJECTED", 10), ("", 3),
                   ("Time: 1:23:45.678 and 2:34:56.789", 10), ("", 3), ("bell\x07 nul\x00", 10))
    cues = cues_of([(i, frame_text([ocr_box(t, 0, 0)]) if t else "") for i, t in texts],
                   fps=25, min_duration=0.2)
    assert [c.text for c in cues] == [
        "Hello\uff3cN\uff3cN2\uff3cN00\u223600\u223605,000 --\uff5b\uff5d> "
        "00\u223600\u223609,000\uff3cNINJECTED",
        "Time: 1\u223623\u223645.678 and 2\u223634\u223656.789",
        "bell nul"]


def test_an_image_is_read_only_as_a_regular_file_under_the_root(tmp_path: Path) -> None:
    """What is opened is checked, not what was listed: a FIFO does not block, a link
    swapped in to a file outside the root is refused."""
    root, outside = tmp_path / "root", tmp_path / "outside.png"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(outside)
    Image.new("RGB", (8, 8)).save(root / "000000.png")
    assert read_rgb(root / "000000.png", root).shape == (8, 8, 3)
    os.mkfifo(root / "000001.png")
    with pytest.raises(InputError, match="not a regular file"):
        read_rgb(root / "000001.png", root)
    (root / "000002.png").symlink_to(outside)
    with pytest.raises(InputError, match="outside the storage root"):
        read_rgb(root / "000002.png", root)
