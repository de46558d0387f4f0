"""wservice.prepare_tts_segments: regroup segments into chunks a TTS engine speaks well.

1. A segment longer than `max_duration` is cut between words, at the last punctuation
   that leaves at least `min_duration` (else before the word that overflows). Without
   word timestamps it is cut at punctuation or spaces, the time shared by characters.
2. Consecutive pieces of one speaker are joined while the gap between them is at most
   `max_gap` and the group stays within `max_duration`; with `split_on_punctuation` a
   group that already lasts `min_duration` ends at a sentence end.
3. A group still shorter than `min_duration` joins a neighbour of the same speaker where
   gap and length allow.

Words are neither lost nor repeated; groups never mix speakers. A single word longer than
`max_duration` stays one group.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from nodes.families.segments import (
    CLAUSE_END,
    INLINE_MAX,
    SENTENCE_END,
    Segment,
    SegmentsInput,
    Word,
    cut_like_words,
    is_cjk,
    pieces_of,
    segments_input,
    source_of,
    speakers_of,
    write_segments,
)
from nodes.spec import NodeSpec, RunContext


def cut_words(seg: Segment, max_duration: float, min_duration: float) -> list[Segment]:
    pieces: list[list[Word]] = [[]]
    for word in seg.words:
        current = pieces[-1]
        if current and word.end - current[0].start > max_duration:
            cut = next((k for k in range(len(current) - 1, 0, -1)
                        if current[k - 1].word.strip().endswith(CLAUSE_END)
                        and current[k - 1].end - current[0].start >= min_duration), None)
            if cut is not None and word.end - current[cut].start <= max_duration:
                pieces[-1], rest = current[:cut], current[cut:]
                pieces.append(rest)
            else:
                pieces.append([])
        pieces[-1].append(word)
    return pieces_of(pieces, seg.speaker)


def join(group: list[Segment]) -> Segment:
    words = [w for s in group for w in s.words]
    sep = "" if is_cjk(group[0].text) else " "
    text = sep.join(s.text.strip() for s in group if s.text.strip())
    return Segment(start=group[0].start, end=group[-1].end, text=text,
                   speaker=group[0].speaker, words=words)


def regroup(segments: list[Segment], min_duration: float, max_duration: float,
            max_gap: float, split_on_punctuation: bool) -> list[tuple[Segment, list[int]]]:
    """TTS groups and, for each, the indices of the input segments it holds."""
    pieces: list[tuple[Segment, int]] = []
    for i, seg in enumerate(sorted(segments, key=lambda s: s.start)):
        if not seg.text.strip() and not seg.words:
            continue
        if seg.duration <= max_duration:
            parts = [seg]
        elif seg.words:
            parts = cut_words(seg, max_duration, min_duration)
        else:
            parts = cut_like_words(seg, lambda s: cut_words(s, max_duration, min_duration))
        pieces += [(p, i) for p in parts]

    def joinable(a: list[Segment], b: list[Segment]) -> bool:
        return (a[-1].speaker == b[0].speaker and b[0].start - a[-1].end <= max_gap
                and b[-1].end - a[0].start <= max_duration)

    groups: list[list[Segment]] = []
    sources: list[list[int]] = []
    for piece, i in pieces:
        if groups and joinable(groups[-1], [piece]) and not (
                split_on_punctuation and groups[-1][-1].text.strip().endswith(SENTENCE_END)
                and groups[-1][-1].end - groups[-1][0].start >= min_duration):
            groups[-1].append(piece)
            if sources[-1][-1] != i:
                sources[-1].append(i)
        else:
            groups.append([piece])
            sources.append([i])
    k = 0
    while k < len(groups):  # short groups join a neighbour of the same speaker
        short = groups[k][-1].end - groups[k][0].start < min_duration
        if short and k + 1 < len(groups) and joinable(groups[k], groups[k + 1]):
            groups[k] += groups.pop(k + 1)
            sources[k] = sorted(set(sources[k]) | set(sources.pop(k + 1)))
            continue
        if short and k > 0 and joinable(groups[k - 1], groups[k]):
            groups[k - 1] += groups.pop(k)
            sources[k - 1] = sorted(set(sources[k - 1]) | set(sources.pop(k)))
            continue
        k += 1
    return [(join(g), src) for g, src in zip(groups, sources, strict=True)]


class PrepareTTSParams(SegmentsInput):
    min_duration: float = Field(default=3.0, ge=0.0, le=60.0, description="Seconds.")
    max_duration: float = Field(default=10.0, ge=0.5, le=120.0, description="Seconds.")
    max_gap: float = Field(default=1.0, ge=0.0, le=30.0,
                           description="Largest silence inside a group (seconds).")
    split_on_punctuation: bool = Field(default=True, description="End a group at a sentence "
                                       "end once it lasts min_duration.")

    @model_validator(mode="after")
    def _bounds(self) -> PrepareTTSParams:
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration must not exceed max_duration")
        return self


def prepare_tts_segments(params: PrepareTTSParams, ctx: RunContext) -> dict[str, Any]:
    segments, meta = segments_input(params, ctx)
    grouped = regroup(segments, params.min_duration, params.max_duration, params.max_gap,
                      params.split_on_punctuation)
    groups = [g for g, _ in grouped]
    records = [{**g.record(i, words=False), "source_ids": src}
               for i, (g, src) in enumerate(grouped[:INLINE_MAX])]
    summary = {
        "input_segments": len(segments), "input_words": sum(len(s.words) for s in segments),
        "output_segments": len(groups), "speakers": speakers_of(groups),
        "too_short": sum(g.duration < params.min_duration for g in groups),
        "too_long": sum(g.duration > params.max_duration for g in groups),
    }
    source = source_of(meta["path"], ctx)
    out = ctx.workdir / "tts_segments.json"
    audio: dict[str, Any] = {k: meta[k] for k in ("audio_file", "total_duration", "language")
                             if k in meta}
    write_segments(out, groups, {**audio, "source_stage": source, "input_summary": summary,
                                 "params": params.model_dump(exclude={"segments_data"})})
    return {"prepared_segments": records, "tts_segments_file": str(out),
            "source_stage": source, "total_segments": len(groups), "input_summary": summary}


SPECS = (
    NodeSpec(
        name="wservice.prepare_tts_segments", family="wservice",
        summary="Regroup segments into TTS-sized chunks per speaker.",
        params=PrepareTTSParams, run=prepare_tts_segments,
        reuse_keys=("tts_segments_file",),
        outputs=("prepared_segments", "tts_segments_file", "source_stage", "total_segments",
                 "input_summary"),
        upstream={"segments_file": (
            ("wservice.merge_with_word_timestamps", "merged_segments_file"),
            ("wservice.merge_speaker_segments", "merged_segments_file"),
            ("wservice.ai_optimize_subtitles", "optimized_file_path"),
            ("wservice.generate_subtitle_files", "json_path"),
            ("faster_whisper.transcribe_audio", "segments_file"))},
        required=("segments_data|segments_file",), file_params=("segments_file",),
    ),
)
