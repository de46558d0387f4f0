"""Timed text shared by the subtitle and speech nodes: words, segments, speaker turns, and
reading/writing them.

A segments file is JSON `{metadata, segments: [{id, start, end, text, speaker?, words?}]}`
(what transcribe_audio, the merge nodes, generate_subtitle_files and prepare_tts_segments
write); a plain list of segments, or a subtitle file (SRT, WebVTT, ASS; read with pysubs2,
an ASS line's Name is its speaker), is read too. Times are seconds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pysubs2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from nodes.inputs import fetch_input
from nodes.spec import NodeParams, RunContext
from reuse.errors import InputError, TooLarge, brief
from reuse.storage import job_dir

MAX_TEXT_FILE_BYTES = 64 * 1024**2  # a 6-hour transcript with word times is ~60 MB
MAX_SEGMENTS = 100_000  # segments (or speaker turns) in one input
MAX_SPEAKERS = 100
INLINE_MAX = 1000  # segments a stage output lists inline; its file has all of them
# A speaker label: no control characters (a line break would start a new cue in SRT or
# WebVTT), no commas, braces, brackets or backslashes (ASS fields and overrides).
LABEL = r"^[^\x00-\x1f\x7f,{}\[\]\\]{1,128}$"
_NOT_LABEL = re.compile(r"[\x00-\x1f\x7f,{}\[\]\\]+")

# Han, kana, hangul, CJK punctuation and full-width forms: text without spaces between words
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                  r"\uff00-\uffef]")
SENTENCE_END = tuple(".!?\u3002\uff01\uff1f\u2026")  # and the CJK forms
CLAUSE_END = (*SENTENCE_END, *",;:\uff0c\uff1b\uff1a\u3001")  # and the CJK forms


class Timed(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    start: float = Field(ge=0)
    end: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> Timed:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start


Label = Annotated[str, Field(pattern=LABEL)]


def clean_label(value: str) -> str | None:
    """A label from a subtitle file made safe (None when nothing is left)."""
    return _NOT_LABEL.sub(" ", value).strip()[:128] or None


class Word(Timed):
    word: str
    probability: float | None = None
    speaker: Label | None = None


class Segment(Timed):
    text: str = ""
    speaker: Label | None = None
    words: list[Word] = Field(default_factory=list)

    def record(self, index: int, words: bool = True) -> dict[str, Any]:
        """The segment as files and outputs keep it."""
        out: dict[str, Any] = {"id": index, "start": round(self.start, 3),
                               "end": round(self.end, 3), "duration": round(self.duration, 3),
                               "text": self.text, "speaker": self.speaker}
        if words:
            out["words"] = [w.model_dump(exclude_none=True) for w in self.words]
        return out


class Turn(Timed):
    """A speaker turn: from a diarization file or a caller's `speaker_segments_data`."""

    speaker: Label


def is_cjk(text: str) -> bool:
    """Mostly Chinese/Japanese/Korean characters: lines are measured and broken by
    character, words are joined without spaces."""
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and sum(bool(_CJK.match(c)) for c in letters) >= 0.3 * len(letters)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TIMESTAMP = re.compile(r"\d+\s*:\s*\d+\s*:\s*\d+(?:\s*[,.]\s*\d+)?")


def cue_text(text: str) -> str:
    """Text safe inside one subtitle cue: no blank rows (they end a cue in SRT/WebVTT), no
    `-->` (WebVTT forbids it in a cue; SRT readers take its row for a timing row), no
    control characters, braces and backslashes as their full-width forms (pysubs2 and
    players read `{...}` as style tags and `\\N` as a line break, which could rebuild a
    `-->` or a timing row), and a row holding two timestamps (an SRT reader's timing row:
    `1:23:45.678 and 2:34:56.789`) gets U+2236 RATIO for their colons."""
    text = _CONTROL.sub(" ", text)
    text = text.replace("{", "\uff5b").replace("}", "\uff5d").replace("\\", "\uff3c")
    rows = []
    for row in text.replace("-->", "->").splitlines():
        row = " ".join(row.split())
        if len(_TIMESTAMP.findall(row)) >= 2:
            row = _TIMESTAMP.sub(lambda m: m.group(0).replace(":", "\u2236"), row)
        if row:
            rows.append(row)
    return "\n".join(rows)


def join_words(words: list[Word]) -> str:
    """Whisper's words carry their own leading space (none in CJK): joined as they are."""
    return "".join(w.word for w in words).strip()


def pseudo_words(seg: Segment) -> list[Word]:
    """A segment without word timestamps as words (characters for CJK), the segment's time
    shared by their length: so it can be cut like a timed one."""
    text = seg.text.strip()
    tokens = list(text.replace(" ", "")) if is_cjk(text) else [" " + t for t in text.split()]
    total = sum(len(t.strip()) for t in tokens) or 1
    words, t = [], seg.start
    for token in tokens:
        end = t + seg.duration * len(token.strip()) / total
        words.append(Word(word=token, start=t, end=min(end, seg.end)))
        t = end
    return words


def pieces_of(pieces: list[list[Word]], speaker: str | None) -> list[Segment]:
    """Words cut into pieces, as segments: a piece spans its words (the cutters check
    their limits on the words' times)."""
    return [Segment(start=words[0].start, end=max(words[0].start, words[-1].end),
                    text=join_words(words), speaker=speaker, words=words) for words in pieces]


def cut_like_words(seg: Segment,
                   cut: Callable[[Segment], list[Segment]]) -> list[Segment]:
    """A segment without word timestamps cut by a word cutter: over `pseudo_words`,
    whose time is shared by character count; the pieces carry no words."""
    pieces = cut(seg.model_copy(update={"words": pseudo_words(seg)}))
    return [p.model_copy(update={"words": []}) for p in pieces]


