"""The version graph as inline SVG: one row per version, releases of a series in one column, each
trunk dimmed in the column beside the release that branched off it, soups as diamonds with an edge
from every parent.

The rows follow `renewlm versions`' tree (versions.lineage.display_parent), but each trunk comes just
before the release that branched off it, so every edge of a path-switching series points down the
page: trunk → next trunk down the trunk column, trunk → its release across. SVG rather than a
matplotlib figure: it stays sharp at any zoom and costs nothing to draw for hundreds of versions.
"""

from __future__ import annotations

from html import escape

from renewlm.updates.plan import format_count
from renewlm.versions import VersionRecord

ROW = 26  # pixels per version
LANE = 18  # pixels per column
LEFT, TOP = 14, 16
COLOURS = {"release": "#2b6cb0", "pretrain": "#2b6cb0", "import": "#4a5568", "soup": "#b7791f", "trunk": "#8a94a6"}


def _children(under: dict[str, str | None], metas: dict[str, VersionRecord]) -> dict[str | None, list[str]]:
    kids: dict[str | None, list[str]] = {}
    for name, parent in under.items():
        kids.setdefault(parent, []).append(name)
    for names in kids.values():
        names.sort(key=lambda n: (metas[n].created or "", n))
    return kids


def graph_order(under: dict[str, str | None], metas: dict[str, VersionRecord]) -> list[str]:
    """Rows: the version tree depth first, each trunk (and what hangs under it) just before its release."""
    kids = _children(under, metas)
    order: list[str] = []
    stack = [(n, False) for n in reversed(kids.get(None, []))]
    while stack:  # iterative: a long series never meets the recursion limit
        name, expanded = stack.pop()
        if expanded:
            order.append(name)
            continue
        mine = kids.get(name, [])
        trunks = [k for k in mine if metas[k].kind == "trunk"]
        stack += [(k, False) for k in reversed([k for k in mine if k not in trunks])]
        stack.append((name, True))
        stack += [(t, False) for t in reversed(trunks)]
    return order


def lanes(under: dict[str, str | None], metas: dict[str, VersionRecord]) -> dict[str, int]:
    """Columns: the first release under a version continues its column, a trunk takes the column right
    of its release, and any other branch (a second release off one parent, a soup) opens a new pair."""
    kids = _children(under, metas)
    lane: dict[str, int] = {}
    top = -2
    queue = list(kids.get(None, []))
    for root in queue:
        top += 2
        lane[root] = top
    i = 0
    while i < len(queue):  # breadth first: every parent has its column before its children
        name = queue[i]
        i += 1
        continued = False
        for kid in kids.get(name, []):
            if metas[kid].kind == "trunk":
                lane[kid] = lane[name] + (metas[name].kind != "trunk")
            elif not continued and metas[name].kind != "trunk":
                lane[kid], continued = lane[name], True
            else:
                top = max(top, *lane.values()) + 1
                top += top % 2  # releases in even columns, trunks in the odd column beside them
                lane[kid] = top
            queue.append(kid)
    return lane


def _label(meta: VersionRecord, outside: list[str]) -> str:
    bits = [meta.kind or "?"]
    if meta.paradigm:
        bits.append(meta.paradigm)
    if meta.tokens:
        bits.append(f"{format_count(meta.tokens)} tokens")
    if outside:
        bits.append(f"from {', '.join(outside)}")
    others = meta.parent_names[1:]
    if meta.kind == "soup" and others:
        bits.append(f"of {', '.join(meta.parent_names)}")
    return " · ".join(bits)


def version_graph_svg(metas: dict[str, VersionRecord], under: dict[str, str | None]) -> str:
    order = graph_order(under, metas)
    lane = lanes(under, metas)
    row = {name: i for i, name in enumerate(order)}
    width_lanes = (max(lane.values()) + 1) * LANE
    text_x = LEFT + width_lanes + 8
    longest = max((len(n) + len(_label(metas[n], [])) for n in order), default=20)
    width = text_x + 7 * longest + 60
    height = TOP * 2 + ROW * (len(order) - 1)

    def xy(name: str) -> tuple[float, float]:
        return LEFT + lane[name] * LANE, TOP + row[name] * ROW

    edges, nodes = [], []
    for name in order:
        meta = metas[name]
        x2, y2 = xy(name)
        for parent in meta.parent_names:
            if parent not in row:
                continue
            x1, y1 = xy(parent)
            dim = "trunk" in (meta.kind, metas[parent].kind)
            colour = COLOURS["soup"] if meta.kind == "soup" else "#718096"
            mid = (y1 + y2) / 2
            edges.append(
                f'<path d="M{x1},{y1} C{x1},{mid} {x2},{mid} {x2},{y2}" fill="none" stroke="{colour}" stroke-width="1.6"'
                + (' stroke-dasharray="4 3" opacity="0.55"' if dim else "") + "/>"
            )
        kind = meta.kind or "release"
        colour = COLOURS.get(kind, COLOURS["release"])
        if kind == "soup":
            shape = f'<polygon points="{x2},{y2 - 7} {x2 + 7},{y2} {x2},{y2 + 7} {x2 - 7},{y2}" fill="{colour}"/>'
        elif kind == "trunk":
            shape = f'<circle cx="{x2}" cy="{y2}" r="5.5" fill="#fff" stroke="{colour}" stroke-width="2"/>'
        else:
            shape = f'<circle cx="{x2}" cy="{y2}" r="6" fill="{colour}"/>'
        outside = [p for p in meta.parent_names if p not in row]
        label = escape(_label(meta, outside))
        dim = ' opacity="0.5"' if kind == "trunk" else ""
        nodes.append(
            f'<g class="node {escape(kind)}"{dim}><title>{escape(name)}</title>{shape}'
            f'<text x="{text_x}" y="{y2 + 4}"><tspan font-weight="600">{escape(name)}</tspan>'
            f'<tspan fill="#555" dx="8">{label}</tspan></text></g>'
        )
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="version graph" font-size="13" '
        f'font-family="system-ui, sans-serif">' + "".join(edges) + "".join(nodes) + "</svg>"
    )
