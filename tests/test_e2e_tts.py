"""indextts.generate_speech over HTTP: espeak-ng speech that whisper reads back, Mandarin,
a track aligned to segment times, the piper engine, and refused or failing requests."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from tests.conftest import post_task, run_task, unique, wait_stage
from tests.test_speech_engines import wer


def test_spoken_text_is_heard_back_by_whisper(client: httpx.Client) -> None:
    task_id = unique("say")
    said = "Good morning, this is the first speaker talking about the weather."
    out = run_task(client, task_id, "indextts.generate_speech", {"text": said})
    assert out["engine"] == "espeak" and out["voices"] == ["en-us"]
    assert out["voice_cloning"] is False and out["segments_dir"] is None
    audio, sr = sf.read(out["audio_path"])
    assert sr == out["sample_rate"] and abs(len(audio) / sr - out["duration"]) < 0.01
    heard = run_task(client, task_id, "faster_whisper.transcribe_audio",
                     {"audio_path": out["audio_path"], "language": "en"}, timeout=180)
    text = " ".join(s["text"] for s in
                    json.loads(Path(heard["segments_file"]).read_text())["segments"])
    assert wer(said, text) <= 0.3, text  # tiny.en on espeak-ng's voice


def test_mandarin_text(client: httpx.Client) -> None:
    out = run_task(client, unique("zh"), "indextts.generate_speech",
                   {"text": "你好\uff0c欢迎使用配音服务。", "output_filename": "问候"})
    assert out["voices"] == ["cmn"]
    audio, sr = sf.read(out["audio_path"])
    assert Path(out["audio_path"]).name == "speech.wav"  # a name with no safe character
    assert len(audio) / sr > 1.5 and np.abs(audio).max() > 0.05


def windows(audio: np.ndarray, sr: int, spans: list[tuple[float, float]]) -> list[float]:
    return [float(np.abs(audio[int(a * sr):int(b * sr)]).max(initial=0.0)) for a, b in spans]


def test_segments_become_a_track_on_their_times(client: httpx.Client,
                                                storage_root: Path) -> None:
    segments = [
        {"start": 1.0, "end": 4.0, "text": "Hello there.", "speaker": "SPEAKER_00"},
        {"start": 5.0, "end": 6.0, "speaker": "SPEAKER_01",
         "text": "This sentence is far too long to be said in a single second."},
        {"start": 8.0, "end": 10.0, "text": "Goodbye now.", "speaker": "SPEAKER_00"},
    ]
    path = storage_root / "inputs" / "tts_segments.json"
    path.write_text(json.dumps({"metadata": {"total_duration": 12.0}, "segments": segments}))
    out = run_task(client, unique("track"), "indextts.generate_speech",
                   {"segments_file": str(path), "max_speed": 2.0})
    audio, sr = sf.read(out["audio_path"])
    assert abs(len(audio) / sr - 12.0) < 0.01 and out["duration"] == 12.0
    silent = windows(audio, sr, [(0, 0.99), (4.01, 4.99), (6.01, 7.99), (10.01, 12)])
    spoken = windows(audio, sr, [(1, 4), (5, 6), (8, 10)])
    assert max(silent) < 1e-3 and min(spoken) > 0.05
    report = json.loads(Path(out["alignment_file"]).read_text())["segments"]
    assert [r["fit"] for r in report] == ["padded", "truncated", "padded"]
    assert report[1]["speed"] == 2.0 and report[1]["speech_duration"] > 2.0
    assert out["fit_summary"] == {"padded": 2, "stretched": 0, "truncated": 1}
    # each speaker its own espeak variant; each segment's speech in its own file
    assert [r["voice"] for r in report] == ["en-us", "en-us+f2", "en-us"]
    assert sorted(p.name for p in Path(out["segments_dir"]).iterdir()) == \
        ["segment_0000.wav", "segment_0001.wav", "segment_0002.wav"]


def test_piper_engine(client: httpx.Client) -> None:
    out = run_task(client, unique("piper"), "indextts.generate_speech",
                   {"text": "Hello world. This is a test.", "engine": "piper"})
    assert out["engine"] == "piper" and out["voices"] == ["random-voice"]
    audio, sr = sf.read(out["audio_path"])
    assert sr == 16000 and len(audio) > 16000 * 0.5


def test_more_text_than_time_fails_before_any_synthesis(client: httpx.Client,
                                                        storage_root: Path) -> None:
    """A few kilobytes must not ask for hours of speech (the attacker's probe)."""
    cases = {"too-long": ([{"start": 0, "end": 1, "text": "word " * 600}], "at most 2000"),
             "too-much": ([{"start": i, "end": i + 1, "text": "word " * 380} for i in range(3)],
                          "cannot be spoken in that time"),
             "too-late": ([{"start": 0, "end": 1e6, "text": "hi"}], "may last at most")}
    for name, (segments, message) in cases.items():
        path = storage_root / "inputs" / f"tts-{name}.json"
        path.write_text(json.dumps({"segments": segments}))
        task_id = unique("budget")
        assert post_task(client, task_id, "indextts.generate_speech",
                         {"segments_file": str(path)}).status_code == 202
        stage = wait_stage(client, task_id, "indextts.generate_speech")
        assert stage["status"] == "FAILED" and message in stage["error"], stage["error"]
        folder = storage_root / "jobs" / task_id / "indextts.generate_speech"
        assert (folder / str(stage["attempt"])).is_dir()  # its folder: made, and
        assert not (folder / str(stage["attempt"]) / "segments").exists()  # no synthesis


def test_refused_and_failing_requests(client: httpx.Client) -> None:
    task_id = unique("ttsbad")
    for data in ({"text": "x", "voice": "../../etc/passwd"},
                 {"text": "x", "voice_map": {"A": "a/b"}},
                 {"text": "x", "engine": "say"},
                 {"text": "x", "emotion_vector": [0.5]},
                 {"text": "x", "spk_audio_prompt": "/etc/passwd"},
                 {}):
        r = post_task(client, task_id, "indextts.generate_speech", data)
        assert r.status_code == 422, (data, r.text)
    assert client.get(f"/v1/tasks/{task_id}/status").status_code == 404
    for data, message in (({"text": "x", "engine": "indextts2"}, "INDEXTTS_MODEL_DIR"),
                          ({"text": "x", "voice": "xx-nowhere"}, "no voice")):
        task_id = unique("ttsfail")
        assert post_task(client, task_id, "indextts.generate_speech", data).status_code == 202
        stage = wait_stage(client, task_id, "indextts.generate_speech")
        assert stage["status"] == "FAILED" and message in stage["error"], stage
