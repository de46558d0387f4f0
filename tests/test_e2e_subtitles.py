"""The subtitle nodes over HTTP: speaker merging, subtitle files, TTS regrouping, each
through POST /v1/tasks on the session's graph, inputs from params and from stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pysubs2
import pytest

from tests.conftest import post_task, run_task, unique, wait_stage


def words(text: str, start: float, step: float = 0.4) -> list[dict[str, Any]]:
    return [{"word": " " + w, "start": round(start + i * step, 3),
             "end": round(start + (i + 1) * step - 0.05, 3), "probability": 0.9}
            for i, w in enumerate(text.split())]


# a transcription whose second segment is spoken by two people (the speaker changes at 6 s)
SEGMENTS = [
    {"id": 0, "start": 0.0, "end": 2.35, "text": "Good morning to you all.",
     "words": words("Good morning to you all.", 0.0, 0.48)},
    {"id": 1, "start": 4.0, "end": 8.0,
     "text": "Thank you for coming. Glad to be here today with you.",
     "words": words("Thank you for coming. Glad to be here today with you.", 4.0, 0.4)},
]
TURNS = [{"start": 0.0, "end": 2.5, "speaker": "SPEAKER_00"},
         {"start": 3.9, "end": 5.95, "speaker": "SPEAKER_00"},
         {"start": 5.95, "end": 8.2, "speaker": "SPEAKER_01"}]


@pytest.fixture(scope="module")
def transcript(storage_root: Path) -> tuple[Path, Path]:
    folder = storage_root / "inputs"
    folder.mkdir(parents=True, exist_ok=True)
    seg = folder / "transcript.json"
    seg.write_text(json.dumps({"metadata": {"language": "en", "total_duration": 9.0},
                               "segments": SEGMENTS}))
    dia = folder / "turns.json"
    dia.write_text(json.dumps({"audio_path": "x.wav", "total_speakers": 2, "segments": TURNS}))
    return seg, dia


def stages(client: httpx.Client, task_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/tasks/{task_id}/status").json()["stages"])


def test_word_merge_then_subtitles_then_tts_groups_on_one_task(
        client: httpx.Client, transcript: tuple[Path, Path]) -> None:
    seg, dia = transcript
    task_id = unique("subs")
    merged = run_task(client, task_id, "wservice.merge_with_word_timestamps",
                      {"segments_file": str(seg), "diarization_file": str(dia)})
    texts = [(s["speaker"], s["text"]) for s in merged["merged_segments"]]
    assert texts == [("SPEAKER_00", "Good morning to you all."),
                     ("SPEAKER_00", "Thank you for coming. Glad"),
                     ("SPEAKER_01", "to be here today with you.")]
    assert merged["input_summary"]["segments_source"] == "input"
    assert merged["input_summary"]["output_segments"] == 3

    subs = run_task(client, task_id, "wservice.generate_subtitle_files", {"max_line_chars": 20})
    cues = json.loads(Path(subs["json_path"]).read_text())
    assert cues["metadata"]["source"] == "wservice.merge_with_word_timestamps"
    assert subs["speakers"] == ["SPEAKER_00", "SPEAKER_01"]
    # every format parses back (pysubs2) to the JSON's cues: same times, same text
    for key, fmt in (("subtitle_path", "srt"), ("vtt_path", "vtt"), ("ass_path", "ass")):
        events = [e for e in pysubs2.load(subs[key], format_=fmt) if not e.is_comment]
        assert [e.plaintext for e in events] == [c["text"] for c in cues["segments"]]
        step = 10 if fmt == "ass" else 1  # ASS keeps centiseconds
        for e, c in zip(events, cues["segments"], strict=True):
            assert abs(e.start - c["start"] * 1000) <= step
            assert abs(e.end - c["end"] * 1000) <= step
        if fmt == "ass":
            assert [e.name for e in events] == [c["speaker"] for c in cues["segments"]]
    for c in cues["segments"]:  # the line limit holds
        assert all(len(line) <= 20 for line in c["text"].split("\n"))
    speaker_srt = pysubs2.load(subs["speaker_srt_path"], format_="srt")
    assert speaker_srt[2].plaintext.startswith("[SPEAKER_01] ")
    words_json = json.loads(Path(subs["word_timestamps_json_path"]).read_text())
    assert sum(len(s["words"]) for s in words_json["segments"]) == 16

    tts = run_task(client, task_id, "wservice.prepare_tts_segments", {"min_duration": 1.0})
    assert tts["source_stage"] == "wservice.merge_with_word_timestamps"
    groups = tts["prepared_segments"]
    assert [g["speaker"] for g in groups] == ["SPEAKER_00", "SPEAKER_00", "SPEAKER_01"]
    assert " ".join(g["text"] for g in groups).split() == \
        " ".join(s["text"] for s in SEGMENTS).split()
    saved = json.loads(Path(tts["tts_segments_file"]).read_text())
    assert saved["metadata"]["total_duration"] == 9.0  # the audio's length travels along
    assert set(stages(client, task_id)) == {"wservice.merge_with_word_timestamps",
                                            "wservice.generate_subtitle_files",
                                            "wservice.prepare_tts_segments"}


def test_segment_merge_with_inline_data(client: httpx.Client) -> None:
    out = run_task(client, unique("inline"), "wservice.merge_speaker_segments",
                   {"segments_data": [{"start": s["start"], "end": s["end"], "text": s["text"]}
                                      for s in SEGMENTS],
                    "speaker_segments_data": TURNS})
    # the second segment overlaps SPEAKER_01 (2.05 s) more than SPEAKER_00 (1.95 s)
    assert [s["speaker"] for s in out["merged_segments"]] == ["SPEAKER_00", "SPEAKER_01"]
    assert out["input_summary"]["segments_source"] == "segments_data"
    assert Path(out["merged_segments_file"]).is_file()


def test_prepare_groups_one_speaker_within_limits(client: httpx.Client) -> None:
    data = [{"start": float(i), "end": i + 0.8, "text": f"part {i}.", "speaker": "A"}
            for i in range(30)]
    out = run_task(client, unique("prep"), "wservice.prepare_tts_segments",
                   {"segments_data": data, "min_duration": 3, "max_duration": 10,
                    "split_on_punctuation": False})
    assert all(g["duration"] <= 10 for g in out["prepared_segments"])
    assert [i for g in out["prepared_segments"] for i in g["source_ids"]] == list(range(30))


def test_chinese_subtitles_are_cut_by_characters(client: httpx.Client) -> None:
    text = "今天我们来讨论一下人工智能在视频制作中的应用以及它带来的变化"
    out = run_task(client, unique("zh"), "wservice.generate_subtitle_files",
                   {"segments_data": [{"start": 0.0, "end": 6.0, "text": text}],
                    "language": "zh", "max_lines": 1})
    cues = json.loads(Path(out["json_path"]).read_text())["segments"]
    assert "".join(c["text"] for c in cues) == text
    assert len(cues) == 2 and all(len(c["text"]) <= 16 for c in cues)
    assert cues[0]["start"] == 0.0 and cues[-1]["end"] == 6.0


def test_bad_segments_are_refused_and_nothing_is_written(client: httpx.Client) -> None:
    task_id = unique("badseg")
    for data in ({"segments_data": [{"start": 2.0, "end": 1.0, "text": "x"}]},
                 {"segments_data": [{"start": -1, "end": 1.0}]},
                 {"segments_data": [{"start": 0, "end": 1.0}], "segments_file": "a.json"},
                 {"segments_data": [{"start": 0, "end": 1}], "max_line_chars": 2},
                 # a label that would write its own cue into the speaker SRT / ASS file
                 {"segments_data": [{"start": 0, "end": 1, "text": "x",
                                     "speaker": "A\n\n99\n00:00:00,000 --> 09:00:00,000"}]},
                 {"segments_data": [{"start": 0, "end": 1, "text": "x", "speaker": "B,0,0"}]}):
        r = post_task(client, task_id, "wservice.generate_subtitle_files", data)
        assert r.status_code == 422, r.text
    r = post_task(client, task_id, "wservice.prepare_tts_segments",
                  {"segments_data": [], "min_duration": 5, "max_duration": 2})
    assert r.status_code == 422 and "min_duration" in r.text
    r = post_task(client, task_id, "wservice.merge_speaker_segments", {"segments_data": []})
    assert r.status_code == 422 and "diarization_file" in r.text
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404


def test_word_merge_without_words_fails_clearly(client: httpx.Client,
                                                transcript: tuple[Path, Path]) -> None:
    task_id = unique("nowords")
    r = post_task(client, task_id, "wservice.merge_with_word_timestamps",
                  {"segments_data": [{"start": 0, "end": 2, "text": "no words here"}],
                   "diarization_file": str(transcript[1])})
    assert r.status_code == 202
    stage = wait_stage(client, task_id, "wservice.merge_with_word_timestamps")
    assert stage["status"] == "FAILED" and "no word timestamps" in stage["error"]


def test_a_broken_segments_file_fails_that_stage_only(client: httpx.Client,
                                                      storage_root: Path) -> None:
    bad = storage_root / "inputs" / "broken.json"
    bad.write_text(json.dumps({"segments": [{"start": 3, "end": 1}]}))
    task_id = unique("broken")
    run_task(client, task_id, "wservice.prepare_tts_segments",
             {"segments_data": [{"start": 0, "end": 1, "text": "ok."}]})
    assert post_task(client, task_id, "wservice.generate_subtitle_files",
                     {"segments_file": str(bad)}).status_code == 202
    stage = wait_stage(client, task_id, "wservice.generate_subtitle_files")
    assert stage["status"] == "FAILED" and "invalid" in stage["error"]
    assert stages(client, task_id)["wservice.prepare_tts_segments"]["status"] == "SUCCESS"
