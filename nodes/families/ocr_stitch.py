"""paddleocr.create_stitched_images and paddleocr.perform_ocr: many subtitle bands per OCR
call, and the text found mapped back to the frames.

Stitching stacks up to `concat_batch_size` cropped bands (in frame order) into one image,
with a black gap of GAP pixels between bands, keeping each image at most MAX_HEIGHT
tall. Bands wider than MAX_BAND_WIDTH (HD and 4K video) are scaled down first, so the
work per frame does not grow with the resolution; boxes are scaled back. The manifest
says which frame sits at which height of which image.

perform_ocr reads each stitched image once and gives every box to the band its centre
falls in; with the subtitle area known, boxes are moved to the full frame's coordinates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nodes.families.ffmpeg import check_area
from nodes.families.images import MAX_IMAGES, frame_files, image_files, read_rgb
from nodes.families.ocr_area import load
from nodes.families.ocr_engines import EngineName, OcrEngine, TextBox, default_engine
from nodes.families.segments import load_json, read_text_input
from nodes.spec import NodeParams, NodeSpec, RunContext
from reuse.errors import InputError, TooLarge

GAP = 10  # black pixels between two bands
MAX_BAND_WIDTH = 1280  # wider bands (HD video) are scaled down: text stays 25+ px tall
# A stitched image's height: the detector's memory grows with it (measured here: ~1 GB
# peak at 5800 px, ~0.4 GB at 1200 px) and its time per band does not fall beyond a few
# bands, so images stay below PaddleOCR's own limit, 4000 px.
MAX_HEIGHT = 4000
Area = list[int]


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame: int = Field(ge=0)
    y: int = Field(ge=0)  # the band's top row in the stitched image


class Stitched(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    frames: list[Placement] = Field(min_length=1, max_length=500)  # concat_batch_size's


class Manifest(BaseModel):
    """manifest.json of create_stitched_images."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    band_width: int = Field(gt=0, le=MAX_BAND_WIDTH)
    band_height: int = Field(gt=0, le=MAX_HEIGHT)
    gap: int = Field(ge=0, le=100)
    scale: float = Field(default=1.0, ge=0.01, le=1)  # stitched pixels per frame pixel
    subtitle_area: Area | None = None
    frames_count: int = Field(ge=0, le=MAX_IMAGES)
    images: list[Stitched] = Field(max_length=MAX_IMAGES)

    _area = field_validator("subtitle_area")(check_area)

    @model_validator(mode="after")
    def _each_once(self) -> Manifest:
        """Each image and each frame once (a manifest naming one image again and again
        would make a run of any length out of one file)."""
        if len({i.file for i in self.images}) != len(self.images):
            raise ValueError("an image is named more than once")
        placed = sum(len(i.frames) for i in self.images)
        frames = {p.frame for i in self.images for p in i.frames}
        if placed != len(frames) or placed != self.frames_count:
            raise ValueError("each frame must sit once in one image, frames_count in all")
        return self


class StitchParams(NodeParams):
    cropped_images_path: str | None = Field(
        default=None, description="Folder of subtitle bands named by frame index "
        "(`000123.jpg`), as crop_subtitle_images writes.")
    subtitle_area: Area | None = Field(default=None, description="[x1, y1, x2, y2] the bands "
                                       "were cut from; kept in the manifest so that boxes "
                                       "get full-frame coordinates.")
    concat_batch_size: int = Field(default=50, ge=1, le=500, description="Bands per "
                                   "stitched image (fewer when the image would pass "
                                   f"{MAX_HEIGHT} px).")

    _area = field_validator("subtitle_area")(check_area)


