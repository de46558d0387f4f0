"""The pyannote.audio diarization engine (install `reelserve[pyannote]`).

The pipeline is loaded once per replica from `REELSERVE_PYANNOTE_PIPELINE`: a local
`config.yaml` (or its folder, e.g. a downloaded `pyannote/speaker-diarization-community-1`
snapshot with its `$model/...` subfolders), or a hub name used with `HF_TOKEN` where a hub
is reachable. The node's decoded 16 kHz WAV is read and handed over in memory, so pyannote's own
decoders are not needed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nodes.families.diarize_embedded import SR, Turn
from reuse.settings import Settings


class PyannoteDiarizer:
    def __init__(self, settings: Settings, device: str) -> None:
        if not settings.pyannote_pipeline:
            raise RuntimeError("the pyannote engine needs REELSERVE_PYANNOTE_PIPELINE (a local "
                               "config.yaml or folder, or a hub name with HF_TOKEN)")
        with warnings.catch_warnings():  # its audio decoders are optional: we pass waveforms
            warnings.simplefilter("ignore", UserWarning)
            import torch
            from pyannote.audio import Pipeline

        self.torch = torch
        source = settings.pyannote_pipeline
        local = Path(source)
        pipeline = Pipeline.from_pretrained(local if local.exists() else source,
                                            token=settings.hf_token)
        if pipeline is None:
            raise RuntimeError(f"pyannote could not load the pipeline {source!r}")
        self.pipeline: Any = pipeline.to(torch.device(device))
        folder = local.parent.name if local.is_file() else local.name
        self.label = f"pyannote:{folder}"  # the `model` recorded in diarization files

    def diarize(self, wav: Path, num_speakers: int | None = None,
                min_speakers: int | None = None, max_speakers: int | None = None,
                progress: Callable[[float], None] = lambda f: None) -> list[Turn]:
        steps = ("segmentation", "speaker_counting", "embeddings", "discrete_diarization")

        def hook(step: str, _artifact: Any, file: Any = None, total: int | None = None,
                 completed: int | None = None) -> None:
            done = steps.index(step) if step in steps else 0
            part = (completed / total) if total and completed is not None else 1.0
            progress((done + part) / len(steps))

        import soundfile as sf

        # pyannote slides its own windows over the waveform, which it needs whole
        audio, _ = sf.read(wav, dtype="float32")
        waveform = self.torch.from_numpy(np.ascontiguousarray(audio)).unsqueeze(0)
        output = self.pipeline({"waveform": waveform, "sample_rate": SR}, hook=hook,
                               num_speakers=num_speakers, min_speakers=min_speakers,
                               max_speakers=max_speakers)
        annotation = getattr(output, "speaker_diarization", output)
        return [(float(seg.start), float(seg.end), str(label))
                for seg, _, label in annotation.itertracks(yield_label=True)]
