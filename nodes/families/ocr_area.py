"""paddleocr.detect_subtitle_area: the band where burned-in subtitles sit, from keyframes.

Text is read on up to `sample_count` keyframes, evenly spread. Then:
1. Boxes with fewer than `min_text_len` letters or digits are dropped.
2. *Static* text (a logo, a watermark, a channel name) is text that stays in one place
   with the same words from one sampled frame to another at least half of the samples
   later, shown on at least 80 % of the samples between (and on at least three): it,
   and readings like it there, are set aside. A line of dialogue that comes back now
   and then is not static.
3. The remaining boxes are grouped into *rows* by their vertical centre (within a tenth of
   the text height), densest first. The subtitle row is the one seen on the most frames:
   subtitles are the text that keeps coming back to the same height, while scrolling
   credits and signs move or appear once.
4. Rows directly above or below join the band as its other lines (two-line cues) when
   they are shown together with it on at least two frames and on half of their own
   frames. Rows whose centre lies inside the band are the same line; they count as its
   frames but do not move it.
5. The band spans its lines' boxes plus `y_padding`, across the frame's width, narrowed
   to leave out static text beside it (a watermark at subtitle height, wholly left or
   right of the centre).

`confidence` is the share of frames with (non-static) text that show text on the band's
lines, scaled down when fewer than three frames do. With no text at all, the band is the
lower 30 % of the frame with confidence 0, so the chain still runs and finds no cues.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field

from nodes.engines import EngineCache
from nodes.families.images import image_files, read_rgb
from nodes.families.ocr_engines import (
    EngineName,
    OcrEngine,
    TextBox,
    alike,
    default_engine,
    load_engine,
    norm,
)
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError
from reuse.settings import Settings

PLACE_TOL = 0.03  # of the frame's width / height: the same place on two frames
STATIC_SPAN = 0.5  # share of the sampled frames a static text spans
STATIC_PRESENCE = 0.8  # share of the frames of that span that show it (a repeated line
# of dialogue comes back now and then; a logo stays)
ROW_TOL = 0.1  # of the text height: boxes whose centres are this close share a row
MIN_FRAMES = 3  # fewer frames with subtitle text scale the confidence down
FALLBACK_TOP = 0.7  # no text found: the lower 30 % of the frame
MAX_SIDE = 1920  # larger keyframes are scaled down to this for reading (memory, time)


def load(settings: Settings, device: str) -> EngineCache:
    engines = EngineCache(lambda name: load_engine(name, settings, device))
    engines.get(default_engine(settings))
    return engines


@dataclass
class Row:
    boxes: list[tuple[int, TextBox]]  # (sample, box)

    def __post_init__(self) -> None:
        self.frames = {i for i, _ in self.boxes}
        self.top = min(b.top for _, b in self.boxes)
        self.bottom = max(b.bottom for _, b in self.boxes)
        self.middle = float(np.median([b.middle for _, b in self.boxes]))


@dataclass
class Area:
    box: tuple[int, int, int, int]
    confidence: float
    frames_with_text: int  # sampled frames with text on the band's lines
    text_frames: int  # sampled frames with any non-static text
    lines: int
    static_text: list[str] = field(default_factory=list)
    band_boxes: set[int] = field(default_factory=set)  # id() of the boxes in the band


def near_cells(x: float, y: float, size_x: float, size_y: float) -> list[tuple[int, int]]:
    cx, cy = int(x // size_x), int(y // size_y)
    return [(cx + dx, cy + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]


def static_places(samples: list[list[TextBox]], w: int, h: int) -> list[list[TextBox]]:
    """Groups of boxes that sit in one place with the same text across the samples.
    Places are found through a grid of cells the size of the tolerance (linear time)."""
    tol_x, tol_y = PLACE_TOL * w, PLACE_TOL * h
    places: list[tuple[float, float, list[tuple[int, TextBox]]]] = []
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, boxes in enumerate(samples):
        for b in boxes:
            cx, cy = (b.left + b.right) / 2, b.middle
            found = next((k for cell in near_cells(cx, cy, tol_x, tol_y) for k in grid[cell]
                          if abs(cx - places[k][0]) <= tol_x and abs(cy - places[k][1]) <= tol_y),
                         None)
            if found is None:
                grid[int(cx // tol_x), int(cy // tol_y)].append(len(places))
                places.append((cx, cy, [(i, b)]))
            else:
                places[found][2].append((i, b))
    static = []
    for _, _, members in places:
        mode = Counter(norm(b.text) for _, b in members).most_common(1)[0][0]
        frames = sorted({i for i, b in members if alike(b.text, mode)})
        span = frames[-1] - frames[0] + 1
        if (len(frames) >= MIN_FRAMES and span >= STATIC_SPAN * len(samples)
                and len(frames) >= STATIC_PRESENCE * span):
            static.append([b for _, b in members if alike(b.text, mode)])
    return static


def rows_of(boxes: list[tuple[int, TextBox]]) -> list[Row]:
    """Densest first: box centres are binned by ROW_TOL text heights; the fullest bin (with
    its two neighbours) takes the boxes within that tolerance of its centre as one row;
    then the next (no chaining through moving text; linear time)."""
    if not boxes:
        return []
    tol = max(2.0, ROW_TOL * float(np.median([b.height for _, b in boxes])))
    bins: dict[int, list[tuple[int, TextBox]]] = defaultdict(list)
    for ib in boxes:
        bins[int(ib[1].middle // tol)].append(ib)

    def weight(k: int) -> int:
        return len(bins[k]) + len(bins.get(k - 1, ())) + len(bins.get(k + 1, ()))

    rows: list[Row] = []
    taken: set[int] = set()
    for k in sorted(list(bins), key=weight, reverse=True):
        own = [b.middle for _, b in bins[k] if id(b) not in taken]
        if not own:
            continue
        centre = float(np.median(own))
        row = [ib for j in (k - 1, k, k + 1) for ib in bins.get(j, ())
               if id(ib[1]) not in taken and abs(ib[1].middle - centre) <= tol]
        taken.update(id(b) for _, b in row)
        rows.append(Row(row))
    return rows


def grow_band(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(lines, members): the subtitle row and the rows that are its other lines, which set
    the band's extent; members add the rows whose centre lies inside it (the same line,
    jittered, or text crossing it), which do not move the band."""
    main = max(rows, key=lambda r: (len(r.frames), r.middle))  # ties: the lower one
    lines, members = [main], {id(main): main}
    while True:
        top, bottom = min(r.top for r in lines), max(r.bottom for r in lines)
        height = bottom - top
        shown = set().union(*(r.frames for r in lines))
        new_lines = []
        for row in rows:
            if id(row) in members:
                continue
            together = len(row.frames & shown)
            if top <= row.middle <= bottom:
                members[id(row)] = row
            elif (row.bottom >= top - height and row.top <= bottom + height
                  and together >= 2 and together >= 0.5 * len(row.frames)):
                new_lines.append(row)
        if not new_lines:
            return lines, list(members.values())
        lines += new_lines
        members.update((id(r), r) for r in new_lines)


