"""Speech synthesis with espeak-ng (the `espeakng-loader` wheel ships the library and its
data, so this works offline without system packages). Used by `scripts/make_sample.py`,
the tests and the benches to make real speech; through ctypes because the wheel ships only
the C library.

espeak-ng keeps global state: one process synthesizes one text at a time (a lock).
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)

_lock = threading.Lock()
_state: dict[str, object] = {}


def _library() -> tuple[ctypes.CDLL, int]:
    if "lib" not in _state:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        _state.update(lib=lib, rate=rate)
    return _state["lib"], int(_state["rate"])  # type: ignore[return-value,call-overload]


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160,
               pitch: int = 50) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their sample rate."""
    with _lock:
        lib, sample_rate = _library()
        chunks: list[np.ndarray] = []

        def collect(wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int) -> int:
            if n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        callback = _CALLBACK(collect)  # kept alive until synthesis returns
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_RATE, rate_wpm, 0)
        lib.espeak_SetParameter(_PITCH, pitch, 0)
        raw = text.encode()
        lib.espeak_Synth(raw, len(raw) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return samples.astype(np.float32) / 32768.0, sample_rate


def write_speech(path: Path, turns: list[tuple[str, str]], gap_s: float = 0.4,
                 sample_rate: int = 16000) -> list[tuple[float, float, str]]:
    """Write turns of (voice, text) one after another to a WAV; returns the reference turns
    as (start, end, voice)."""
    import librosa

    pieces: list[np.ndarray] = []
    reference: list[tuple[float, float, str]] = []
    t = 0.0
    gap = np.zeros(int(gap_s * sample_rate), dtype=np.float32)
    for voice, text in turns:
        audio, sr = synthesize(text, voice=voice)
        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate)
        reference.append((t, t + len(audio) / sample_rate, voice))
        pieces += [audio, gap]
        t += (len(audio) + len(gap)) / sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.concatenate(pieces), sample_rate)
    return reference