def create_stitched_images(params: StitchParams, ctx: RunContext) -> dict[str, Any]:
    assert params.cropped_images_path
    frames = frame_files(params.cropped_images_path, ctx)
    if not frames:
        raise InputError(f"{params.cropped_images_path} holds no frame images")
    out_dir = ctx.workdir / "stitched"
    out_dir.mkdir()
    images: list[Stitched] = []
    size = (0, 0)  # of a band in the stitched images
    per_image = params.concat_batch_size
    current: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        w, h = size
        canvas = np.zeros((len(current) * (h + GAP) - GAP, w, 3), np.uint8)
        for k, (_, band) in enumerate(current):
            canvas[k * (h + GAP):k * (h + GAP) + h] = band
        name = f"stitched_{len(images):06d}.jpg"
        Image.fromarray(canvas).save(out_dir / name, quality=95)
        images.append(Stitched(file=name, frames=[
            Placement(frame=f, y=k * (h + GAP)) for k, (f, _) in enumerate(current)]))
        current.clear()

    source: tuple[int, int] | None = None
    scale = 1.0
    for n, (frame, path) in enumerate(frames.items()):
        band = read_rgb(path, ctx.settings.storage_root)
        if source is None:
            source = band.shape[1], band.shape[0]
            scale = min(1.0, MAX_BAND_WIDTH / source[0])
            size = max(1, round(source[0] * scale)), max(1, round(source[1] * scale))
            if size[1] > MAX_HEIGHT:
                raise TooLarge(f"bands of {source[0]}x{source[1]} are too tall to be subtitle "
                               f"bands (at most {MAX_HEIGHT} px once {MAX_BAND_WIDTH} wide)")
            per_image = max(1, min(params.concat_batch_size,
                                   (MAX_HEIGHT + GAP) // (size[1] + GAP)))
        elif (band.shape[1], band.shape[0]) != source:
            raise InputError(f"{path.name} is {band.shape[1]}x{band.shape[0]}; the other "
                             f"bands are {source[0]}x{source[1]}")
        if size != source:
            band = np.asarray(Image.fromarray(band).resize(size, Image.Resampling.BILINEAR))
        current.append((frame, band))
        if len(current) == per_image:
            flush()
        ctx.report_progress((n + 1) / len(frames))
    if current:
        flush()
    w, h = size
    manifest = Manifest(band_width=w, band_height=h, gap=GAP, scale=scale,
                        subtitle_area=params.subtitle_area, frames_count=len(frames),
                        images=images)
    manifest_path = out_dir / "manifest.json"
    manifest_path.write_text(manifest.model_dump_json(indent=1))
    return {"multi_frames_path": str(out_dir), "manifest_path": str(manifest_path),
            "stitched_images_count": len(images), "frames_count": len(frames),
            "bands_per_image": per_image}


def read_manifest(value: str, ctx: RunContext) -> Manifest:
    path, text = read_text_input(value, ctx)
    try:
        return Manifest.model_validate(load_json(text, Path(path).name))
    except ValueError as exc:
        raise InputError(f"{Path(path).name} is not a stitching manifest: {exc}") from exc


class OcrParams(NodeParams):
    manifest_path: str | None = Field(default=None, description="manifest.json of "
                                      "create_stitched_images.")
    multi_frames_path: str | None = Field(default=None, description="Folder of the "
                                          "stitched images.")
    lang: Literal["ch"] = Field(default="ch", description="Model language: `ch` reads "
                                "Chinese and English (the PP-OCR models this deployment has).")
    engine: EngineName | None = Field(default=None, description="`rapidocr` or `paddleocr`; "
                                      "default: REELSERVE_OCR_ENGINE.")


def band_of(box: TextBox, image: Stitched, manifest: Manifest) -> Placement:
    """The band the box's centre is in (or, in a gap, the nearest)."""
    h = manifest.band_height
    return min(image.frames, key=lambda p: 0 if p.y <= box.middle < p.y + h
               else min(abs(box.middle - p.y), abs(box.middle - p.y - h)))


def perform_ocr(params: OcrParams, ctx: RunContext) -> dict[str, Any]:
    assert params.manifest_path and params.multi_frames_path
    manifest = read_manifest(params.manifest_path, ctx)
    available = {p.name: p for p in image_files(params.multi_frames_path, ctx)}
    missing = [s.file for s in manifest.images if s.file not in available]
    if missing:
        raise InputError(f"{params.multi_frames_path} lacks {missing[0]} "
                         f"(and {len(missing) - 1} more) named by the manifest")
    engine: OcrEngine = ctx.engine.get(params.engine or default_engine(ctx.settings))
    x0, y0 = (manifest.subtitle_area or [0, 0])[:2]
    frames: dict[int, list[dict[str, Any]]] = {}
    for n, stitched in enumerate(manifest.images):
        for p in stitched.frames:
            frames[p.frame] = []
        image = read_rgb(available[stitched.file], ctx.settings.storage_root)
        if image.shape[1] > MAX_BAND_WIDTH or image.shape[0] > MAX_HEIGHT:
            raise InputError(f"{stitched.file} is {image.shape[1]}x{image.shape[0]}: a stitched "
                             f"image is at most {MAX_BAND_WIDTH}x{MAX_HEIGHT}")
        for box in engine.read(image):
            band = band_of(box, stitched, manifest)
            frames[band.frame].append(box.moved(0, -band.y).scaled(1 / manifest.scale)
                                      .moved(x0, y0).record())
        ctx.report_progress((n + 1) / max(1, len(manifest.images)))
    out = ctx.workdir / "ocr_results.json"
    out.write_text(json.dumps({
        "engine": engine.name, "lang": params.lang, "ocr_calls": len(manifest.images),
        "subtitle_area": manifest.subtitle_area,
        "frames": {str(f): boxes for f, boxes in sorted(frames.items())},
    }, ensure_ascii=False))
    return {"ocr_results_path": str(out), "frames_processed": len(frames),
            "frames_with_text": sum(1 for b in frames.values() if b),
            "ocr_calls": len(manifest.images), "engine": engine.name}


SPECS = (
    NodeSpec(
        name="paddleocr.create_stitched_images", family="paddleocr",
        summary="Stack consecutive subtitle bands into tall images (fewer OCR calls).",
        params=StitchParams, run=create_stitched_images,
        reuse_keys=("multi_frames_path",),
        outputs=("multi_frames_path", "manifest_path", "stitched_images_count",
                 "frames_count", "bands_per_image"),
        upstream={"cropped_images_path": (("ffmpeg.crop_subtitle_images",
                                           "cropped_images_path"),),
                  "subtitle_area": (("paddleocr.detect_subtitle_area", "subtitle_area"),)},
        required=("cropped_images_path",), dir_params=("cropped_images_path",),
    ),
    NodeSpec(
        name="paddleocr.perform_ocr", family="paddleocr",
        summary="Read each stitched image once; text mapped back to frame indices.",
        params=OcrParams, run=perform_ocr, load=load,
        reuse_keys=("ocr_results_path",),
        outputs=("ocr_results_path", "frames_processed", "frames_with_text", "ocr_calls",
                 "engine"),
        upstream={"manifest_path": (("paddleocr.create_stitched_images", "manifest_path"),),
                  "multi_frames_path": (("paddleocr.create_stitched_images",
                                         "multi_frames_path"),)},
        required=("manifest_path", "multi_frames_path"), file_params=("manifest_path",),
        dir_params=("multi_frames_path",), num_cpus=0.1, num_gpus=0.1, max_concurrent_runs=1,
    ),
)
