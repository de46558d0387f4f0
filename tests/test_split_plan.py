"""split_audio_segments' segment rules and subtitle parsing (pure + temp files)."""

from __future__ import annotations

import json

import pytest

from nodes.families.ffmpeg_split import SplitAudioParams, plan_segments
from nodes.families.segments import Segment, parse_segments
from reuse.errors import InputError

SRT = """1
00:00:00,500 --> 00:00:02,000
hello

2
00:00:02,500 --> 00:00:02,900
short

3
00:00:03,000 --> 00:00:10,000
a long line
"""


def test_load_srt_and_json() -> None:
    segs, _ = parse_segments(SRT, "a.srt")
    assert [(s.start, s.end, s.text) for s in segs] == [
        (0.5, 2.0, "hello"), (2.5, 2.9, "short"), (3.0, 10.0, "a long line")]
    js = json.dumps({"segments": [{"start": 0, "end": 1.5, "text": "x", "speaker": "SPEAKER_01"}]})
    assert parse_segments(js, "a.json")[0] == [
        Segment(start=0.0, end=1.5, text="x", speaker="SPEAKER_01")]
    for bad in ([{"start": "zero"}], [{"start": 2, "end": 1}], {"segments": 3}):
        with pytest.raises(InputError):
            parse_segments(json.dumps(bad), "bad.json")


def test_plan_skips_short_and_cuts_long() -> None:
    segs = [Segment(start=0.5, end=2.0), Segment(start=2.5, end=2.9), Segment(start=3.0, end=10.0)]
    params = SplitAudioParams(audio_path="a", subtitle_path="s", min_segment_duration=1.0,
                              max_segment_duration=3.0)
    pieces, skipped = plan_segments(segs, total=12.0, p=params)
    assert skipped == 1
    durations = [round(p.duration, 3) for p in pieces]
    assert durations[0] == 1.5
    assert len(pieces) == 1 + 3 and all(d <= 3.0 for d in durations)
    assert pieces[-1].end == 10.0


def test_plan_include_silence_adds_gaps() -> None:
    params = SplitAudioParams(audio_path="a", subtitle_path="s", min_segment_duration=0.1,
                              include_silence=True)
    two = [Segment(start=1.0, end=2.0), Segment(start=3.0, end=4.0)]
    pieces, _ = plan_segments(two, total=5.0, p=params)
    assert [(p.start, p.end, p.speaker) for p in pieces] == [
        (0.0, 1.0, "silence"), (1.0, 2.0, None), (2.0, 3.0, "silence"), (3.0, 4.0, None),
        (4.0, 5.0, "silence")]


def test_params_reject_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="max_segment_duration"):
        SplitAudioParams(min_segment_duration=5, max_segment_duration=1)


def test_too_many_pieces_are_refused_before_any_is_cut() -> None:
    """The probe cut 10,000 files from one 5 s segment; the plan is bounded."""
    from nodes.families.ffmpeg_split import MAX_PIECES
    from reuse.errors import InputError

    p = SplitAudioParams(min_segment_duration=0, max_segment_duration=0.1)
    segments = [Segment(start=float(i), end=float(i) + 1.0) for i in range(MAX_PIECES // 10 + 1)]
    with pytest.raises(InputError, match="at most"):
        plan_segments(segments, total=1e9, p=p)
    with pytest.raises(ValueError):
        SplitAudioParams(max_segment_duration=0.0005)
    with pytest.raises(ValueError):
        SplitAudioParams.model_validate({"max_segment_duration": float("inf")})
