"""wservice.correct_subtitles / ai_optimize_subtitles: LLM edits of subtitle text.

Both keep every line and its times; only the text changes (`llm.LineEditor`).
- correct_subtitles proofreads a subtitle file (SRT, WebVTT, ASS) and writes the same
  format, styles and times kept.
- ai_optimize_subtitles cleans transcription segments (punctuation, casing, fillers,
  obvious mis-hearings) and writes a segments file; each segment keeps `original_text`.
  Word timings no longer match edited text, so the optimized segments carry no words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pysubs2
from pydantic import Field

from nodes.families.llm import LineEditor, LLMParams
from nodes.families.segments import read_segments, read_text_input, source_of
from nodes.spec import NodeSpec, RunContext
from reuse.errors import InputError, brief

CORRECT = ("You proofread subtitles. Fix spelling, grammar, punctuation and obvious "
           "speech-recognition mistakes in each line of `lines`; keep the meaning, the "
           "language and the speaker's style; change nothing that is right. `context` holds "
           "the lines just before, for reference only.")
OPTIMIZE = ("You clean up speech-recognition segments for subtitles. In each line of "
            "`lines`: add punctuation and casing, remove filler words and stutters, fix "
            "obvious mis-hearings; keep the meaning and the language. `context` holds the "
            "lines just before, for reference only.")


class CorrectParams(LLMParams):
    subtitle_path: str | None = Field(default=None, description="Subtitle file (SRT, WebVTT "
                                      "or ASS).")


class OptimizeParams(LLMParams):
    segments_file: str | None = Field(default=None, description="Transcription segments.")
    batch_size: int = Field(default=50, ge=1, le=200, description="Segments per request.")
    overlap_size: int = Field(default=10, ge=0, le=50, description="Segments before each "
                              "batch sent again as context (at most batch_size).")


def load_subtitles(path: str, text: str, name: str) -> tuple[pysubs2.SSAFile, str]:
    """The file's subtitles and format; an empty file (no speech) is an empty one."""
    if not text.strip():
        suffix = Path(path).suffix.lstrip(".").lower()
        return pysubs2.SSAFile(), suffix if suffix in ("srt", "vtt", "ass") else "srt"
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except (pysubs2.exceptions.Pysubs2Error, ValueError, KeyError) as exc:
        raise InputError(f"{brief(name)} is not a subtitle file: {exc}") from exc
    return subs, subs.format or "srt"


def correct_subtitles(params: CorrectParams, ctx: RunContext) -> dict[str, Any]:
    assert params.subtitle_path
    path, text = read_text_input(params.subtitle_path, ctx)
    subs, fmt = load_subtitles(path, text, params.subtitle_path)
    events = [e for e in subs if not e.is_comment]
    with LineEditor(ctx.settings, params) as editor:
        after, stats = editor.edit_lines([e.plaintext for e in events],
                                         params.system_prompt or CORRECT, params.batch_size,
                                         params.overlap_size, ctx.report_progress)
    for event, new in zip(events, after, strict=True):
        event.plaintext = new
    out = ctx.workdir / f"{Path(path).stem}.corrected.{fmt}"
    subs.save(str(out), format_=fmt)
    return {"corrected_subtitle_path": str(out), "original_subtitle_path": path,
            "provider_used": editor.provider, "model_used": editor.model,
            "statistics": stats}


def ai_optimize_subtitles(params: OptimizeParams, ctx: RunContext) -> dict[str, Any]:
    assert params.segments_file
    segments, meta = read_segments(params.segments_file, ctx)
    with LineEditor(ctx.settings, params) as editor:
        after, stats = editor.edit_lines([s.text for s in segments],
                                         params.system_prompt or OPTIMIZE, params.batch_size,
                                         params.overlap_size, ctx.report_progress)
    records = [{**seg.model_copy(update={"text": new, "words": []}).record(i, words=False),
                "original_text": seg.text}
               for i, (seg, new) in enumerate(zip(segments, after, strict=True))]
    metadata = {**{k: v for k, v in meta.items() if k != "path"},
                "source": source_of(meta["path"], ctx), "provider": editor.provider,
                "model": editor.model}
    out = ctx.workdir / "optimized_segments.json"
    out.write_text(json.dumps({"metadata": metadata, "segments": records},
                              ensure_ascii=False, indent=2))
    return {"optimized_file_path": str(out), "original_file_path": meta["path"],
            "provider_used": editor.provider, "model_used": editor.model,
            "subtitles_count": len(records), "batches_count": stats["batches"], "statistics": stats}


SPECS = (
    NodeSpec(
        name="wservice.correct_subtitles", family="wservice",
        summary="LLM proofreading of a subtitle file; lines and times unchanged.",
        params=CorrectParams, run=correct_subtitles,
        reuse_keys=("corrected_subtitle_path",),
        outputs=("corrected_subtitle_path", "original_subtitle_path", "provider_used",
                 "model_used", "statistics"),
        upstream={"subtitle_path": (("wservice.generate_subtitle_files", "subtitle_path"),
                                    ("paddleocr.postprocess_and_finalize", "srt_file"))},
        required=("subtitle_path",), file_params=("subtitle_path",),
    ),
    NodeSpec(
        name="wservice.ai_optimize_subtitles", family="wservice",
        summary="LLM cleanup of transcription segments; segments and times unchanged.",
        params=OptimizeParams, run=ai_optimize_subtitles,
        reuse_keys=("optimized_file_path",),
        outputs=("optimized_file_path", "original_file_path", "provider_used", "model_used",
                 "subtitles_count", "batches_count", "statistics"),
        upstream={"segments_file": (("faster_whisper.transcribe_audio", "segments_file"),)},
        required=("segments_file",), file_params=("segments_file",),
    ),
)
