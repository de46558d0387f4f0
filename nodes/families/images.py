"""Folders of images (keyframes, cropped bands, stitched images) as the OCR nodes read them.

Every file is confined to the storage root on its own, so a symlink inside a folder that
points out of the root is refused like a path in a request. Counts and image sizes are
bounded: Pillow reads an image's size from its header before decoding it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
from PIL import Image

from nodes.spec import RunContext
from reuse.errors import InputError, TooLarge
from reuse.storage import check_local_dir, confine

SUFFIXES = (".jpg", ".jpeg", ".png")
MAX_IMAGES = 500_000  # ~5.5 hours of 25 fps frames
MAX_PIXELS = 40_000_000  # a stitched image is at most 16000 px tall
FRAME_NAME = re.compile(r"^(\d{1,9})\.(?:jpe?g|png)$", re.IGNORECASE)


def image_files(value: str, ctx: RunContext) -> list[Path]:
    """The images of a folder under the storage root, sorted by name."""
    folder = Path(check_local_dir(value, ctx.settings.storage_root))
    files: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.name.lower().endswith(SUFFIXES):
                continue
            if len(files) >= MAX_IMAGES:
                raise TooLarge(f"{value} holds more than {MAX_IMAGES} images")
            if not confine(entry.path, ctx.settings.storage_root).is_file():  # links resolved
                raise InputError(f"{entry.name} in {value} is not a file")
            files.append(folder / entry.name)
    return sorted(files)


def frame_files(value: str, ctx: RunContext) -> dict[int, Path]:
    """A folder of frames named by their frame index (`000123.jpg`, as
    ffmpeg.crop_subtitle_images writes them): index -> file."""
    frames: dict[int, Path] = {}
    for path in image_files(value, ctx):
        match = FRAME_NAME.match(path.name)
        if not match:
            raise InputError(f"{path.name} in {value}: frame images must be named by their "
                             "frame index, like 000123.jpg")
        index = int(match.group(1))
        if index in frames:
            raise InputError(f"{frames[index].name} and {path.name} in {value} are both "
                             f"frame {index}")
        frames[index] = path
    return dict(sorted(frames.items()))


def read_rgb(path: Path, root: Path) -> np.ndarray:
    """The image as RGB. The file is opened once, without blocking (a FIFO swapped in
    does not hang the run), and what was opened must be a regular file under the root (a
    symlink swapped in after the folder was listed is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"{path.name} cannot be opened: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError(f"{path.name} is not a regular file")
        confine(os.readlink(f"/proc/self/fd/{fd}"), root)  # what was opened, links resolved
        try:
            with Image.open(fh) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise TooLarge(f"{path.name} is {img.width}x{img.height}; at most "
                                   f"{MAX_PIXELS} pixels")
                return np.asarray(img.convert("RGB"))
        except (OSError, Image.DecompressionBombError) as exc:
            raise InputError(f"{path.name} is not a readable image: {exc}") from exc
