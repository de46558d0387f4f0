"""Build offline PaddleOCR model folders from the ONNX models inside the rapidocr wheel.

    python scripts/paddleocr_models.py OUT_DIR [--force] [--no-verify] [--only det|rec|cls]

Writes PaddleX / PaddleOCR 3.x inference-model folders:

- `OUT_DIR/det`: PP-OCRv6_small_det (DB text detection), from `PP-OCRv6_det_small.onnx`.
- `OUT_DIR/rec`: PP-OCRv6_small_rec (CTC text recognition, 18708 characters: Chinese,
  Latin scripts, symbols), from `PP-OCRv6_rec_small.onnx`. Its dictionary is the ONNX
  metadata entry `character`; CTC adds the blank and the space (18710 classes).
- `OUT_DIR/cls`: the 0/180 degree text-line classifier ch_ppocr_mobile_v2.0_cls, under
  the PaddleX name PP-LCNet_x0_25_textline_ori (a name PaddleX knows for this task; the
  network is the older classifier, so the folder's inference.yml resizes to 48x192 and
  normalises to [-1, 1]). Only needed with `use_textline_orientation=True`.

Each folder holds `inference.json` + `inference.pdiparams` (a Paddle 3 PIR program), the
`inference.yml` that PaddleX reads (model name, pre-processing, post-processing and, for
rec, `PostProcess.character_dict`), and `conversion.json` (source sha256, tool versions).
A folder whose `conversion.json` matches is left alone, so reruns are no-ops; `--force`
rebuilds.

Why: these are PaddleOCR's own PP-OCR weights. rapidocr exported them to ONNX and ships
them in its wheel, so they are already on the machine; x2paddle converts them back to
Paddle format, and PaddleOCR then runs without fetching models from its hosters (Hugging
Face, AIStudio, ModelScope, BOS). This script makes no network access either (x2paddle's
usage ping is turned off).

How:
1. Tensor names become Python identifiers (x2paddle writes them into Python code; the
   classifier has names such as `Constant@0`).
2. `x2paddle.convert.onnx2paddle` writes `x2paddle_code.py` + `model.pdparams`. x2paddle
   1.6 predates onnx 1.19, which removed `onnx.mapping` and `onnx.version`; a shim puts
   them back for the conversion.
3. The generated code is tidied: each ONNX Identity became a `paddle.assign` copy (a third
   of the detector's run time); they become plain names. Paddle 3.3's oneDNN executor
   cannot run `nearest_interp` ("ConvertPirAttribute2RuntimeAttribute not support
   ArrayAttribute<DoubleAttribute>"), and PaddleOCR turns oneDNN on by default on CPU, so
   the detector's integer-factor nearest upsamplings become `repeat_interleave` (same
   values).
4. `paddle.jit.save` writes the program with one input `x`; `inference.yml` is written.
5. Unless `--no-verify`: Paddle Inference, set up as PaddleX runs it (PIR, oneDNN), is
   compared with onnxruntime on random inputs; the largest difference is printed, and
   the script fails above 1e-2.

Needs (the optional OCR environment, not the service's): paddlepaddle 3.3, x2paddle 1.6,
onnx, PyYAML, rapidocr (source of the ONNX files), onnxruntime (the check).

Running PaddleOCR 3.7 on these folders, offline:

    import os
    os.environ["PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK"] = "True"  # set before the import
    from paddleocr import PaddleOCR

    ocr = PaddleOCR(
        text_detection_model_name="PP-OCRv6_small_det",
        text_detection_model_dir=f"{OUT_DIR}/det",
        text_recognition_model_name="PP-OCRv6_small_rec",
        text_recognition_model_dir=f"{OUT_DIR}/rec",
        use_doc_orientation_classify=False,
        use_doc_unwarping=False,
        use_textline_orientation=False,  # True needs the two cls arguments below
        # textline_orientation_model_name="PP-LCNet_x0_25_textline_ori",
        # textline_orientation_model_dir=f"{OUT_DIR}/cls",
        device="cpu",
        cpu_threads=2,  # default 10; match the cores
    )
    res = ocr.predict(image_bgr)[0]
    # res["rec_texts"]: list[str]; res["rec_scores"]: list[float];
    # res["rec_polys"]: list of (4, 2) int16 arrays, the corners clockwise from top-left

Every model is given by name and folder and the document models are off, so PaddleX
never looks a model up on a hoster. PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK=True also skips
the hoster connectivity probe, should anything ask for an official model.
PADDLE_PDX_LOCAL_FONT_FILE_PATH=/path/to/font.ttf avoids the font download that only
drawing results (`res.img`, `save_to_img`) triggers. PaddleX creates empty cache folders
under ~/.paddlex at import; PADDLE_PDX_CACHE_HOME moves them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT_VERSION = 1
MAX_DIFFERENCE = 1e-2
ASSIGN_COPY = re.compile(r"^(?P<indent>\s+)(?P<y>\w+) = paddle\.assign\(x=(?P<x>\w+)\)$", re.M)
NEAREST_INTERP = re.compile(
    r"paddle\.nn\.functional\.interpolate\(x=(?P<x>\w+), "
    r"scale_factor=\[(?P<h>\d+)\.0, (?P<w>\d+)\.0\], mode='nearest', align_mode=\d\)"
)


@dataclass(frozen=True)
class ModelSpec:
    """One rapidocr ONNX model and the PaddleX model folder made from it."""

    folder: str
    onnx_file: str
    model_name: str
    input_shape: tuple[int | None, ...]
    check_shapes: tuple[tuple[int, ...], ...]


SPECS = (
    ModelSpec(
        "det",
        "PP-OCRv6_det_small.onnx",
        "PP-OCRv6_small_det",
        (None, 3, None, None),
        ((1, 3, 736, 1312), (1, 3, 96, 160)),
    ),
    ModelSpec(
        "rec",
        "PP-OCRv6_rec_small.onnx",
        "PP-OCRv6_small_rec",
        (None, 3, 48, None),
        ((1, 3, 48, 320), (4, 3, 48, 797)),
    ),
    ModelSpec(
        "cls",
        "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
        "PP-LCNet_x0_25_textline_ori",
        (None, 3, 48, 192),
        ((1, 3, 48, 192), (6, 3, 48, 192)),
    ),
)


# -- sources and stamps ------------------------------------------------------------------


def rapidocr_models_dir() -> Path:
    """The `models` folder of the installed rapidocr wheel (found without importing it)."""
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise SystemExit("rapidocr is not installed: it provides the ONNX models")
    return Path(spec.origin).parent / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def stamp_for(spec: ModelSpec, source: Path) -> dict[str, Any]:
    from importlib.metadata import version

    tools = ("paddlepaddle", "x2paddle", "onnx", "rapidocr")
    return {
        "script_version": SCRIPT_VERSION,
        "model_name": spec.model_name,
        "source": source.name,
        "source_sha256": sha256(source),
        "versions": {name: version(name) for name in tools},
    }


def is_current(folder: Path, stamp: dict[str, Any]) -> bool:
    stamp_file = folder / "conversion.json"
    files = ("inference.json", "inference.pdiparams", "inference.yml")
    if not stamp_file.is_file() or not all((folder / name).is_file() for name in files):
        return False
    return bool(json.loads(stamp_file.read_text(encoding="utf-8")) == stamp)


# -- ONNX -> x2paddle code --------------------------------------------------------------


def identifier_names(names: Sequence[str]) -> dict[str, str]:
    """Map each tensor name that is not a Python identifier to a unique one."""
    taken = {name for name in names if name.isidentifier()}
    renamed: dict[str, str] = {}
    for name in names:
        if not name or name.isidentifier():
            continue
        base = "t_" + re.sub(r"\W", "_", name)
        candidate, n = base, 0
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        renamed[name] = candidate
    return renamed


def sanitized_onnx(source: Path, target: Path) -> Path:
    """Copy of the ONNX model whose tensor names are Python identifiers."""
    import onnx

    model = onnx.load(str(source))
    graph = model.graph
    values = [*graph.input, *graph.output, *graph.value_info, *graph.initializer]
    names = [value.name for value in values]
    for node in graph.node:
        names.extend([*node.input, *node.output])
    renamed = identifier_names(list(dict.fromkeys(names)))
    for value in values:
        value.name = renamed.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
        node.output[:] = [renamed.get(name, name) for name in node.output]
    onnx.save(model, str(target))
    return target


def shim_onnx_for_x2paddle() -> None:
    """Restore `onnx.version` and `onnx.mapping` (gone in onnx 1.19), which x2paddle uses."""
    import onnx
    import onnx.helper

    if not hasattr(onnx, "version"):
        onnx.version = types.SimpleNamespace(version=onnx.__version__)  # type: ignore[attr-defined]
    if "onnx.mapping" in sys.modules or importlib.util.find_spec("onnx.mapping") is not None:
        return
    table = {}
    for dtype in onnx.TensorProto.DataType.values():
        with contextlib.suppress(Exception):
            table[dtype] = onnx.helper.tensor_dtype_to_np_dtype(dtype)
    mapping = types.ModuleType("onnx.mapping")
    mapping.TENSOR_TYPE_TO_NP_TYPE = table  # type: ignore[attr-defined]
    sys.modules["onnx.mapping"] = mapping
    onnx.mapping = mapping  # type: ignore[attr-defined]


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send stdout, stderr and the root logger (x2paddle's chatter) to a file."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with log.open("w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        root.handlers = [logging.StreamHandler(out)]
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.handlers, root.level = handlers, level


def run_x2paddle(onnx_path: Path, work_dir: Path) -> Path:
    """Convert with x2paddle into work_dir/x2paddle; its output goes to x2paddle.log."""
    shim_onnx_for_x2paddle()
    from x2paddle.convert import onnx2paddle

    code_dir = work_dir / "x2paddle"
    log = work_dir / "x2paddle.log"
    with output_to(log):
        try:
            onnx2paddle(str(onnx_path), str(code_dir), disable_feedback=True)
        except Exception:
            # Its own export of the model can fail after the code is written; that code
            # is all this script uses, so it is judged below by what exists.
            logging.exception("onnx2paddle raised")
    if not (code_dir / "x2paddle_code.py").is_file() or not (code_dir / "model.pdparams").is_file():
        raise SystemExit(f"x2paddle failed:\n{log.read_text(errors='replace')[-3000:]}")
    return code_dir


def drop_copies(code: str) -> tuple[str, int]:
    """Turn `y = paddle.assign(x=x)` (an ONNX Identity; a real copy) into `y = x`."""
    return ASSIGN_COPY.subn(r"\g<indent>\g<y> = \g<x>", code)


def replace_nearest_interp(code: str) -> tuple[str, int]:
    """Rewrite integer-factor nearest upsampling as repeat_interleave (oneDNN can run it)."""

    def repeat(match: re.Match[str]) -> str:
        x, h, w = match["x"], match["h"], match["w"]
        return f"paddle.repeat_interleave(paddle.repeat_interleave({x}, {h}, axis=2), {w}, axis=3)"

    return NEAREST_INTERP.subn(repeat, code)


def tidy_generated_code(code_file: Path) -> list[str]:
    """Apply the rewrites to x2paddle_code.py; returns what was changed, for the report."""
    code, copies = drop_copies(code_file.read_text(encoding="utf-8"))
    code, upsamplings = replace_nearest_interp(code)
    code_file.write_text(code, encoding="utf-8")
    notes = [f"{copies} Identity copies dropped"] if copies else []
    if upsamplings:
        notes.append(f"{upsamplings} nearest_interp -> repeat_interleave")
    return notes


# -- x2paddle code -> Paddle inference model -------------------------------------------


@contextlib.contextmanager
def fresh_paddle_names() -> Iterator[None]:
    """A new parameter-name scope: x2paddle already built this layer in this process."""
    import paddle

    with paddle.utils.unique_name.guard():
        yield


def load_generated_model(code_dir: Path, module_name: str) -> Any:
    """The generated `ONNXModel` layer with the converted weights, in eval mode."""
    import paddle

    spec = importlib.util.spec_from_file_location(module_name, code_dir / "x2paddle_code.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {code_dir / 'x2paddle_code.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    paddle.disable_static()
    model = module.ONNXModel()
    model.set_dict(paddle.load(str(code_dir / "model.pdparams")))
    model.eval()
    return model


def export_inference_model(code_dir: Path, spec: ModelSpec, folder: Path) -> None:
    """Save `inference.json` + `inference.pdiparams` with one float32 input `x`."""
    import paddle

    with fresh_paddle_names():
        model = load_generated_model(code_dir, f"x2paddle_{spec.folder}")
        shape = list(spec.input_shape)
        x = paddle.static.InputSpec(shape=shape, dtype="float32", name="x")
        static = paddle.jit.to_static(model, input_spec=[x], full_graph=True)
        paddle.jit.save(static, str(folder / "inference"))
    (folder / "inference.pdiparams.info").unlink(missing_ok=True)


# -- inference.yml ----------------------------------------------------------------------


def det_config(model_name: str) -> dict[str, Any]:
    """PaddleX's inference.yml for PP-OCRv6 det (DB post-processing, ImageNet norm)."""
    normalize = {
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "scale": 1 / 255,
        "order": "hwc",
    }
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"resize_long": 960}},
                {"NormalizeImage": normalize},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {
            "name": "DBPostProcess",
            "thresh": 0.3,
            "box_thresh": 0.6,
            "max_candidates": 1000,
            "unclip_ratio": 1.5,
        },
    }


