"""wservice.merge_speaker_segments / merge_with_word_timestamps: speakers for transcription.

A segment (or a word) gets the speaker whose turns overlap it most; with no overlapping
turn, the nearest turn's speaker if it is within NEAREST_S, else none (`speaker: null`).
At word level a segment is split wherever its words' speaker changes; a word with no
speaker keeps the speaker of the word before it (or after it, at the start).
"""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import Field, model_validator

from nodes.families.segments import (
    Segment,
    SegmentsInput,
    Turn,
    join_words,
    read_turns,
    segments_input,
    source_of,
    speakers_of,
    write_segments,
)
from nodes.spec import NodeSpec, RunContext, Source
from reuse.errors import InputError

NEAREST_S = 1.0  # a segment between turns takes the nearest speaker up to this far away
POINT_S = 0.01  # a word without duration is looked up as this much around its time


class TurnIndex:
    """Speaker turns queried by time span with a sweep: queries in time order (segments,
    then their words) cost O(turns + queries) in all; a query that goes back in time
    restarts the sweep."""

    def __init__(self, turns: list[Turn]) -> None:
        self.turns = sorted(turns, key=lambda t: t.start)
        self._reset()

    def _reset(self) -> None:
        self.added = 0  # turns[:added] start before the latest query's end
        self.active: list[Turn] = []  # of those, the ones that end after its start
        self.before: Turn | None = None  # of the others, the one that ends last
        self.last_start = float("-inf")

    def speaker(self, start: float, end: float) -> str | None:
        if end - start < POINT_S:
            mid = (start + end) / 2
            start, end = mid - POINT_S / 2, mid + POINT_S / 2
        if start < self.last_start:
            self._reset()
        self.last_start = start
        while self.added < len(self.turns) and self.turns[self.added].start < end:
            self.active.append(self.turns[self.added])
            self.added += 1
        still = []
        for turn in self.active:
            if turn.end > start:
                still.append(turn)
            elif self.before is None or turn.end > self.before.end:
                self.before = turn
        self.active = still
        shares: dict[str, float] = {}
        for turn in still:
            share = min(end, turn.end) - max(start, turn.start)
            if share > 0:
                shares[turn.speaker] = shares.get(turn.speaker, 0.0) + share
        if shares:
            return min(shares, key=lambda spk: (-shares[spk], spk))
        return self._nearest(start, end)

    def _nearest(self, start: float, end: float) -> str | None:
        """No overlap: the closest turn before or after, if within NEAREST_S."""
        best: tuple[float, str] | None = None  # (distance, speaker)
        if self.added < len(self.turns):
            after = self.turns[self.added]
            best = (after.start - end, after.speaker)
        if self.before is not None and (best is None or start - self.before.end < best[0]):
            best = (start - self.before.end, self.before.speaker)
        return best[1] if best is not None and best[0] <= NEAREST_S else None


def with_speaker(seg: Segment, index: TurnIndex) -> Segment:
    """The segment (and each of its words) with the segment's speaker."""
    spk = index.speaker(seg.start, seg.end)
    words = [w.model_copy(update={"speaker": spk}) for w in seg.words]
    return seg.model_copy(update={"speaker": spk, "words": words})


