"""The OCR nodes' pure parts: the subtitle band from boxes, lines from boxes, cues from the
text of consecutive frames (fuzzy runs, flicker, misread frames)."""

from __future__ import annotations

from nodes.families.ocr_area import find_area
from nodes.families.ocr_cues import OcrBox, cues_of, frame_text
from nodes.families.ocr_engines import TextBox

W, H = 640, 360
WORDS = ("apple", "river", "stone", "cloud", "music", "green", "table", "horse", "light",
         "paper", "quiet", "storm", "dance", "bread", "ocean")  # subtitles that differ


def box(text: str, left: float, top: float, width: float = 200, height: float = 30) -> TextBox:
    return TextBox(((left, top), (left + width, top), (left + width, top + height),
                    (left, top + height)), text, 0.95)


def ocr_box(text: str, left: float, top: float, height: float = 30) -> OcrBox:
    return OcrBox(text=text, box=[(left, top), (left + 100, top), (left + 100, top + height),
                                  (left, top + height)])


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
