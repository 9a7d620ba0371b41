"""Tracks of a GEFF graph (https://liveimagingtrackingtools.org/geff) for ``import_tracks``.

A GEFF graph has one node per object (a time and space position, from the axes its metadata
names) and an edge from each object to the same cell, or a daughter, on a later frame. Tracks
are the chains of the graph: a chain goes on while a node has exactly one successor that has
no other predecessor; a node with two successors divides (its chain is the mother of both
daughters' chains). Track ids are the nodes' ``track_id`` property when every chain carries
one distinct value, else ``1..N`` in order of first frame.

Each node is matched to an object of the mask of its frame: by its ``seg_id`` property (the
mask label) when the nodes have one, else by the mask label under its rounded position.
Needs the optional ``geff`` package (``pip install geff``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GraphNode:
    """One node: ``frame``, ``position`` (``(z,) y, x`` pixels, or None when matched by
    ``seg_id``), ``seg_id`` (mask label or None), its ``track``."""

    node: object
    frame: int
    position: tuple[float, ...] | None
    seg_id: int | None
    track: int


class GraphError(ValueError):
    """A graph that cannot be imported; one line naming the first problem
    (``import_tracks`` raises it as its ``TrackImportError``)."""


def _error(message: str) -> GraphError:
    return GraphError(message)


def _read(path):
    try:
        import geff
    except ImportError as exc:
        raise RuntimeError("GEFF import needs the optional 'geff' package: pip install geff "
                           "(or pip install 'napari-devosam[tracking]')") from exc
    try:
        graph, meta = geff.read(str(path))
    except Exception as exc:  # noqa: BLE001 - any unreadable graph is one line
        raise _error(f"{path} is not a readable GEFF graph ({exc})") from exc
    axes = list(meta.axes or [])
    time = [a.name for a in axes if a.type == "time"]
    space = [a.name for a in axes if a.type == "space"]
    if len(time) != 1 or len(space) < 2:
        raise _error(f"{path} names no time axis and (z,) y, x space axes")
    return graph, time[0], space[-3:]


def _forward_in_time(graph, t_name: str) -> None:
    """Refuse an edge that does not go to a later frame (new-user trial 19: an edge from
    frame 6 back to frame 0 was imported, and four objects and two daughters went missing)."""
    for u, v in graph.edges:
        tu, tv = int(graph.nodes[u][t_name]), int(graph.nodes[v][t_name])
        if tv <= tu:
            raise _error(f"GEFF edge {u} -> {v} goes from frame {tu} to frame {tv}: edges "
                         "must go forward in time")


def _chains(graph) -> list[list]:
    """The graph's chains (lists of nodes in time order); refuses merges. A node with more
    than two successors is a mother of that many daughters (``ImportSummary`` names it), as
    in a CTC result: another tool's error to curate, not a reason to refuse its tracks."""
    starts = []
    for n in graph.nodes:
        preds = list(graph.predecessors(n))
        if len(preds) > 1:
            raise _error(f"GEFF node {n} has {len(preds)} predecessors (cells merging): "
                         "a lineage cannot hold it")
        if not preds or graph.out_degree(preds[0]) != 1:
            starts.append(n)
    chains = []
    for n in starts:
        chain = [n]
        while graph.out_degree(chain[-1]) == 1:
            chain.append(next(iter(graph.successors(chain[-1]))))
        chains.append(chain)
    return chains


def tracks_from_graph(path) -> tuple[list[GraphNode], dict[int, int]]:
    """The nodes of the GEFF graph at ``path`` with their track ids, and ``{daughter track:
    mother track}``. Raises ``GraphError`` for an unreadable graph, an edge that does not go
    forward in time, or merges; ``RuntimeError`` without ``geff``."""
    graph, t_name, space = _read(path)
    _forward_in_time(graph, t_name)
    chains = _chains(graph)
    chains.sort(key=lambda c: (int(graph.nodes[c[0]][t_name]), str(c[0])))
    given = [{graph.nodes[n].get("track_id") for n in c} for c in chains]
    ids = [next(iter(g)) for g in given if len(g) == 1 and None not in g]
    if len(ids) == len(chains) and len(set(ids)) == len(ids) and all(int(i) > 0 for i in ids):
        track_ids = [int(i) for i in ids]
    else:
        track_ids = list(range(1, len(chains) + 1))
    track_of = {n: t for c, t in zip(chains, track_ids, strict=True) for n in c}
    nodes, parents = [], {}
    for chain, track in zip(chains, track_ids, strict=True):
        preds = list(graph.predecessors(chain[0]))
        if preds:
            parents[track] = track_of[preds[0]]
        for n in chain:
            attrs = graph.nodes[n]
            seg = attrs.get("seg_id")
            pos = None if seg is not None else tuple(float(attrs[a]) for a in space)
            nodes.append(GraphNode(n, int(attrs[t_name]), pos,
                                   None if seg is None else int(seg), track))
    return nodes, parents


def relabel_masks(masks: np.ndarray, nodes: list[GraphNode]) -> np.ndarray:
    """Track labels ``(F, *frame)`` uint32 from the masks ``(F, *frame)`` (any labels) and the
    graph's nodes; mask objects no node names are left out. Raises ``GraphError`` for a
    node outside the masks, on background, or sharing an object with another node."""
    out = np.zeros(masks.shape, dtype=np.uint32)
    by_frame: dict[int, dict[int, GraphNode]] = {}
    for node in nodes:
        if not 0 <= node.frame < masks.shape[0]:
            raise _error(f"GEFF node {node.node} lies on frame {node.frame}, outside the "
                         f"{masks.shape[0]} masks")
        frame = masks[node.frame]
        label = node.seg_id
        if label is not None and not (frame == label).any():
            raise _error(f"GEFF node {node.node} names object {label}, which the mask of "
                         f"frame {node.frame} does not hold")
        if label is None:
            index = tuple(int(round(v)) for v in node.position[-(frame.ndim):])
            if len(index) != frame.ndim or any(
                    not 0 <= i < s for i, s in zip(index, frame.shape, strict=True)):
                raise _error(f"GEFF node {node.node} at {index} lies outside the masks")
            label = int(frame[index])
        if label <= 0:
            raise _error(f"GEFF node {node.node} (frame {node.frame}) lies on the masks' "
                         "background: give its object a seg_id property")
        other = by_frame.setdefault(node.frame, {}).get(label)
        if other is not None:
            raise _error(f"GEFF nodes {other.node} and {node.node} both name object {label} "
                         f"of frame {node.frame}")
        by_frame[node.frame][label] = node
    for f, found in by_frame.items():
        lut = np.zeros(int(masks[f].max()) + 1, dtype=np.uint32)
        for label, node in found.items():
            if label < lut.size:
                lut[label] = node.track
        out[f] = lut[masks[f]]
    return out
