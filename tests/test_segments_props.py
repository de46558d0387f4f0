"""Properties of speaker merging, subtitle cues and TTS regrouping (hypothesis): no word
lost or repeated, times monotonic and inside the audio, speakers kept, limits held; the
subtitle files written by the node parse back to the cues."""

from __future__ import annotations

import itertools
import tempfile
from collections import Counter
from pathlib import Path

import pysubs2
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.families.merge import (
    MIN_RUN_S,
    NEAREST_S,
    TurnIndex,
    assign_segments,
    split_by_word_speaker,
)
from nodes.families.segments import Segment, Turn, Word, join_words, save_subtitles
from nodes.families.subtitle_files import Limits, build_cues, wrap
from nodes.families.tts_prep import regroup

SPEAKERS = ("SPEAKER_00", "SPEAKER_01", "SPEAKER_02")
LATIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=10)
HAN = st.text(alphabet="你好世界今天天气很好我们一起去公园", min_size=1, max_size=3)
PUNCT = st.sampled_from(["", "", "", ",", ".", "?", "。"])


@st.composite
def transcript(draw: st.DrawFn, cjk: bool = False, with_words: bool = True,
               speakers: bool = False) -> tuple[list[Segment], float]:
    """Sorted, non-overlapping segments of short words, and the audio's length."""
    t = draw(st.floats(0, 2))
    segments = []
    for _ in range(draw(st.integers(0, 12))):
        words = []
        start = t
        for _ in range(draw(st.integers(1, 25))):
            dur = draw(st.floats(0.0, 0.9))
            token = draw(HAN if cjk else LATIN) + draw(PUNCT)
            words.append(Word(word=token if cjk else " " + token, start=round(t, 3),
                              end=round(t + dur, 3)))
            t += dur + draw(st.floats(0, 0.3))
        end = max(words[-1].end, start)
        spk = draw(st.sampled_from(SPEAKERS)) if speakers else None
        segments.append(Segment(start=round(start, 3), end=round(end, 3),
                                text=join_words(words), speaker=spk,
                                words=words if with_words else []))
        t = end + draw(st.floats(0, 3))
    return segments, t + 1


@st.composite
def turns(draw: st.DrawFn, total: float) -> list[Turn]:
    out = []
    for _ in range(draw(st.integers(0, 15))):
        a = draw(st.floats(0, total))
        b = draw(st.floats(a, min(total, a + 20)))
        out.append(Turn(start=a, end=b, speaker=draw(st.sampled_from(SPEAKERS))))
    return out


def key(w: Word) -> tuple[str, float, float]:
    return (w.word, w.start, w.end)


def brute_shares(turns: list[Turn], start: float, end: float) -> dict[str, float]:
    """Each speaker's overlap with a span, naively: the span cut into the pieces between
    all turn boundaries, each piece counted once per speaker whose turns cover it."""
    points = sorted({start, end, *(x for t in turns for x in (t.start, t.end)
                                   if start < x < end)})
    shares: Counter[str] = Counter()
    for a, b in itertools.pairwise(points):
        for spk in {t.speaker for t in turns if t.start <= a and b <= t.end}:
            shares[spk] += b - a
    return {k: v for k, v in shares.items() if v > 1e-9}


def agrees(found: str | None, turns: list[Turn], start: float, end: float) -> bool:
    """`found` has the most overlap (within rounding), or nothing overlaps."""
    shares = brute_shares(turns, start, end)
    if not shares:
        return True
    return found in shares and shares[found] >= max(shares.values()) - 1e-6


@given(st.data())
def test_word_merge_keeps_every_word_once_and_in_order(data: st.DataObject) -> None:
    segments, total = data.draw(transcript())
    found = data.draw(turns(total))
    merged = split_by_word_speaker(segments, found)
    assert [key(w) for s in merged for w in s.words] == \
        [key(w) for s in segments for w in s.words]
    for a, b in itertools.pairwise(merged):
        assert a.start <= a.end <= b.start + 1e-9
    for seg in merged:
        assert 0 <= seg.start <= seg.end <= total
        assert {w.speaker for w in seg.words} == {seg.speaker}  # one speaker per segment
        assert seg.text == join_words(seg.words) or seg in segments or \
            seg.text == next(s.text for s in segments if s.start == seg.start)
    # each word keeps the overlap rule's speaker, unless its run of that speaker inside
    # the segment lasted less than MIN_RUN_S (then it joined a neighbouring run)
    raw = raw_runs(segments, found)
    for w, (spk, run_s) in zip((w for s in merged for w in s.words), raw, strict=True):
        if w.speaker != spk:
            assert run_s < MIN_RUN_S
        elif w.end - w.start >= 0.01:  # (shorter words are looked up widened)
            assert agrees(w.speaker, found, w.start, w.end)


def raw_runs(segments: list[Segment], turns: list[Turn]) -> list[tuple[str | None, float]]:
    """Per word: the speaker the lookup gives it (a word without one takes its neighbour's)
    and how long its run of that speaker lasts within its segment."""
    index = TurnIndex(turns)
    out: list[tuple[str | None, float]] = []
    for seg in segments:
        found = index.speakers([(w.start, w.end) for w in seg.words])
        known = [f for f in found if f is not None]
        filled, last = [], known[0] if known else None
        for f in found:
            last = f if f is not None else last
            filled.append(last)
        for spk, group in itertools.groupby(zip(seg.words, filled, strict=True),
                                            key=lambda pair: pair[1]):
            run = [w for w, _ in group]
            out += [(spk, run[-1].end - run[0].start)] * len(run)
    return out


