"""Videos with burned-in subtitles at known times, for the OCR tests and bench.

Frames are drawn with Pillow (a moving gradient background, a static logo in the top-left
corner, the subtitle lines centred near the bottom with an outline, as players and
fansubs burn them) and piped to ffmpeg (H.264). The truth is returned as cues with their
first and last frame, so tests can check text and timing to the frame.

Chinese needs a CJK font: Debian's `fonts-wqy-microhei` (`make system-deps` installs it
when run as root), or REELSERVE_TEST_CJK_FONT pointing at a .ttf/.ttc.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nodes.media import ffmpeg_binary

CJK_FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


@dataclass(frozen=True)
class Cue:
    text: str  # lines joined with "\n"
    start: float  # seconds
    end: float

    def frames(self, fps: float) -> tuple[int, int]:
        """First and last frame that show the cue."""
        return round(self.start * fps), round(self.end * fps) - 1


# Chinese and English, one and two lines, varied lengths, gaps between most cues
CUES = (
    Cue("你好\uff0c欢迎收看今天的节目", 0.5, 2.5),
    Cue("Welcome to the show", 3.0, 4.6),
    Cue("我们今天讨论人工智能\nAI in video production", 5.0, 7.5),
    Cue("字幕识别", 7.6, 8.8),
    Cue("Thank you for watching!", 9.5, 11.0),
)


def cjk_font() -> Path:
    candidates = [os.environ.get("REELSERVE_TEST_CJK_FONT", ""), *CJK_FONTS]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("no CJK font: install Debian's fonts-wqy-microhei (make system-deps) "
                       "or set REELSERVE_TEST_CJK_FONT to a .ttf/.ttc with Chinese glyphs")


CREDITS = ("Directed by Lin Mei", "导演 林梅", "Music by Zhou Kai", "音乐 周凯",
           "Edited by Anna Berg", "剪辑 安娜", "Produced by Reel Studio", "出品 影视工作室")


def draw_frame(index: int, size: tuple[int, int], cue: Cue | None,
               font: ImageFont.FreeTypeFont, logo_font: ImageFont.FreeTypeFont,
               watermark: bool = False, credits_at: int | None = None) -> np.ndarray:
    """One frame: background, logo, the cue's lines; optionally a watermark at subtitle
    height in the bottom-right corner, and credits scrolled up by `credits_at` frames."""
    w, h = size
    x = np.linspace(0, 1, w)[None, :]
    y = np.linspace(0, 1, h)[:, None]
    phase = index / 50
    rgb = np.stack([120 + 80 * np.sin(2 * np.pi * (x + phase)) * y,
                    100 + 60 * np.cos(2 * np.pi * (y + phase)) + 0 * x,
                    140 + 70 * np.sin(2 * np.pi * (x * y + phase))], axis=-1)
    img = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.text((12, 10), "REEL TV", font=logo_font, fill=(250, 220, 60),
              stroke_width=2, stroke_fill=(0, 0, 0))
    if watermark:
        draw.text((w - 96, h - 64), "© REEL", font=logo_font, fill=(220, 220, 220),
                  stroke_width=1, stroke_fill=(0, 0, 0))
    if credits_at is not None:  # lines 60 px apart moving up 6 px a frame, from below
        for k, line in enumerate(CREDITS):
            top = h + 60 * k - 6 * credits_at
            if -40 < top < h:
                width = draw.textlength(line, font=font)
                draw.text(((w - width) / 2, top), line, font=font, fill=(255, 255, 255),
                          stroke_width=3, stroke_fill=(0, 0, 0))
    if cue is not None:
        lines = cue.text.split("\n")
        line_h = font.size + 10
        top = h - 24 - line_h * len(lines)
        for k, line in enumerate(lines):
            width = draw.textlength(line, font=font)
            draw.text(((w - width) / 2, top + k * line_h), line, font=font,
                      fill=(255, 255, 255), stroke_width=3, stroke_fill=(0, 0, 0))
    return np.asarray(img)


def make_subtitled_video(path: Path, cues: tuple[Cue, ...] = CUES, seconds: float = 12.0,
                         fps: int = 25, size: tuple[int, int] = (640, 360),
                         font_size: int = 28) -> tuple[Path, list[Cue]]:
    """Burn `cues` into a video of `seconds`; returns it and the cues (the truth)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(str(cjk_font()), font_size)
    logo_font = ImageFont.truetype(str(cjk_font()), 22)
    frames = round(seconds * fps)
    shown: list[Cue | None] = [None] * frames
    for cue in cues:
        first, last = cue.frames(fps)
        for i in range(max(0, first), min(frames, last + 1)):
            shown[i] = cue
    proc = subprocess.Popen([
        ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}", "-r", str(fps),
        "-i", "-", "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=16000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(path)], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for i in range(frames):
        proc.stdin.write(draw_frame(i, size, shown[i], font, logo_font).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed writing {path}")
    return path, list(cues)
