"""Text reading engines of the paddleocr.* nodes: one interface, loaded once per replica.

- `rapidocr` (embedded default): PaddleOCR's PP-OCR detection, classification and
  recognition models as ONNX, shipped inside the `rapidocr` wheel and run by ONNX Runtime;
  Chinese and English, nothing to download. Runs on the CPU.
- `paddleocr` (the `.[paddle]` extra): PaddleOCR 3 on PaddlePaddle, from the local model
  folders of REELSERVE_PADDLEOCR_MODEL_DIR (`det/`, `rec/`; `scripts/paddleocr_models.py`
  makes them offline). Uses the replica's GPU when it has one and the PaddlePaddle build
  supports CUDA.

`read` takes an RGB image (H x W x 3, uint8) and returns the text boxes found, each with
its four corners in the image's pixels, its text and the recognizer's score. Both engines
detect text at the image's own size: stitched images are tall, and shrinking them would
shrink the text until it cannot be read (the stitching bounds the band width instead).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from rapidfuzz import fuzz

from reuse.errors import InputError
from reuse.settings import Settings

EngineName = Literal["rapidocr", "paddleocr"]
MAX_SIDE = 16_000  # pixels; the stitching keeps its images below this
MIN_SCORE = 0.5  # boxes the recognizer is less sure of are dropped


@dataclass(frozen=True)
class TextBox:
    corners: tuple[tuple[float, float], ...]  # 4 points, clockwise from top-left
    text: str
    score: float

    @property
    def top(self) -> float:
        return min(y for _, y in self.corners)

    @property
    def bottom(self) -> float:
        return max(y for _, y in self.corners)

    @property
    def left(self) -> float:
        return min(x for x, _ in self.corners)

    @property
    def right(self) -> float:
        return max(x for x, _ in self.corners)

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    def moved(self, dx: float, dy: float) -> TextBox:
        return TextBox(tuple((x + dx, y + dy) for x, y in self.corners), self.text, self.score)

    def scaled(self, factor: float) -> TextBox:
        return TextBox(tuple((x * factor, y * factor) for x, y in self.corners), self.text,
                       self.score)

    def record(self) -> dict[str, Any]:
        return {"text": self.text, "score": round(self.score, 4),
                "box": [[round(x, 1), round(y, 1)] for x, y in self.corners]}


SIMILAR = 70  # rapidfuzz ratio (0-100) above which two readings are of the same text


def norm(text: str) -> str:
    """What readings of one text share: its letters and digits, lower case."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def alike(a: str, b: str) -> bool:
    """Two readings of one text (OCR noise between frames allowed)."""
    return fuzz.ratio(norm(a), norm(b)) >= SIMILAR


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextBox]: ...


def boxes_of(polys: Any, texts: Any, scores: Any) -> list[TextBox]:
    return [TextBox(tuple((float(x), float(y)) for x, y in poly), str(text), float(score))
            for poly, text, score in zip(polys, texts, scores, strict=True)
            if str(text).strip() and float(score) >= MIN_SCORE]


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        # detection at the image's own size: never shrunk (MAX_SIDE), never enlarged (the
        # default enlarges the shorter side to 736 px: a third more work for a 640 px band)
        self.ocr: Any = RapidOCR(params={"Global.log_level": "warning",
                                         "Global.max_side_len": MAX_SIDE,
                                         "Det.limit_side_len": 32,
                                         "Global.text_score": MIN_SCORE})

    def read(self, image: np.ndarray) -> list[TextBox]:
        result = self.ocr(image)
        if result.boxes is None:
            return []
        return boxes_of(result.boxes, result.txts, result.scores)


class PaddleOcrEngine:
    """PaddleOCR 3 with local model folders only: hub access is switched off before
    paddleocr is imported, so a missing folder is an error, never a download."""

    name = "paddleocr"

    def __init__(self, model_dir: Path, device: str) -> None:
        det, rec = model_dir / "det", model_dir / "rec"
        for folder in (det, rec):
            if not (folder / "inference.yml").is_file():
                raise InputError(f"{folder} is not a PaddleOCR model folder (no inference.yml);"
                                 " make one with scripts/paddleocr_models.py")
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")
        try:
            from paddleocr import PaddleOCR
            from paddlex.inference import load_pipeline_config
        except ImportError as exc:
            raise InputError("the paddleocr engine needs the `.[paddle]` extra "
                             "(paddleocr + paddlepaddle)") from exc
        config = load_pipeline_config("OCR")  # PaddleOCR's own, which shrinks past 4000 px
        config["SubModules"]["TextDetection"]["max_side_limit"] = MAX_SIDE
        self.ocr: Any = PaddleOCR(
            paddlex_config=config,
            text_detection_model_dir=str(det), text_detection_model_name=model_name(det),
            text_recognition_model_dir=str(rec), text_recognition_model_name=model_name(rec),
            use_doc_orientation_classify=False, use_doc_unwarping=False,
            use_textline_orientation=False,
            text_det_limit_side_len=MAX_SIDE, text_det_limit_type="max",
            text_rec_score_thresh=MIN_SCORE,
            device="gpu:0" if device.startswith("cuda") else "cpu",
            cpu_threads=os.cpu_count() or 1,  # its default, 10, oversubscribes small hosts
        )

    def read(self, image: np.ndarray) -> list[TextBox]:
        # PaddleOCR takes BGR arrays (OpenCV's order)
        result = self.ocr.predict(np.ascontiguousarray(image[:, :, ::-1]))[0]
        return boxes_of(result["rec_polys"], result["rec_texts"], result["rec_scores"])


def model_name(folder: Path) -> str:
    """The model name an inference.yml declares (`Global.model_name`)."""
    import yaml

    config = yaml.safe_load((folder / "inference.yml").read_text())
    return str(config["Global"]["model_name"])


def default_engine(settings: Settings) -> EngineName:
    if settings.ocr_engine:
        return settings.ocr_engine
    return "paddleocr" if settings.paddleocr_model_dir else "rapidocr"


def load_engine(name: str, settings: Settings | None = None, device: str = "cpu") -> OcrEngine:
    if name == "rapidocr":
        return RapidOcrEngine()
    if name == "paddleocr":
        if settings is None or settings.paddleocr_model_dir is None:
            raise InputError("the paddleocr engine needs REELSERVE_PADDLEOCR_MODEL_DIR "
                             "(det/ and rec/ model folders)")
        return PaddleOcrEngine(settings.paddleocr_model_dir, device)
    raise InputError(f"unknown OCR engine {name!r}")