def assign_segments(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Each segment with its speaker (its words keep their times, get the same speaker)."""
    index = TurnIndex(turns)
    return [with_speaker(seg, index) for seg in segments]


def split_by_word_speaker(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Speakers per word; a segment is cut where its words' speaker changes. Segments
    without words are assigned whole."""
    index = TurnIndex(turns)
    out: list[Segment] = []
    for seg in segments:
        if not seg.words:
            out.append(with_speaker(seg, index))
            continue
        found = [index.speaker(w.start, w.end) for w in seg.words]
        known = [s for s in found if s is not None]
        previous = known[0] if known else None
        speakers = []
        for spk in found:  # a word without a speaker stays with its neighbours
            previous = spk if spk is not None else previous
            speakers.append(previous)
        words = [w.model_copy(update={"speaker": spk})
                 for w, spk in zip(seg.words, speakers, strict=True)]
        runs = [list(run) for _, run in itertools.groupby(words, key=lambda w: w.speaker)]
        if len(runs) == 1:
            out.append(seg.model_copy(update={"speaker": runs[0][0].speaker, "words": words}))
            continue
        for k, run in enumerate(runs):
            out.append(Segment(
                start=seg.start if k == 0 else run[0].start,
                end=seg.end if k == len(runs) - 1 else max(run[-1].end, run[0].start),
                text=join_words(run), speaker=run[0].speaker, words=run))
    return out


class MergeParams(SegmentsInput):
    speaker_segments_data: list[Turn] | None = Field(
        default=None, description="Speaker turns inline ({start, end, speaker}); else "
        "`diarization_file`.")
    diarization_file: str | None = Field(default=None, description="Diarization file.")

    @model_validator(mode="after")
    def _not_both(self) -> MergeParams:
        if self.speaker_segments_data is not None and self.diarization_file:
            raise ValueError("give speaker_segments_data or diarization_file, not both")
        return self


def merge(params: MergeParams, ctx: RunContext, by_word: bool) -> dict[str, Any]:
    segments, meta = segments_input(params, ctx)
    if params.speaker_segments_data is not None:
        turns, turns_from = sorted(params.speaker_segments_data, key=lambda t: t.start), None
    else:
        assert params.diarization_file
        turns, turns_from = read_turns(params.diarization_file, ctx), params.diarization_file
    words_in = sum(len(s.words) for s in segments)
    if by_word and segments and not words_in:
        raise InputError("the segments have no word timestamps: transcribe with "
                         "word_timestamps=true, or use wservice.merge_speaker_segments")
    merged = split_by_word_speaker(segments, turns) if by_word \
        else assign_segments(segments, turns)
    summary = {
        "segments_source": source_of(meta["path"], ctx),
        "speakers_source": "speaker_segments_data" if turns_from is None
        else source_of(turns_from, ctx),
        "input_segments": len(segments), "input_words": words_in, "input_turns": len(turns),
        "output_segments": len(merged), "speakers": speakers_of(merged),
        "segments_without_speaker": sum(s.speaker is None for s in merged),
        "segments_without_words": sum(not s.words for s in segments),
    }
    out = ctx.workdir / "merged_segments.json"
    metadata = {**{k: v for k, v in meta.items() if k != "path"},
                "merge": "word" if by_word else "segment", "input_summary": summary}
    write_segments(out, merged, metadata)
    return {"merged_segments": [s.record(i, words=False) for i, s in enumerate(merged)],
            "merged_segments_file": str(out), "input_summary": summary}


def merge_speaker_segments(params: MergeParams, ctx: RunContext) -> dict[str, Any]:
    return merge(params, ctx, by_word=False)


def merge_with_word_timestamps(params: MergeParams, ctx: RunContext) -> dict[str, Any]:
    return merge(params, ctx, by_word=True)


_UPSTREAM: dict[str, tuple[Source, ...]] = {
    "segments_file": (("faster_whisper.transcribe_audio", "segments_file"),),
    "diarization_file": (("pyannote_audio.diarize_speakers", "diarization_file"),),
}
_OUTPUTS = ("merged_segments", "merged_segments_file", "input_summary")

SPECS = (
    NodeSpec(
        name="wservice.merge_speaker_segments", family="wservice",
        summary="Speakers for transcription segments, by overlap with the speaker turns.",
        params=MergeParams, run=merge_speaker_segments,
        reuse_keys=("merged_segments_file",), outputs=_OUTPUTS, upstream=_UPSTREAM,
        required=("segments_data|segments_file", "speaker_segments_data|diarization_file"),
        file_params=("segments_file", "diarization_file"), num_cpus=0.1,
    ),
    NodeSpec(
        name="wservice.merge_with_word_timestamps", family="wservice",
        summary="Speakers per word; segments are split where the speaker changes.",
        params=MergeParams, run=merge_with_word_timestamps,
        reuse_keys=("merged_segments_file",), outputs=_OUTPUTS, upstream=_UPSTREAM,
        required=("segments_data|segments_file", "speaker_segments_data|diarization_file"),
        file_params=("segments_file", "diarization_file"), num_cpus=0.1,
    ),
)
