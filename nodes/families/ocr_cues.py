"""paddleocr.postprocess_and_finalize: text per frame -> timed subtitle cues, SRT + JSON.

A frame's text is its boxes grouped into lines (top to bottom, each read left to right;
no space is put between two CJK characters). Then, over the frames in order:
1. consecutive frames whose texts are alike (rapidfuzz ratio >= SIMILAR on the letters
   and digits, so OCR noise between frames of one subtitle does not split it) form runs;
2. runs shorter than `min_duration_seconds` are dropped (flicker, misreads, fades);
3. neighbouring runs that are alike and apart by at most that duration (or GAP_FRAMES)
   are joined again: a misread frame inside a subtitle does not cut it in two.
A cue's text is the reading most of its frames agree on; it starts at its first frame and
ends after its last, at the video's real frame rate (`frame / fps`: constant frame rate).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pysubs2
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from nodes.families.images import MAX_IMAGES
from nodes.families.ocr_engines import TextBox, alike, norm
from nodes.families.segments import (
    Segment,
    cue_text,
    is_cjk,
    load_json,
    read_text_input,
    save_subtitles,
)
from nodes.media import MediaError, open_input
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError, TooLarge
from reuse.storage import safe_name

GAP_FRAMES = 2  # a join bridges at least this many frames
MAX_BOXES = 200  # per frame
MAX_FRAME_CHARS = 500  # of a frame's text (a subtitle holds ~100): readings are compared


class OcrBox(BaseModel):
    """A box of ocr_results.json (TextBox.record's form)."""

    model_config = ConfigDict(allow_inf_nan=False)

    text: str = Field(max_length=1000)
    score: float = 1.0
    box: list[tuple[float, float]] = Field(min_length=4, max_length=4)

    def text_box(self) -> TextBox:
        return TextBox(tuple(self.box), self.text, self.score)


Frame = Annotated[int, Field(ge=0, lt=10**9)]
Boxes = TypeAdapter(list[OcrBox])


class OcrResults(BaseModel):
    """ocr_results.json of perform_ocr (other keys are kept there for people). A frame's
    boxes are checked and turned into its text one frame at a time (`texts`), so memory
    holds the parsed JSON and the texts, not a model per box."""

    engine: str | None = Field(default=None, max_length=100)
    frames: dict[Frame, list[Any]]

    def texts(self) -> list[tuple[int, str]]:
        out = []
        for frame, raw in sorted(self.frames.items()):
            if len(raw) > MAX_BOXES:
                raise TooLarge(f"frame {frame} has more than {MAX_BOXES} boxes")
            try:
                boxes = [b.text_box() for b in Boxes.validate_python(raw)]
                out.append((frame, frame_text(boxes)))
            except ValidationError as exc:
                raise InputError(f"frame {frame}: {exc}") from None
        return out


def join_pieces(texts: list[str]) -> str:
    out = ""
    for text in texts:
        glue = "" if not out or (is_cjk(out[-1]) and is_cjk(text[0])) else " "
        out += glue + text
    return out


def frame_text(boxes: list[TextBox]) -> str:
    """Lines top to bottom (boxes overlapping vertically by half a line share one)."""
    rows: list[list[TextBox]] = []
    for box in sorted(boxes, key=lambda b: b.top):
        if rows and box.top < rows[-1][-1].bottom - 0.5 * (box.bottom - box.top):
            rows[-1].append(box)
        else:
            rows.append([box])
    lines = [join_pieces([t for b in sorted(row, key=lambda b: b.left) if (t := b.text.strip())])
             for row in rows]
    return cue_text("\n".join(lines))[:MAX_FRAME_CHARS]


@dataclass
class Run:
    first: int
    last: int
    readings: Counter[str] = field(default_factory=Counter)

    @property
    def text(self) -> str:
        return self.readings.most_common(1)[0][0]

    def alike(self, text: str) -> bool:
        return alike(self.text, text)


def runs_of(texts: list[tuple[int, str]]) -> list[Run]:
    runs: list[Run] = []
    current: Run | None = None
    for frame, text in texts:
        if not norm(text):
            current = None
            continue
        if current and frame == current.last + 1 and current.alike(text):
            current.last = frame
        else:
            current = Run(frame, frame)
            runs.append(current)
        current.readings[text] += 1
    return runs


def cues_of(texts: list[tuple[int, str]], fps: float, min_duration: float) -> list[Segment]:
    min_frames = min_duration * fps
    kept = [r for r in runs_of(texts) if r.last - r.first + 1 >= min_frames]
    bridge = max(GAP_FRAMES, round(min_frames))
    joined: list[Run] = []
    for run in kept:
        prev = joined[-1] if joined else None
        if prev and run.first - prev.last - 1 <= bridge and prev.alike(run.text):
            prev.last = run.last
            prev.readings.update(run.readings)
        else:
            joined.append(run)
    return [Segment(start=r.first / fps, end=(r.last + 1) / fps, text=r.text) for r in joined]


class FinalizeParams(NodeParams):
    ocr_results_path: str | None = Field(default=None, description="ocr_results.json of "
                                         "perform_ocr.")
    video_path: str = Field(description="The video the frames came from (its frame rate "
                            "times the cues).")
    min_duration_seconds: float = Field(default=0.2, ge=0, le=10, description="Text shown "
                                        "for less time is dropped as flicker.")
    output_filename: str = Field(default="ocr_subtitles", max_length=100, description="Base "
                                 "name of the files (reduced to [A-Za-z0-9._-]).")


def read_results(value: str, ctx: RunContext) -> OcrResults:
    path, text = read_text_input(value, ctx)
    try:
        results = OcrResults.model_validate(load_json(text, Path(path).name))
    except ValueError as exc:
        raise InputError(f"{Path(path).name} is not an OCR results file: {exc}") from exc
    if len(results.frames) > MAX_IMAGES:
        raise TooLarge(f"{Path(path).name} has more than {MAX_IMAGES} frames")
    return results


def postprocess_and_finalize(params: FinalizeParams, ctx: RunContext) -> dict[str, Any]:
    assert params.ocr_results_path
    results = read_results(params.ocr_results_path, ctx)
    _, info = open_input(params.video_path, ctx)
    if not info.fps or info.fps <= 0:
        raise MediaError(f"{params.video_path}: cannot read the frame rate")
    last = max(results.frames, default=-1)
    if info.frame_count and last > info.frame_count * 1.01 + 10:  # the count is estimated
        raise InputError(f"frame {last} of the OCR results is past the video's "
                         f"{info.frame_count} frames: not this video's results")
    texts = results.texts()
    cues = cues_of(texts, info.fps, params.min_duration_seconds)
    base = str(ctx.workdir / safe_name(params.output_filename, "ocr_subtitles"))
    # pysubs2 writes \N as a line break
    srt = save_subtitles([c.model_copy(update={"text": c.text.replace("\n", r"\N")})
                          for c in cues], base + ".srt", "srt")
    if len(pysubs2.load(srt, format_="srt")) != len(cues):  # cue_text makes this hold
        raise RuntimeError(f"{srt} does not read back as its {len(cues)} cues")
    meta = {"source": "paddleocr", "engine": results.engine, "fps": info.fps,
            "frames_processed": len(texts), "min_duration_seconds": params.min_duration_seconds}
    data = {"metadata": meta, "segments": [c.record(i, words=False) for i, c in enumerate(cues)]}
    Path(base + ".json").write_text(json.dumps(data, ensure_ascii=False, indent=2))
    return {"srt_file": srt, "json_file": base + ".json", "subtitles_count": len(cues),
            "fps": info.fps, "frames_processed": len(texts)}


SPECS = (
    NodeSpec(
        name="paddleocr.postprocess_and_finalize", family="paddleocr",
        summary="Merge per-frame text into timed cues at the video's frame rate; SRT + JSON.",
        params=FinalizeParams, run=postprocess_and_finalize,
        reuse_keys=("srt_file",),
        outputs=("srt_file", "json_file", "subtitles_count", "fps", "frames_processed"),
        upstream={"ocr_results_path": (("paddleocr.perform_ocr", "ocr_results_path"),)},
        required=("ocr_results_path", "video_path"),
        file_params=("ocr_results_path", "video_path"),
        max_concurrent_runs=1,  # a 64 MB results file parses to ~1 GB of Python objects
    ),
)
