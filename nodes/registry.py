"""The node registry: an explicit list. Validation, supported-tasks, docs and the serve
config all come from here."""

from __future__ import annotations

from nodes.families import (
    ffmpeg,
    ffmpeg_split,
    llm_subtitles,
    merge,
    ocr_area,
    ocr_cues,
    ocr_stitch,
    pyannote,
    separation,
    subtitle_files,
    tts,
    tts_prep,
    whisper,
)
from nodes.spec import NodeSpec

NODES: tuple[NodeSpec, ...] = (
    *ffmpeg.SPECS,
    *ffmpeg_split.SPECS,
    *separation.SPECS,
    *whisper.SPECS,
    *pyannote.SPECS,
    *subtitle_files.SPECS,
    *llm_subtitles.SPECS,
    *merge.SPECS,
    *tts_prep.SPECS,
    *tts.SPECS,
    *ocr_area.SPECS,
    *ocr_stitch.SPECS,
    *ocr_cues.SPECS,
)

BY_NAME: dict[str, NodeSpec] = {spec.name: spec for spec in NODES}


def get(task_name: str) -> NodeSpec | None:
    return BY_NAME.get(task_name)


def names() -> list[str]:
    return [spec.name for spec in NODES]


def select(wanted: list[str] | None) -> list[NodeSpec]:
    """The specs to deploy: all by default, else the named subset (unknown names refused)."""
    if not wanted:
        return list(NODES)
    unknown = sorted(set(wanted) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown nodes {unknown}; registered: {names()}")
    return [spec for spec in NODES if spec.name in wanted]
