"""A figure's legend as HTML: one entry per line or marker style, with a small SVG swatch.

The legend sits on the page above the figure's panels, not inside an SVG: it wraps
at any width, keeps the page's text size on a phone and is never clipped at the
figure's edge (matplotlib's figure legends were, with long series labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

# The swatch: a short line with the marker in its middle, in CSS pixels.
W, H, MID = 30, 14, 7.0
DASHES = {"--": "5 3", ":": "1.5 2.5", "-.": "5 2 1.5 2"}


@dataclass(frozen=True)
class LegendEntry:
    label: str
    color: str  # "#rrggbb"
    ls: str = ""  # "-", "--", ":", "-." or "" (no line)
    marker: str = ""  # a matplotlib marker ("o", "s", "^", ...) or "" (none)
    hollow: bool = False  # a white face: mark_flagged's points


def from_handle(h: Line2D) -> LegendEntry:
    """The entry for a legend handle (a Line2D that was never drawn)."""
    ls = h.get_linestyle()
    marker = h.get_marker()
    face = h.get_markerfacecolor()
    return LegendEntry(
        label=str(h.get_label()).replace(r"\$", "$"),
        color=to_hex(h.get_color()),
        ls=ls if ls in ("-", "--", ":", "-.") else "",
        marker=marker if isinstance(marker, str) and marker not in ("None", "none", "", " ") else "",
        hollow=isinstance(face, str) and face in ("white", "w", "none"),
    )


def _polygon(points: list[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{x:.2f} {y:.2f}" for x, y in points) + " Z"


def _regular(n: int, r: float, start_deg: float) -> str:
    c = W / 2
    return _polygon([(c + r * math.cos(math.radians(start_deg + 360 * i / n)),
                      MID - r * math.sin(math.radians(start_deg + 360 * i / n))) for i in range(n)])


def _marker_path(marker: str) -> tuple[str, bool]:
    """An SVG path for a matplotlib marker around the swatch's middle, and whether it is filled
    (False: drawn as a stroke, such as "_")."""
    c, r = W / 2, 4.0
    shapes = {
        "s": (_polygon([(c - r * 0.85, MID - r * 0.85), (c + r * 0.85, MID - r * 0.85),
                        (c + r * 0.85, MID + r * 0.85), (c - r * 0.85, MID + r * 0.85)]), True),
        "D": (_regular(4, r, 90), True),
        "^": (_regular(3, r, 90), True),
        "v": (_regular(3, r, 270), True),
        "<": (_regular(3, r, 180), True),
        ">": (_regular(3, r, 0), True),
        "h": (_regular(6, r, 90), True),
        "_": (f"M{c - 5:.2f} {MID} L{c + 5:.2f} {MID}", False),
        "|": (f"M{c} {MID - 5} L{c} {MID + 5}", False),
        "P": (f"M{c - r} {MID} L{c + r} {MID} M{c} {MID - r} L{c} {MID + r}", False),
        "X": (f"M{c - 3} {MID - 3} L{c + 3} {MID + 3} M{c - 3} {MID + 3} L{c + 3} {MID - 3}", False),
    }
    return shapes.get(marker, ("", True))


def swatch(e: LegendEntry) -> str:
    """The entry's line and marker as an inline SVG element (our own markup: no data text in it)."""
    parts = []
    if e.ls:
        dash = f' stroke-dasharray="{DASHES[e.ls]}"' if e.ls in DASHES else ""
        parts.append(f'<line x1="1" y1="{MID}" x2="{W - 1}" y2="{MID}" stroke="{e.color}" '
                     f'stroke-width="1.6"{dash}/>')
    if e.marker:
        fill = "#ffffff" if e.hollow else e.color
        path, filled = _marker_path(e.marker)
        if not path:  # "o" and anything unknown: a circle
            parts.append(f'<circle cx="{W / 2}" cy="{MID}" r="3.4" fill="{fill}" stroke="{e.color}" '
                         f'stroke-width="1.3"/>')
        elif filled:
            parts.append(f'<path d="{path}" fill="{fill}" stroke="{e.color}" stroke-width="1.2"/>')
        else:
            parts.append(f'<path d="{path}" fill="none" stroke="{e.color}" stroke-width="2.2"/>')
    return (f'<svg class="swatch" width="{W}" height="{H}" viewBox="0 0 {W} {H}" aria-hidden="true">'
            + "".join(parts) + "</svg>")