def find_area(samples: list[list[TextBox]], w: int, h: int, min_text_len: int,
              y_padding: int) -> Area:
    samples = [[b for b in boxes if len(norm(b.text)) >= min_text_len] for boxes in samples]
    static = static_places(samples, w, h)
    static_ids = {id(b) for group in static for b in group}
    static_text = sorted({Counter(b.text for b in g).most_common(1)[0][0] for g in static})
    moving = [(i, b) for i, boxes in enumerate(samples) for b in boxes
              if id(b) not in static_ids]
    text_frames = len({i for i, _ in moving})
    if not moving:
        return Area((0, round(FALLBACK_TOP * h), w, h), 0.0, 0, 0, 0, static_text)
    lines, band = grow_band(rows_of(moving))
    y1 = max(0, int(min(r.top for r in lines)) - y_padding)
    y2 = min(h, int(np.ceil(max(r.bottom for r in lines))) + y_padding)
    x1, x2 = 0, w
    for b in (b for g in static for b in g):  # static text beside the band
        if b.bottom > y1 and b.top < y2:
            if b.left > w / 2:
                x2 = min(x2, int(b.left) - 1)
            elif b.right < w / 2:
                x1 = max(x1, int(np.ceil(b.right)) + 1)
    shown = set().union(*(r.frames for r in lines))
    confidence = len(shown) / text_frames * min(1.0, len(shown) / MIN_FRAMES)
    return Area((x1, y1, x2, y2), round(confidence, 3), len(shown), text_frames, len(lines),
                static_text, {id(b) for r in band for _, b in r.boxes})


class DetectAreaParams(NodeParams):
    keyframe_dir: str | None = Field(default=None, description="Folder of keyframes "
                                     "(JPEG/PNG) under the storage root.")
    sample_count: int = Field(default=300, ge=1, le=2000, description="Keyframes read, "
                              "evenly spread over the folder's (sorted by name).")
    min_text_len: int = Field(default=2, ge=1, le=50, description="Boxes with fewer letters "
                              "or digits are ignored.")
    y_padding: int = Field(default=10, ge=0, le=500, description="Pixels added above and "
                           "below the band.")
    engine: EngineName | None = Field(default=None, description="`rapidocr` or `paddleocr`; "
                                      "default: REELSERVE_OCR_ENGINE.")


def evenly(items: list[Any], count: int) -> list[Any]:
    if len(items) <= count:
        return items
    return [items[round(k * (len(items) - 1) / (count - 1))] if count > 1 else items[0]
            for k in range(count)]


def detect_subtitle_area(params: DetectAreaParams, ctx: RunContext) -> dict[str, Any]:
    assert params.keyframe_dir
    files = evenly(image_files(params.keyframe_dir, ctx), params.sample_count)
    if not files:
        raise InputError(f"{params.keyframe_dir} holds no JPEG or PNG images")
    engine: OcrEngine = ctx.engine.get(params.engine or default_engine(ctx.settings))
    samples, size = [], None
    for k, path in enumerate(files):
        image = read_rgb(path, ctx.settings.storage_root)
        if size is None:
            size = image.shape[1], image.shape[0]
        elif (image.shape[1], image.shape[0]) != size:
            raise InputError(f"{path.name} is {image.shape[1]}x{image.shape[0]}; the other "
                             f"keyframes are {size[0]}x{size[1]}")
        scale = min(1.0, MAX_SIDE / max(size))  # 4K keyframes are read at 1920 px
        if scale < 1:
            shrunk = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            image = np.asarray(Image.fromarray(image).resize(shrunk, Image.Resampling.BILINEAR))
        samples.append([b.scaled(1 / scale) for b in engine.read(image)])
        ctx.report_progress((k + 1) / len(files))
    assert size is not None
    area = find_area(samples, size[0], size[1], params.min_text_len, params.y_padding)
    report = ctx.workdir / "subtitle_area.json"
    report.write_text(json.dumps({
        "subtitle_area": area.box, "frame_size": size, "confidence": area.confidence,
        "engine": engine.name,
        "frames": [{"file": path.name, "boxes": [
            {**b.record(), "band": id(b) in area.band_boxes} for b in boxes]}
            for path, boxes in zip(files, samples, strict=True)],
    }, ensure_ascii=False, indent=1))
    return {"subtitle_area": list(area.box), "confidence": area.confidence,
            "frames_with_text": area.frames_with_text, "frames_used": len(files),
            "text_frames": area.text_frames, "lines": area.lines,
            "static_text": area.static_text, "frame_size": list(size),
            "engine": engine.name, "detection_file": str(report)}


SPECS = (
    NodeSpec(
        name="paddleocr.detect_subtitle_area", family="paddleocr",
        summary="Find the band of burned-in subtitles from text on keyframes.",
        params=DetectAreaParams, run=detect_subtitle_area, load=load,
        reuse_keys=("subtitle_area",),
        outputs=("subtitle_area", "confidence", "frames_with_text", "frames_used",
                 "text_frames", "lines", "static_text", "frame_size", "engine",
                 "detection_file"),
        upstream={"keyframe_dir": (("ffmpeg.extract_keyframes", "keyframe_dir"),)},
        required=("keyframe_dir",), dir_params=("keyframe_dir",),
        num_cpus=0.1, num_gpus=0.05, max_concurrent_runs=1,
    ),
)
