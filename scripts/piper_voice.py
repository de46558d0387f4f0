"""Make a small random-weight Piper voice that piper-tts 1.8's real runtime loads offline.

    python scripts/piper_voice.py OUT_DIR

writes `OUT_DIR/random-voice.onnx` and `OUT_DIR/random-voice.onnx.json`. The ONNX graph is
not a VITS: it has a Piper voice's signature (inputs `input` int64 [1, n], `input_lengths`
int64 [1], `scales` float32 [3] = noise_scale, length_scale, noise_w; output `output`
float32 [1, 1, samples]) and makes a deterministic tone-plus-noise signal in [-1, 1]:

- every phoneme id lasts `ceil(length_scale * 256)` samples (ids at or past
  `input_lengths` last 0), so a sentence of n ids gives `n * ceil(length_scale * 256)`
  samples;
- each id has its own pitch (100-400 Hz); noise_scale scales a fixed noise table.

The per-id durations come from the graph's single `Ceil` node (`w_ceil`, [1, 1, n], in
samples), the tensor piper's alignment patch looks for, and the config's `hop_length` is 1,
so `PiperVoice.load(..., include_alignments=True)` gives exact phoneme/sample alignments.

The config uses espeak-ng (`en-us` by default) and Piper's default phoneme id map (piper
1.8 bundles espeak-ng and its data, Mandarin `cmn` included). Needs the `onnx` package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
HOP = 256  # samples per phoneme id at length_scale 1
NUM_SYMBOLS = 256
NAME = "random-voice"

# Piper's DEFAULT_PHONEME_ID_MAP (piper/phoneme_ids.py): these symbols in id order 0..160,
# then the diphthongs 161..165. "_" pad, "^" bos, "$" eos.
_SYMBOLS = (
    "_^$ !'(),-.:;?abcdefhijklmnopqrstuvwxyz\xe6\xe7\xf0\xf8\u0127\u014b\u0153\u01c0"
    "\u01c1\u01c2\u01c3\u0250\u0251\u0252\u0253\u0254\u0255\u0256\u0257\u0258\u0259"
    "\u025a\u025b\u025c\u025e\u025f\u0260\u0261\u0262\u0263\u0264\u0265\u0266\u0267"
    "\u0268\u026a\u026b\u026c\u026d\u026e\u026f\u0270\u0271\u0272\u0273\u0274\u0275"
    "\u0276\u0278\u0279\u027a\u027b\u027d\u027e\u0280\u0281\u0282\u0283\u0284\u0288"
    "\u0289\u028a\u028b\u028c\u028d\u028e\u028f\u0290\u0291\u0292\u0294\u0295\u0298"
    "\u0299\u029b\u029c\u029d\u029f\u02a1\u02a2\u02b2\u02c8\u02cc\u02d0\u02d1\u02de"
    "\u03b2\u03b8\u03c7\u1d7b\u2c710123456789\u0327\u0303\u032a\u032f\u0329\u02b0\u02e4"
    '\u03b5\u2193#"\u2191\u033a\u033bg\u02a6X\u031d\u030a\u025d\u02b7'
)
_DIPHTHONGS = ("a\u026a", "a\u028a", "\u0254\u026a", "e\u026a", "o\u028a")


def phoneme_id_map() -> dict[str, list[int]]:
    symbols = list(_SYMBOLS) + list(_DIPHTHONGS)
    assert len(symbols) == len(set(symbols)) == 166
    return {s: [i] for i, s in enumerate(symbols)}


def _graph_model(sample_rate: int, seed: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    freqs = rng.uniform(100.0, 400.0, NUM_SYMBOLS).astype(np.float32)
    noise = rng.uniform(-1.0, 1.0, 4096).astype(np.float32)

    def const(name: str, value, dtype=None) -> None:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))

    inits: list = []
    const("freqs", freqs)
    const("noise", noise)
    const("i0", 0, np.int64)
    const("i1", 1, np.int64)
    const("ax01", [0, 1], np.int64)
    const("flat", [-1], np.int64)
    const("out_shape", [1, 1, -1], np.int64)
    const("f1", 1.0, np.float32)
    const("fm1", -1.0, np.float32)
    const("hop", float(HOP), np.float32)
    const("two_pi_over_sr", 2.0 * np.pi / sample_rate, np.float32)
    const("tone_amp", 0.6, np.float32)
    const("noise_amp", 0.4, np.float32)
    const("n_noise", len(noise), np.int64)
    const("noise_step", 997, np.int64)

    N = helper.make_node
    nodes = [
        # scales = [noise_scale, length_scale, noise_w]
        N("Gather", ["scales", "i0"], ["noise_scale"], axis=0),
        N("Gather", ["scales", "i1"], ["length_scale"], axis=0),
        # mask[j] = j < input_lengths[0]   (like VITS' x_mask)
        N("Shape", ["input"], ["in_shape"]),
        N("Gather", ["in_shape", "i1"], ["n"], axis=0),
        N("Range", ["i0", "n", "i1"], ["pos"]),
        N("Less", ["pos", "input_lengths"], ["mask_b"]),
        N("Cast", ["mask_b"], ["mask"], to=TensorProto.FLOAT),
        # w_ceil = ceil(length_scale * 256 * mask)  [1, 1, n], samples per id
        N("Mul", ["length_scale", "hop"], ["w_one"]),
        N("Mul", ["mask", "w_one"], ["w"]),
        N("Unsqueeze", ["w", "ax01"], ["w_11n"]),
        N("Ceil", ["w_11n"], ["w_ceil"]),
        # t = 0..sum(w_ceil)-1; the id at sample t is input[t // ceil(length_scale * 256)]
        N("ReduceSum", ["w_ceil"], ["total_f"], keepdims=0),
        N("Cast", ["total_f"], ["total"], to=TensorProto.INT64),
        N("Range", ["i0", "total", "i1"], ["t"]),
        N("ReduceMax", ["w_ceil"], ["spid_max"], keepdims=0),  # all unmasked ids are equal
        N("Max", ["spid_max", "f1"], ["spid_f"]),
        N("Cast", ["spid_f"], ["spid"], to=TensorProto.INT64),
        N("Div", ["t", "spid"], ["idx"]),
        N("Reshape", ["input", "flat"], ["ids"]),
        N("Gather", ["ids", "idx"], ["pid"], axis=0),
        # tone: sin(2 pi f[pid] t / sr)
        N("Gather", ["freqs", "pid"], ["f"], axis=0),
        N("Cast", ["t"], ["t_f"], to=TensorProto.FLOAT),
        N("Mul", ["f", "t_f"], ["ft"]),
        N("Mul", ["ft", "two_pi_over_sr"], ["phase"]),
        N("Sin", ["phase"], ["sin"]),
        N("Mul", ["sin", "tone_amp"], ["tone"]),
        # noise: table[(t + 997 * pid) % 4096] * 0.4 * noise_scale
        N("Mul", ["pid", "noise_step"], ["pid_step"]),
        N("Add", ["t", "pid_step"], ["nsum"]),
        N("Mod", ["nsum", "n_noise"], ["nidx"]),
        N("Gather", ["noise", "nidx"], ["nz"], axis=0),
        N("Mul", ["noise_scale", "noise_amp"], ["nz_amp"]),
        N("Mul", ["nz", "nz_amp"], ["nz_scaled"]),
        N("Add", ["tone", "nz_scaled"], ["sig"]),
        N("Clip", ["sig", "fm1", "f1"], ["sig_c"]),
        N("Reshape", ["sig_c", "out_shape"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "random_piper_voice",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, "time"])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="reelserve-random-piper-voice",
    )
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    return model


def make_random_voice(
    out_dir: Path,
    *,
    espeak_voice: str = "en-us",
    sample_rate: int = SAMPLE_RATE,
    seed: int = 0,
) -> Path:
    """Write `out_dir/random-voice.onnx` (+ `.onnx.json`) and return the .onnx path."""
    import onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{NAME}.onnx"
    model = _graph_model(sample_rate, seed)
    onnx.checker.check_model(model)
    onnx_path.write_bytes(model.SerializeToString())
    config = {
        "dataset": NAME,
        "audio": {"sample_rate": sample_rate, "quality": "x_low"},
        "espeak": {"voice": espeak_voice},
        "language": {"code": espeak_voice},
        "phoneme_type": "espeak",
        "num_symbols": NUM_SYMBOLS,
        "num_speakers": 1,
        "speaker_id_map": {},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        # w_ceil counts samples, not 256-sample frames: alignments are exact.
        "hop_length": 1,
        "phoneme_id_map": phoneme_id_map(),
        "piper_version": "1.0.0",
    }
    Path(f"{onnx_path}.json").write_text(
        json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return onnx_path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    print(make_random_voice(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