def read_text_input(value: str, ctx: RunContext) -> tuple[str, str]:
    """(local path, text) of a caller's file or URL, size-bounded."""
    path = fetch_input(value, ctx.workdir, ctx.settings, max_bytes=MAX_TEXT_FILE_BYTES)
    if os.path.getsize(path) > MAX_TEXT_FILE_BYTES:
        raise TooLarge(f"{brief(value)} is larger than {MAX_TEXT_FILE_BYTES} bytes")
    try:
        return path, Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{brief(value)} is not UTF-8 text") from exc


def load_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{name} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise InputError(f"{name} is nested too deeply") from None


def parse_segments(text: str, name: str) -> tuple[list[Segment], dict[str, Any]]:
    """Segments and metadata of a segments JSON or a subtitle file's text."""
    if not text.strip():
        return [], {}  # an empty subtitle file: no speech
    if text.lstrip().startswith(("{", "[")):
        data = load_json(text, name)
        items = data.get("segments") if isinstance(data, dict) else data
        meta = data.get("metadata", {}) if isinstance(data, dict) else {}
        if not isinstance(items, list):
            raise InputError(f"{name} has no `segments` list")
        if len(items) > MAX_SEGMENTS:
            raise TooLarge(f"{name} has more than {MAX_SEGMENTS} segments")
        try:
            return [Segment.model_validate(item) for item in items], \
                meta if isinstance(meta, dict) else {}
        except ValidationError as exc:
            raise InputError(f"{name}: a segment is invalid: {exc.errors()[0]['msg']} "
                             f"at {exc.errors()[0]['loc']}") from exc
    try:
        subs = pysubs2.SSAFile.from_string(text)
    except (pysubs2.exceptions.Pysubs2Error, ValueError, KeyError) as exc:
        raise InputError(f"{name} is neither segments JSON nor a subtitle file: {exc}") from exc
    events = [e for e in subs if not e.is_comment]
    if len(events) > MAX_SEGMENTS:
        raise TooLarge(f"{name} has more than {MAX_SEGMENTS} subtitles")
    segments = [Segment(start=max(0, e.start) / 1000, end=max(0, e.start, e.end) / 1000,
                        text=" ".join(e.plaintext.split()), speaker=clean_label(e.name))
                for e in events]
    return segments, {"format": subs.format}


def read_segments(value: str, ctx: RunContext) -> tuple[list[Segment], dict[str, Any]]:
    """Segments of a file or URL (sorted by start), and the file's metadata."""
    path, text = read_text_input(value, ctx)
    segments, meta = parse_segments(text, brief(value))
    return sorted(segments, key=lambda s: s.start), {**meta, "path": path}


def read_turns(value: str, ctx: RunContext) -> list[Turn]:
    """Speaker turns of a diarization file (`{segments: [{start, end, speaker}]}`)."""
    _, text = read_text_input(value, ctx)
    data = load_json(text, brief(value))
    try:
        items = data["segments"] if isinstance(data, dict) else data
        if len(items) > MAX_SEGMENTS:
            raise TooLarge(f"{brief(value)} has more than {MAX_SEGMENTS} turns")
        return sorted((Turn.model_validate(t) for t in items), key=lambda t: t.start)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{brief(value)} is not a diarization file: {exc}") from exc


class SegmentsInput(NodeParams):
    """The params of a node that reads segments: inline, or a file (or an upstream stage's)."""

    segments_data: list[Segment] | None = Field(
        default=None, max_length=MAX_SEGMENTS, description="Segments inline ({start, end, "
        "text, speaker?, words?}); else `segments_file`.")
    segments_file: str | None = Field(default=None, description="Segments file: JSON "
                                      "(`{segments: [...]}` or a list) or SRT/WebVTT/ASS.")

    @model_validator(mode="after")
    def _one_source(self) -> SegmentsInput:
        if self.segments_data is not None and self.segments_file:
            raise ValueError("give segments_data or segments_file, not both")
        return self


def segments_input(params: SegmentsInput,
                   ctx: RunContext) -> tuple[list[Segment], dict[str, Any]]:
    """A node's segments: `segments_data` given inline, else the file (or upstream)."""
    if params.segments_data is not None:
        return sorted(params.segments_data, key=lambda s: s.start), {"path": None}
    assert params.segments_file
    return read_segments(params.segments_file, ctx)


def source_of(path: str | None, ctx: RunContext) -> str:
    """Which stage of this job wrote a file (`<node>`), else `input` (the caller's)."""
    if path is None:
        return "segments_data"
    here = job_dir(ctx.settings.storage_root, ctx.task_id).resolve()
    try:
        return Path(path).resolve().relative_to(here).parts[0]
    except ValueError:
        return "input"


def write_segments(path: Path, segments: list[Segment], metadata: dict[str, Any],
                   words: bool = True) -> None:
    data = {"metadata": metadata,
            "segments": [s.record(i, words=words) for i, s in enumerate(segments)]}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2))


def save_subtitles(cues: list[Segment], path: str, fmt: str, with_speaker: bool = False) -> str:
    """A subtitle file (srt, vtt, ass) of the cues, written by pysubs2; an ASS line's Name
    is its speaker."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        text = cue.text if not (with_speaker and cue.speaker) else f"[{cue.speaker}] {cue.text}"
        subs.append(pysubs2.SSAEvent(start=pysubs2.make_time(s=cue.start),
                                     end=pysubs2.make_time(s=cue.end),
                                     text=text, name=cue.speaker or ""))
    subs.save(path, format_=fmt)
    return path


def speakers_of(segments: list[Segment]) -> list[str]:
    return sorted({s.speaker for s in segments if s.speaker})