def rec_config(model_name: str, characters: list[str]) -> dict[str, Any]:
    """PaddleX's inference.yml for PP-OCRv6 rec (48x320 resize, CTC decoding)."""
    keep = ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": keep}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def cls_config(model_name: str) -> dict[str, Any]:
    """inference.yml for the 0/180 classifier: 192x48 input scaled to [-1, 1]."""
    normalize = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "scale": 1 / 255, "order": ""}
    return {
        "Global": {"model_name": model_name},
        "PreProcess": {
            "transform_ops": [
                {"ResizeImage": {"size": [192, 48]}},
                {"NormalizeImage": normalize},
                {"ToCHWImage": None},
            ]
        },
        "PostProcess": {"Topk": {"topk": 1, "label_list": ["0_degree", "180_degree"]}},
    }


def rec_characters(onnx_path: Path) -> list[str]:
    """The recognizer's dictionary from the ONNX metadata, checked against its classes."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    meta = {prop.key: prop.value for prop in model.metadata_props}
    if "character" not in meta:
        raise SystemExit(f"{onnx_path.name} has no 'character' metadata")
    characters = meta["character"].split("\n")
    classes = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
    if len(characters) + 2 != classes:  # + CTC blank + space
        raise SystemExit(f"{len(characters)} characters + 2 != {classes} output classes")
    return characters


def model_config(spec: ModelSpec, source: Path) -> dict[str, Any]:
    if spec.folder == "det":
        return det_config(spec.model_name)
    if spec.folder == "rec":
        return rec_config(spec.model_name, rec_characters(source))
    return cls_config(spec.model_name)


def write_yml(config: dict[str, Any], path: Path) -> None:
    """Write inference.yml and check that it reads back as written (as PaddleX reads it)."""
    import yaml

    text = yaml.safe_dump(config, allow_unicode=True, sort_keys=False, width=1 << 16)
    path.write_text(text, encoding="utf-8")
    if yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.FullLoader) != config:
        raise SystemExit(f"{path} does not read back as written")


# -- check ----------------------------------------------------------------------------


def paddle_predictor(folder: Path) -> Any:
    """Paddle Inference on CPU, set up as PaddleX runs it (PIR, oneDNN, memory optim)."""
    from paddle import inference

    config = inference.Config(str(folder / "inference.json"), str(folder / "inference.pdiparams"))
    config.disable_gpu()
    config.enable_mkldnn()
    config.set_cpu_math_library_num_threads(os.cpu_count() or 1)
    config.enable_new_ir(True)
    config.enable_new_executor()
    config.set_optimization_level(3)
    config.enable_memory_optim()
    config.disable_glog_info()
    return inference.create_predictor(config)


def max_difference(source: Path, folder: Path, shapes: Sequence[tuple[int, ...]]) -> float | None:
    """Largest |onnxruntime - Paddle| over random inputs; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import numpy as np

    session = onnxruntime.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    predictor = paddle_predictor(folder)
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    output = predictor.get_output_handle(predictor.get_output_names()[0])
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in shapes:
        x = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
        expected = session.run(None, {input_name: x})[0]
        handle.reshape(list(shape))
        handle.copy_from_cpu(x)
        predictor.run()
        got = output.copy_to_cpu()
        if got.shape != expected.shape:
            raise SystemExit(f"{folder}: output shape {got.shape} != ONNX {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


# -- driver ---------------------------------------------------------------------------


@contextlib.contextmanager
def staging_dir(out_dir: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def build(spec: ModelSpec, source: Path, out_dir: Path, verify: bool) -> None:
    """Convert one model into out_dir/<folder>, replacing that folder only when complete."""
    target = out_dir / spec.folder
    stamp = stamp_for(spec, source)
    if is_current(target, stamp):
        print(f"{target}: up to date ({spec.model_name})")
        return
    with staging_dir(out_dir) as work:
        code_dir = run_x2paddle(sanitized_onnx(source, work / "model.onnx"), work)
        notes = tidy_generated_code(code_dir / "x2paddle_code.py")
        folder = work / spec.folder
        folder.mkdir()
        export_inference_model(code_dir, spec, folder)
        write_yml(model_config(spec, source), folder / "inference.yml")
        difference = max_difference(source, folder, spec.check_shapes) if verify else None
        if difference is not None:
            notes.append(f"max |paddle - onnxruntime| on random inputs {difference:.1e}")
            if difference > MAX_DIFFERENCE:
                raise SystemExit(f"{spec.folder}: differs from {source.name}: {notes}")
        (folder / "conversion.json").write_text(json.dumps(stamp, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    files = ", ".join(sorted(path.name for path in target.iterdir()))
    print(f"{target}: {spec.model_name} from {source.name} ({'; '.join(notes)})\n  {files}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    parser.add_argument(
        "--only",
        action="append",
        choices=[spec.folder for spec in SPECS],
        help="build only this folder (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ log, read at import
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    models = rapidocr_models_dir()
    for spec in SPECS:
        if args.only and spec.folder not in args.only:
            continue
        if args.force:
            shutil.rmtree(out_dir / spec.folder, ignore_errors=True)
        build(spec, models / spec.onnx_file, out_dir, verify=not args.no_verify)


if __name__ == "__main__":
    main()
