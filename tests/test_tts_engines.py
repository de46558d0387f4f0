"""The speech engines and the fitting of speech into segment times (in-process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nodes.families.llm import parse_reply
from nodes.families.llm_subtitles import load_subtitles
from nodes.families.tts import fit
from nodes.families.tts_engines import SpeechRequest, load_engine
from reuse.errors import InputError
from reuse.settings import Settings

SR = 16000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_fit_pads_stretches_and_cuts() -> None:
    out, how, speed = fit(tone(1.0), SR, 2.0, max_speed=1.5)
    assert (how, speed, len(out)) == ("padded", 1.0, 2 * SR)
    assert np.abs(out[SR + 10:]).max() == 0  # silence after the speech
    out, how, speed = fit(tone(1.2), SR, 1.0, max_speed=1.5)
    assert how == "stretched" and speed == pytest.approx(1.2) and len(out) == SR
    assert np.abs(out[: int(0.9 * SR)]).max() > 0.1  # sped up, not cut
    out, how, speed = fit(tone(3.0), SR, 1.0, max_speed=1.5)
    assert (how, speed, len(out)) == ("truncated", 1.5, SR)
    assert abs(out[-1]) < 1e-3  # faded out, no click


def test_espeak_english_mandarin_and_pinyin() -> None:
    engine = load_engine("espeak", Settings(), "cpu")
    said = (("Hello there.", None), ("你好世界", None), ("ni3 hao3", "cmn-latn-pinyin"))
    for text, voice in said:
        audio, sr = engine.synthesize(text, SpeechRequest(voice=voice))
        assert sr == 22050 and len(audio) > 0.3 * sr and np.abs(audio).max() > 0.05
    assert engine.default_voice("你好世界") == "cmn"
    with pytest.raises(InputError, match="no voice"):
        engine.synthesize("x", SpeechRequest(voice="xx-nowhere"))


def test_indextts2_without_its_package_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="`indextts` package is not installed"):
        load_engine("indextts2", Settings(indextts_model_dir=tmp_path), "cpu")
    with pytest.raises(InputError, match="INDEXTTS_MODEL_DIR"):
        load_engine("indextts2", Settings(), "cpu")


def test_reply_format() -> None:
    good = '```json\n{"lines": [{"id": 3, "text": " Hi. "}, {"id": 4, "text": "Yes."}]}\n```'
    assert parse_reply(good, [3, 4]) == {3: "Hi.", 4: "Yes."}
    for bad, why in (("Sure!", "not JSON"), ('{"line": []}', "no \"lines\""),
                     ('{"lines": [{"id": 4, "text": "a"}, {"id": 3, "text": "b"}]}', "ids"),
                     ('{"lines": [{"id": 3, "text": "a"}]}', "ids"),
                     ('{"lines": [{"id": 3, "text": ""}, {"id": 4, "text": "b"}]}', "no text")):
        with pytest.raises(ValueError, match=why):
            parse_reply(bad, [3, 4])


def test_an_empty_subtitle_file_is_empty_subtitles() -> None:
    subs, fmt = load_subtitles("/x/subtitles.vtt", "", "subtitles.vtt")
    assert len(subs) == 0 and fmt == "vtt"
    with pytest.raises(InputError, match="not a subtitle file"):
        load_subtitles("/x/a.srt", "just some words", "a.srt")
