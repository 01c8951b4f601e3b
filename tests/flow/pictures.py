"""Reading a flow's SVG picture the way a browser does (XML, entities decoded), and its
geometry: the step boxes, the arrows' curves and the arrows' labels."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG = "{http://www.w3.org/2000/svg}"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def holds(self, x: float, y: float, inset: float = 1.0) -> bool:
        """Whether (x, y) is inside, ``inset`` points away from every side."""
        return (
            self.left + inset < x < self.right - inset
            and self.top + inset < y < self.bottom - inset
        )

    def overlaps(self, other: Box) -> bool:
        return not (
            self.right <= other.left
            or other.right <= self.left
            or self.bottom <= other.top
            or other.bottom <= self.top
        )


@dataclass(frozen=True)
class Arrow:
    tail: str  # the Graphviz node names ('s0'...)
    head: str
    points: list[tuple[float, float]]  # sampled along the curve
    labels: list[Box]


def step_ids(picture: str) -> set[str]:
    """The ``id`` of every step box (``<g id="step-...">``) in the picture."""
    root = ET.fromstring(picture)
    assert root.tag == f"{SVG}svg"
    return {g.get("id", "") for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("step-")}


def _pairs(d: str) -> list[tuple[float, float]]:
    numbers = [float(n) for n in NUMBER.findall(d)]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _bezier(points: list[tuple[float, float]], steps: int = 24) -> list[tuple[float, float]]:
    """Points along Graphviz's 'M p0 C p1 p2 p3 p4 p5 p6 ...' (cubic segments)."""
    out = [points[0]]
    for i in range(0, len(points) - 3, 3):
        p0, p1, p2, p3 = points[i : i + 4]
        for k in range(1, steps + 1):
            t = k / steps
            a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
            out.append(
                (
                    a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                    a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
                )
            )
    return out


def _text_box(text: ET.Element, char_w: float = 0.45) -> Box:
    """About where a text is: its width estimated from its length and font size."""
    size = float(text.get("font-size", "12"))
    width = len(text.text or "") * size * char_w
    x, y = float(text.get("x", "0")), float(text.get("y", "0"))
    anchor = text.get("text-anchor", "start")
    left = x - width / 2 if anchor == "middle" else x - width if anchor == "end" else x
    return Box(left, y - size * 0.75, left + width, y)


def geometry(picture: str) -> tuple[dict[str, Box], dict[str, str], list[Arrow]]:
    """The picture's step boxes by Graphviz node name, each node's ``id``, and its arrows."""
    root = ET.fromstring(picture)
    boxes: dict[str, Box] = {}
    ids: dict[str, str] = {}
    arrows: list[Arrow] = []
    for group in root.iter(f"{SVG}g"):
        title = group.findtext(f"{SVG}title") or ""
        if group.get("class") == "node":
            shape = next(e for e in group if e.tag in (f"{SVG}path", f"{SVG}polygon"))
            points = _pairs(shape.get("d") or shape.get("points") or "")
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            boxes[title] = Box(min(xs), min(ys), max(xs), max(ys))
            ids[title] = group.get("id", "")
        elif group.get("class") == "edge":
            tail, head = title.split("->")
            path = group.find(f"{SVG}path")
            assert path is not None
            labels = [_text_box(t) for t in group.iter(f"{SVG}text")]
            arrows.append(Arrow(tail, head, _bezier(_pairs(path.get("d", ""))), labels))
    return boxes, ids, arrows


def crossings(picture: str) -> list[str]:
    """Every arrow that runs through a box other than its ends, and every arrow label that
    lies on a box or on another label: one line each."""
    boxes, ids, arrows = geometry(picture)
    found = []
    for arrow in arrows:
        for name, box in boxes.items():
            if name in (arrow.tail, arrow.head):
                continue
            if any(box.holds(x, y) for x, y in arrow.points):
                found.append(f"{ids[arrow.tail]} -> {ids[arrow.head]} crosses {ids[name]}")
    labels = [(f"{ids[a.tail]} -> {ids[a.head]}", label) for a in arrows for label in a.labels]
    for i, (where, label) in enumerate(labels):
        for name, box in boxes.items():
            if label.overlaps(box):
                found.append(f"the label of {where} lies on {ids[name]}")
        for other, box in labels[i + 1 :]:
            if label.overlaps(box):
                found.append(f"the labels of {where} and {other} overlap")
    return found
