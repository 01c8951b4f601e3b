"""Reading a flow's SVG picture the way a browser does (XML, entities decoded)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def step_ids(picture: str) -> set[str]:
    """The ``id`` of every step box (``<g id="step-...">``) in the picture."""
    root = ET.fromstring(picture)
    assert root.tag == f"{SVG}svg"
    return {g.get("id", "") for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("step-")}