@given(st.data())
def test_segment_merge_matches_the_overlap_rule(data: st.DataObject) -> None:
    segments, total = data.draw(transcript())
    found = data.draw(turns(total))
    merged = assign_segments(segments, found)
    assert [(s.start, s.end, s.text) for s in merged] == \
        [(s.start, s.end, s.text) for s in segments]
    for seg in merged:
        if seg.duration >= 0.01:
            assert agrees(seg.speaker, found, seg.start, seg.end)
        assert seg.speaker is None or seg.speaker in {t.speaker for t in found}


@settings(max_examples=150)
@given(st.data())
def test_subtitle_cues_hold_the_limits_and_keep_the_words(data: st.DataObject) -> None:
    cjk = data.draw(st.booleans())
    segments, total = data.draw(transcript(cjk=cjk, with_words=data.draw(st.booleans())))
    limits = Limits(max_line_chars=data.draw(st.integers(12, 42)) if not cjk else 16,
                    max_lines=data.draw(st.integers(1, 3)),
                    max_duration=data.draw(st.floats(2.0, 8.0)), min_duration=0.8)
    cues = build_cues(segments, limits, cjk)
    sep = "" if cjk else " "
    assert sep.join(c.text for c in cues).split() == sep.join(s.text for s in segments).split()
    for a, b in itertools.pairwise(cues):
        assert a.start <= a.end <= b.start + 1e-6
    for cue in cues:
        lines = wrap(cue.text, limits.max_line_chars, cjk)
        assert len(lines) <= limits.max_lines
        assert all(len(line) <= limits.max_line_chars for line in lines)
        assert cue.duration <= limits.max_duration + 1e-6
        assert cue.start >= 0 and cue.end <= total + limits.min_duration


@settings(max_examples=150)
@given(st.data())
def test_tts_groups_keep_words_speakers_and_limits(data: st.DataObject) -> None:
    with_words = data.draw(st.booleans())
    cjk = data.draw(st.booleans())
    segments, total = data.draw(transcript(cjk=cjk, with_words=with_words, speakers=True))
    lo = data.draw(st.floats(0.0, 4.0))
    hi = data.draw(st.floats(max(lo, 2.0), 12.0))
    gap = data.draw(st.floats(0.0, 2.0))
    groups = regroup(segments, lo, hi, gap, data.draw(st.booleans()))
    out = [g for g, _ in groups]
    if with_words:
        assert [key(w) for g in out for w in g.words] == \
            [key(w) for s in segments for w in s.words]
    else:
        assert "".join("".join(g.text.split()) for g in out) == \
            "".join("".join(s.text.split()) for s in segments)
    for a, b in itertools.pairwise(out):
        assert a.start <= a.end <= b.start + 1e-6
    for g, sources in groups:
        assert {segments[i].speaker for i in sources} == {g.speaker}  # never mixed
        assert all(w.speaker in (None, g.speaker) for w in g.words)
        assert g.duration <= hi + 1e-6
        assert g.start >= 0 and g.end <= total


@given(st.data())
def test_subtitle_files_parse_back_to_the_cues(data: st.DataObject) -> None:
    segments, _ = data.draw(transcript(speakers=True))
    cues = build_cues(segments, Limits(42, 2, 7.0, 0.8), False)
    folder = Path(tempfile.mkdtemp(prefix="subs-"))
    for fmt in ("srt", "vtt", "ass"):
        path = save_subtitles(cues, str(folder / f"s.{fmt}"), fmt)
        back = [e for e in pysubs2.load(path, format_=fmt) if not e.is_comment]
        assert len(back) == len(cues)
        for event, cue in zip(back, cues, strict=True):
            assert abs(event.start / 1000 - cue.start) <= 0.011  # centiseconds in ASS
            assert abs(event.end / 1000 - cue.end) <= 0.011
            assert event.plaintext == cue.text
            if fmt == "ass":
                assert event.name == (cue.speaker or "")


def test_between_turns_the_nearest_speaker_within_a_second() -> None:
    turns = [Turn(start=0, end=1, speaker="A"), Turn(start=3, end=4, speaker="B"),
             Turn(start=3.5, end=9, speaker="B")]  # a speaker's overlapping turns count once
    found = TurnIndex(turns).speakers([(1.5, 1.8), (2.5, 2.9), (10.5, 11), (9.5, 9.5)])
    assert found == ["A", "B", None, "B"]
    assert NEAREST_S == 1.0
    assert TurnIndex([]).speakers([(0, 1)]) == [None]


def test_a_blip_of_another_speaker_inside_a_segment_is_not_believed() -> None:
    """One 60 ms word inside a short turn of B (the diarization's boundary jitter) stays
    with A; a real change (longer than MIN_RUN_S) still splits the segment."""
    said = [("Thanks", 0.0, 0.4), ("for", 0.4, 0.46), ("coming", 0.5, 1.0), ("today.", 1.0, 1.5),
            ("Glad", 1.6, 2.0), ("to", 2.0, 2.2), ("be", 2.2, 2.4), ("here.", 2.4, 2.8)]
    seg = Segment(start=0, end=2.8, text="x", words=[
        Word(word=" " + t, start=a, end=b) for t, a, b in said])
    turns = [Turn(start=0, end=0.39, speaker="A"), Turn(start=0.39, end=0.47, speaker="B"),
             Turn(start=0.47, end=1.55, speaker="A"), Turn(start=1.55, end=3, speaker="B")]
    assert TurnIndex(turns).speakers([(0.4, 0.46)]) == ["B"]  # the word alone: B
    merged = split_by_word_speaker([seg], turns)
    assert [(s.speaker, s.text) for s in merged] == [("A", "Thanks for coming today."),
                                                     ("B", "Glad to be here.")]
