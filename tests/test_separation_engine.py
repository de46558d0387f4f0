"""The embedded REPET-SIM engine really separates: SI-SDR of the vocal estimate rises."""

from __future__ import annotations

import numpy as np

from nodes.families.separation import SeparateVocalsParams, repet_sim


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    ref = reference - reference.mean()
    est = estimate - estimate.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return float(10 * np.log10((target @ target) / ((est - target) @ (est - target))))


def synthetic_mix(sr: int = 22050, seconds: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """A repeating accompaniment (a 0.5 s chord pattern) plus a non-repeating 'voice':
    harmonic syllables of random pitch and length, like a melody that never repeats."""
    rng = np.random.default_rng(0)
    n = int(sr * seconds)
    pattern_len = int(0.5 * sr)
    pt = np.arange(pattern_len) / sr
    chord = sum(np.sin(2 * np.pi * f * pt) for f in (110.0, 165.0, 220.0, 330.0))
    pattern = chord * np.exp(-6 * pt)
    accomp = np.tile(pattern, n // pattern_len + 1)[:n]
    voice = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.15, 0.45) * sr)
        f0 = rng.uniform(180, 700)
        st = np.arange(min(length, n - pos)) / sr
        env = np.sin(np.pi * st / (length / sr)) ** 2
        voice[pos:pos + len(st)] = env * sum(np.sin(2 * np.pi * k * f0 * st) / k for k in (1, 2, 3))
        pos += length + int(rng.uniform(0.0, 0.1) * sr)
    voice = voice / np.abs(voice).max() * 0.5
    accomp = accomp / np.abs(accomp).max() * 0.5
    return voice.astype(np.float32), (voice + accomp).astype(np.float32)


def test_repet_sim_improves_vocal_si_sdr() -> None:
    voice, mix = synthetic_mix()
    vocals, accomp = repet_sim(mix[None, :], 22050, "fast")
    before = si_sdr(mix, voice)
    after = si_sdr(vocals[0], voice)
    print(f"vocal SI-SDR: mix {before:.2f} dB -> separated {after:.2f} dB")
    assert vocals.shape == accomp.shape == (1, len(mix))
    assert after > before + 6.0


def test_nested_config_is_merged_but_explicit_keys_win() -> None:
    p = SeparateVocalsParams.model_validate(
        {"audio_separator_config": {"quality_mode": "fast", "output_format": "wav"},
         "output_format": "flac"})
    assert p.quality_mode == "fast" and p.output_format == "flac"


def test_blocks_keep_the_quality_of_one_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 75 s mix, separated in blocks, separates as well as in one pass."""
    import soundfile as sf

    from nodes.families.blocks import block_bounds
    from nodes.families.separation import BLOCK_S, repet_sim_file

    sr = 22050
    voice, mix = synthetic_mix(sr=sr, seconds=75.0)
    whole, _ = repet_sim(mix[None, :], sr, "fast")
    src = tmp_path / "mix.wav"
    sf.write(src, mix, sr, subtype="FLOAT")
    done: list[float] = []
    repet_sim_file(src, tmp_path / "v.wav", tmp_path / "a.wav", "fast", done.append)
    blocked, _ = sf.read(tmp_path / "v.wav", dtype="float32")
    blocks = len(block_bounds(len(mix), int(BLOCK_S * sr))) - 1
    assert blocks >= 2 and len(done) == blocks and done[-1] == 1.0
    assert len(blocked) == len(mix)
    one_pass, in_blocks = si_sdr(whole[0], voice), si_sdr(blocked, voice)
    print(f"vocal SI-SDR over 75 s: one pass {one_pass:.2f} dB, in blocks {in_blocks:.2f} dB")
    assert in_blocks > one_pass - 1.0


def test_repeating_spectrum_matches_librosas_nn_filter() -> None:
    """The dense neighbour search picks librosa's neighbours: the same repeating spectrum
    (columns may differ only where two similarities tie to float precision)."""
    import librosa

    from nodes.families.separation import repeating_spectrum

    _, mix = synthetic_mix(sr=22050, seconds=30.0)
    mag = np.abs(librosa.stft(mix, n_fft=2048))
    ours = repeating_spectrum(mag, 43)
    theirs = librosa.decompose.nn_filter(mag, aggregate=np.median, metric="cosine", width=43)
    same = np.isclose(ours, theirs, rtol=1e-4, atol=1e-6).all(axis=0)
    assert ours.shape == theirs.shape and same.mean() > 0.99
    short = mag[:, :20]  # fewer frames than the default neighbour count needs
    assert repeating_spectrum(short, 5).shape == short.shape
