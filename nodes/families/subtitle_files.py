"""wservice.generate_subtitle_files: segments -> SRT, speaker SRT, WebVTT, ASS and JSON.

Every cue keeps the line limits: at most `max_lines` lines of `max_line_chars` characters
(`max_line_chars_cjk` for Chinese/Japanese/Korean text, counted by character and broken
between any two characters) and at most `max_duration` seconds. A longer segment becomes
several cues, cut between words at their timestamps (without words: at spaces, or between
characters for CJK, with the time shared by character count). The subtitle files are
written by pysubs2; an ASS line's Name field is its speaker.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from nodes.families.merge import assign_segments
from nodes.families.segments import (
    Segment,
    SegmentsInput,
    Word,
    cue_text,
    cut_like_words,
    is_cjk,
    join_words,
    pieces_of,
    read_turns,
    save_subtitles,
    segments_input,
    source_of,
    speakers_of,
)
from nodes.spec import NodeSpec, RunContext
from reuse.storage import safe_name

CJK_LANGUAGES = ("zh", "ja", "ko", "yue", "cmn")


@dataclass(frozen=True)
class Limits:
    max_line_chars: int
    max_lines: int
    max_duration: float
    min_duration: float


def wrap(text: str, width: int, cjk: bool) -> list[str]:
    """Lines of at most `width` characters (a longer word is broken); the text's own line
    breaks become spaces (a blank line would end a cue in SRT and WebVTT)."""
    text = " ".join(cue_text(text).split())
    if cjk:
        compact = "".join(text.split()) if is_cjk(text) else text
        return [compact[i:i + width] for i in range(0, len(compact), width)] or [""]
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def fits(text: str, limits: Limits, cjk: bool) -> bool:
    return len(wrap(text, limits.max_line_chars, cjk)) <= limits.max_lines


def split_words(seg: Segment, limits: Limits, cjk: bool) -> list[Segment]:
    """Cut between words so that each piece fits the lines and the duration."""
    pieces: list[list[Word]] = [[]]
    for word in seg.words:
        current = pieces[-1]
        if current and (not fits(join_words([*current, word]), limits, cjk)
                        or word.end - current[0].start > limits.max_duration):
            pieces.append([])
        pieces[-1].append(word)
    return pieces_of(pieces, seg.speaker)


def build_cues(segments: list[Segment], limits: Limits, cjk: bool) -> list[Segment]:
    cues: list[Segment] = []
    for seg in segments:
        if not seg.text.strip() and not seg.words:
            continue
        ok = fits(seg.text, limits, cjk) and seg.duration <= limits.max_duration
        if ok:
            cues.append(seg)
        elif seg.words:
            cues += split_words(seg, limits, cjk)
        else:
            cues += cut_like_words(seg, lambda s: split_words(s, limits, cjk))
    # a cue shorter than min_duration is held longer where the next cue leaves room
    for i, cue in enumerate(cues):
        if cue.duration < limits.min_duration:
            room = cues[i + 1].start if i + 1 < len(cues) else cue.start + limits.min_duration
            end = min(cue.start + limits.min_duration, max(cue.end, room))
            cues[i] = cue.model_copy(update={"end": end})
    return cues


class SubtitleParams(SegmentsInput):
    diarization_file: str | None = Field(
        default=None, description="Adds speakers to segments that have none (by overlap).")
    output_filename: str = Field(default="subtitles", max_length=100,
                                 description="Base name of the files (reduced to "
                                 "[A-Za-z0-9._-]).")
    language: str | None = Field(default=None, max_length=16, description="Language code; "
                                 "zh/ja/ko use the CJK line limit. Default: from the "
                                 "segments file, else detected from the text.")
    max_line_chars: int = Field(default=42, ge=8, le=200)
    max_line_chars_cjk: int = Field(default=16, ge=4, le=100)
    max_lines: int = Field(default=2, ge=1, le=4)
    max_duration: float = Field(default=7.0, ge=1.0, le=60.0, description="Seconds per cue.")
    min_duration: float = Field(default=0.8, ge=0.0, le=10.0,
                                description="A shorter cue is held longer if the next "
                                "cue leaves room.")


def generate_subtitle_files(params: SubtitleParams, ctx: RunContext) -> dict[str, Any]:
    segments, meta = segments_input(params, ctx)
    if params.diarization_file and any(s.speaker is None for s in segments):
        assigned = assign_segments(segments, read_turns(params.diarization_file, ctx))
        segments = [s if s.speaker else a for s, a in zip(segments, assigned, strict=True)]
    language = params.language or meta.get("language")
    cjk = (language or "").split("-")[0] in CJK_LANGUAGES if language \
        else is_cjk("".join(s.text for s in segments[:200]))
    limits = Limits(params.max_line_chars_cjk if cjk else params.max_line_chars,
                    params.max_lines, params.max_duration, params.min_duration)
    # line breaks the players show (pysubs2 writes \N as a new line)
    cues = [c.model_copy(update={"text": r"\N".join(wrap(c.text, limits.max_line_chars, cjk))})
            for c in build_cues(segments, limits, cjk)]
    base = str(ctx.workdir / safe_name(params.output_filename, "subtitles"))
    files: dict[str, str | None] = {
        "basic": save_subtitles(cues, base + ".srt", "srt"),
        "vtt": save_subtitles(cues, base + ".vtt", "vtt"),
        "ass": save_subtitles(cues, base + ".ass", "ass"),
        "with_speakers": None, "word_timestamps": None,
    }
    speakers = speakers_of(cues)
    if speakers:
        files["with_speakers"] = save_subtitles(cues, base + ".speakers.srt", "srt",
                                                with_speaker=True)
    if any(s.words for s in segments):
        files["word_timestamps"] = words_path = base + ".words.json"
        words = {"segments": [s.record(i) for i, s in enumerate(segments)]}
        with open(words_path, "w", encoding="utf-8") as f:
            json.dump(words, f, ensure_ascii=False, indent=2)
    records = [{**c.record(i, words=False), "text": c.text.replace(r"\N", "\n")}
               for i, c in enumerate(cues)]
    files["json"] = json_path = base + ".json"
    metadata = {"language": language, "cjk": cjk, "source": source_of(meta["path"], ctx),
                "subtitles_count": len(cues), "speakers": speakers,
                "limits": vars(limits)}
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump({"metadata": metadata, "segments": records}, f, ensure_ascii=False, indent=2)
    return {
        "subtitle_path": files["basic"], "speaker_srt_path": files["with_speakers"],
        "vtt_path": files["vtt"], "ass_path": files["ass"],
        "word_timestamps_json_path": files["word_timestamps"], "json_path": files["json"],
        "subtitle_files": files, "subtitles_count": len(cues), "speakers": speakers,
        "language": language,
    }


SPECS = (
    NodeSpec(
        name="wservice.generate_subtitle_files", family="wservice",
        summary="Segments to SRT, speaker SRT, WebVTT, ASS and JSON within line limits.",
        params=SubtitleParams, run=generate_subtitle_files,
        reuse_keys=("subtitle_path",),
        outputs=("subtitle_path", "speaker_srt_path", "vtt_path", "ass_path",
                 "word_timestamps_json_path", "json_path", "subtitle_files",
                 "subtitles_count", "speakers", "language"),
        upstream={
            "segments_file": (("wservice.merge_with_word_timestamps", "merged_segments_file"),
                              ("wservice.merge_speaker_segments", "merged_segments_file"),
                              ("wservice.ai_optimize_subtitles", "optimized_file_path"),
                              ("faster_whisper.transcribe_audio", "segments_file")),
            "diarization_file": (("pyannote_audio.diarize_speakers", "diarization_file"),),
        },
        required=("segments_data|segments_file",),
        file_params=("segments_file", "diarization_file"),
    ),
)
