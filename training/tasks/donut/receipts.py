"""Synthetic receipts in the Donut dataset layout (CORD-v2's: images + metadata.jsonl).

    <folder>/metadata.jsonl   one row per image: {"file_name": "r0.png",
                              "ground_truth": "{\\"gt_parse\\": {...}}"}  (a JSON string)
    <folder>/r0.png ...

The offline mode renders these itself; `write_receipts(folder, n)` makes a channel folder.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

ITEMS = ("tea", "coffee", "cake", "bagel", "juice", "soup", "salad", "toast", "water", "pie")


def receipt(seed: int) -> dict[str, Any]:
    """One receipt's parse: 1-3 menu lines and the total (CORD-style keys)."""
    rng = random.Random(seed)
    menu = []
    for _ in range(rng.randint(1, 3)):
        price = rng.randint(1, 40) / 2
        menu.append({"nm": rng.choice(ITEMS), "price": f"{price:.2f}"})
    total = sum(float(m["price"]) for m in menu)
    return {"menu": menu, "total": {"total_price": f"{total:.2f}"}}


def render(parse: dict[str, Any], size: tuple[int, int] = (240, 320)) -> Any:
    """The receipt as a white PIL image (width, height), one large text line per field: still
    legible after the offline mode's downscaling to a few dozen pixels."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=size[1] // 9)
    y = size[1] // 20
    for line in parse["menu"]:
        draw.text((size[0] // 20, y), line["nm"], fill="black", font=font)
        draw.text((size[0] // 2, y), line["price"], fill="black", font=font)
        y += size[1] // 7
    y += size[1] // 14
    draw.text((size[0] // 20, y), "TOTAL", fill="black", font=font)
    draw.text((size[0] // 2, y), parse["total"]["total_price"], fill="black", font=font)
    return image


def write_receipts(folder: Path, count: int, *, first_seed: int = 0) -> Path:
    """A channel folder of `count` rendered receipts and their metadata.jsonl."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        parse = receipt(first_seed + index)
        name = f"receipt-{first_seed + index:05d}.png"
        render(parse).save(folder / name)
        rows.append({"file_name": name, "ground_truth": json.dumps({"gt_parse": parse})})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder
