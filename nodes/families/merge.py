"""wservice.merge_speaker_segments / merge_with_word_timestamps: speakers for transcription.

A segment (or a word) gets the speaker whose turns overlap it most; with no overlapping
turn, the nearest turn's speaker if it is within NEAREST_S, else none (`speaker: null`).
At word level a segment is split wherever its words' speaker changes; a word with no
speaker keeps the speaker of the word before it (or after it, at the start), and a change
that lasts less than MIN_RUN_S is given to the longer neighbouring run.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from nodes.families.segments import (
    INLINE_MAX,
    MAX_SPEAKERS,
    Segment,
    SegmentsInput,
    Turn,
    Word,
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
MIN_RUN_S = 0.5  # a shorter change of speaker inside a segment is not believed


class TurnIndex:
    """Speaker turns as, per speaker, sorted disjoint intervals (a speaker's overlapping
    turns merged) with cumulative lengths, so a span's overlap with a speaker is
    F(end) - F(start): two binary searches. All spans are looked up at once, vectorized per
    speaker, a chunk at a time: O((spans + turns) * log(turns) * speakers), whatever order
    or overlap the input has."""

    CHUNK = 50_000

    def __init__(self, turns: list[Turn]) -> None:
        by_speaker: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for t in turns:
            by_speaker[t.speaker].append((t.start, t.end))
        if len(by_speaker) > MAX_SPEAKERS:
            raise InputError(f"{len(by_speaker)} speakers; at most {MAX_SPEAKERS}")
        self.names = sorted(by_speaker)  # ties go to the first name
        self.tables = [self._table(by_speaker[n]) for n in self.names]

    @staticmethod
    def _table(spans: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        merged: list[list[float]] = []
        for a, b in sorted(spans):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        starts, ends = np.array(merged).T
        return starts, ends, np.concatenate([[0.0], np.cumsum(ends - starts)])

    @staticmethod
    def _covered(table: tuple[np.ndarray, ...], x: np.ndarray) -> np.ndarray:
        """How much of (-inf, x] the speaker's intervals cover."""
        starts, ends, cum = table
        k = np.searchsorted(starts, x, side="right")  # intervals starting at or before x
        prev = np.maximum(k - 1, 0)
        return np.where(k > 0, cum[prev] + np.minimum(x, ends[prev]) - starts[prev], 0.0)

    @staticmethod
    def _distance(table: tuple[np.ndarray, ...], a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Gap from each span to the speaker's nearest interval (for spans it misses)."""
        starts, ends, _ = table
        k = np.searchsorted(starts, b, side="left")
        after = np.where(k < len(starts), starts[np.minimum(k, len(starts) - 1)] - b, np.inf)
        j = np.searchsorted(starts, a, side="right") - 1
        before = np.where(j >= 0, a - ends[np.maximum(j, 0)], np.inf)
        return np.minimum(after, before)

    def speakers(self, spans: list[tuple[float, float]]) -> list[str | None]:
        """The speaker of each (start, end): most overlap, else the nearest turn's speaker
        within NEAREST_S, else None. A span shorter than POINT_S is widened to it."""
        out: list[str | None] = [None] * len(spans)
        if not self.names:
            return out
        for lo in range(0, len(spans), self.CHUNK):
            part = np.array(spans[lo:lo + self.CHUNK], dtype=float).reshape(-1, 2)
            a, b = part[:, 0], part[:, 1]
            short = b - a < POINT_S
            mid = (a + b) / 2
            a, b = np.where(short, mid - POINT_S / 2, a), np.where(short, mid + POINT_S / 2, b)
            shares = np.stack([self._covered(t, b) - self._covered(t, a) for t in self.tables])
            gaps = np.stack([self._distance(t, a, b) for t in self.tables])
            best, nearest = shares.argmax(axis=0), gaps.argmin(axis=0)
            overlaps = shares.max(axis=0) > 1e-9
            near = gaps.min(axis=0) <= NEAREST_S
            for i in range(len(part)):
                if overlaps[i]:
                    out[lo + i] = self.names[best[i]]
                elif near[i]:
                    out[lo + i] = self.names[nearest[i]]
        return out


def assign_segments(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Each segment with its speaker (its words keep their times, get the same speaker)."""
    found = TurnIndex(turns).speakers([(s.start, s.end) for s in segments])
    return [seg.model_copy(update={
        "speaker": spk, "words": [w.model_copy(update={"speaker": spk}) for w in seg.words]})
        for seg, spk in zip(segments, found, strict=True)]


Run = list[tuple[Word, str | None]]  # consecutive words and the speaker they got


def smooth(runs: list[Run]) -> list[Run]:
    """A speaker change that lasts less than MIN_RUN_S inside a segment is taken for the
    diarization's boundary jitter (its turns are resolved to a few tenths of a second):
    the shortest such run joins the longer of its neighbours, until none is left."""
    def length(run: Run) -> float:
        return run[-1][0].end - run[0][0].start

    runs = [list(r) for r in runs]
    while len(runs) > 1:
        k = min(range(len(runs)), key=lambda i: length(runs[i]))
        if length(runs[k]) >= MIN_RUN_S:
            break
        near = [i for i in (k - 1, k + 1) if 0 <= i < len(runs)]
        into = max(near, key=lambda i: length(runs[i]))
        spk = runs[into][0][1]
        moved = [(w, spk) for w, _ in runs.pop(k)]
        if into < k:
            runs[into] += moved
        else:
            runs[into - 1] = moved + runs[into - 1]
        # neighbours that now share a speaker become one run
        runs = [[p for _, group in grp for p in group] for _, grp in itertools.groupby(
            ((r[0][1], r) for r in runs), key=lambda x: x[0])]
    return runs


def split_by_word_speaker(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """Speakers per word; a segment is cut where its words' speaker changes. Segments
    without words are assigned whole."""
    spans: list[tuple[float, float]] = []
    for seg in segments:  # each word's span, or the segment's when it has no words
        spans += [(w.start, w.end) for w in seg.words] or [(seg.start, seg.end)]
    found = iter(TurnIndex(turns).speakers(spans))
    out: list[Segment] = []
    for seg in segments:
        if not seg.words:
            out.append(seg.model_copy(update={"speaker": next(found)}))
            continue
        speakers: list[str | None] = []
        mine = [next(found) for _ in seg.words]
        known = [s for s in mine if s is not None]
        previous = known[0] if known else None
        for spk in mine:  # a word without a speaker stays with its neighbours
            previous = spk if spk is not None else previous
            speakers.append(previous)
        runs = smooth([list(run) for _, run in itertools.groupby(
            zip(seg.words, speakers, strict=True), key=lambda pair: pair[1])])
        pieces = [[w.model_copy(update={"speaker": spk}) for w, spk in run] for run in runs]
        if len(pieces) == 1:
            out.append(seg.model_copy(update={"speaker": pieces[0][0].speaker,
                                              "words": pieces[0]}))
            continue
        for k, piece in enumerate(pieces):
            out.append(Segment(
                start=seg.start if k == 0 else piece[0].start,
                end=seg.end if k == len(pieces) - 1 else max(piece[-1].end, piece[0].start),
                text=join_words(piece), speaker=piece[0].speaker, words=piece))
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
    return {"merged_segments": [s.record(i, words=False)
                                for i, s in enumerate(merged[:INLINE_MAX])],
            "merged_segments_file": str(out), "input_summary": summary}


def merge_speaker_segments(params: MergeParams, ctx: RunContext) -> dict[str, Any]:
    return merge(params, ctx, by_word=False)


def merge_with_word_timestamps(params: MergeParams, ctx: RunContext) -> dict[str, Any]:
    return merge(params, ctx, by_word=True)


_TURNS: tuple[Source, ...] = (("pyannote_audio.diarize_speakers", "diarization_file"),)
_OUTPUTS = ("merged_segments", "merged_segments_file", "input_summary")

SPECS = (
    NodeSpec(
        name="wservice.merge_speaker_segments", family="wservice",
        summary="Speakers for transcription segments, by overlap with the speaker turns.",
        params=MergeParams, run=merge_speaker_segments,
        reuse_keys=("merged_segments_file",), outputs=_OUTPUTS,
        # the LLM-cleaned text when the job has it (it has no word times: segment level)
        upstream={"segments_file": (("wservice.ai_optimize_subtitles", "optimized_file_path"),
                                    ("faster_whisper.transcribe_audio", "segments_file")),
                  "diarization_file": _TURNS},
        required=("segments_data|segments_file", "speaker_segments_data|diarization_file"),
        file_params=("segments_file", "diarization_file"),
    ),
    NodeSpec(
        name="wservice.merge_with_word_timestamps", family="wservice",
        summary="Speakers per word; segments are split where the speaker changes.",
        params=MergeParams, run=merge_with_word_timestamps,
        reuse_keys=("merged_segments_file",), outputs=_OUTPUTS,
        upstream={"segments_file": (("faster_whisper.transcribe_audio", "segments_file"),),
                  "diarization_file": _TURNS},
        required=("segments_data|segments_file", "speaker_segments_data|diarization_file"),
        file_params=("segments_file", "diarization_file"),
    ),
)
