"""Text reading engines of the paddleocr.* nodes: one interface, loaded once per replica.

- `rapidocr` (embedded default): PaddleOCR's PP-OCR detection, classification and
  recognition models as ONNX, shipped inside the `rapidocr` wheel and run by ONNX Runtime;
  Chinese and English, nothing to download.

`read` takes an RGB image (H x W x 3, uint8) and returns the text boxes found, each with
its four corners in the image's pixels, its text and the recognizer's score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


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


class OcrEngine(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextBox]: ...


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr import RapidOCR

        self.ocr: Any = RapidOCR(params={"Global.log_level": "warning"})

    def read(self, image: np.ndarray) -> list[TextBox]:
        result = self.ocr(image)
        if result.boxes is None:
            return []
        return [TextBox(tuple((float(x), float(y)) for x, y in box), str(text), float(score))
                for box, text, score in zip(result.boxes, result.txts, result.scores,
                                            strict=True)]


def load_engine(name: str) -> OcrEngine:
    if name == "rapidocr":
        return RapidOcrEngine()
    raise ValueError(f"unknown OCR engine {name!r}")
