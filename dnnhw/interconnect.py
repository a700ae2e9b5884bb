"""Interconnect planning: what `accel.Accelerator` puts on every edge of the graph.

For a graph and a plan (layer name → `Folding`), every tensor → reader connection gets the
producer's and the reader's lanes (a `LaneConverter` where they differ) and a FIFO depth: deep
enough that forked branches cannot deadlock, that a windowed layer's producer never waits on it,
and that a layer as slow as the network loses no cycles to a moment's stall downstream. Plain
Python over the op registry, like the performance model that reads these edges.
"""

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from . import ops
from .folding import Folding
from .pixel_timing import after, arrivals


__all__ = ["Edge", "edges"]


@dataclass(frozen=True)
class Edge:
    """A tensor's connection to one reader, with what `accel.Accelerator` puts on it.

    Attributes
    ----------
    tensor : str
    reader : str or None
        The reading layer's name; None for the accelerator's output port.
    port : str
        The reader's input port ("i", or "i0", "i1", … for layers with several inputs).
    lanes_from, lanes_to : int
        The producer's lanes and the reader's; a `LaneConverter` sits between when they differ.
    fifo_depth : int
        Beats of the `StreamFIFO` on the edge (0 for none), of `fifo_lanes` channels: the FIFO
        sits on the wide side of the converter, so that a narrowing converter (one beat out per
        cycle) never throttles a producer that delivers in bursts. On every input of a join (a
        layer with several inputs): the pixels that arrive there before the join can take them,
        from the pixel timing with the input at the network's rate (`pixel_timing.arrivals`:
        the join takes pixel p once its last input has it), plus a row of the tensor and 4
        beats, and at most one frame + 4 (one frame bounds how far one branch can run ahead of
        another, since every block finishes a frame's output before it needs the next frame's
        input). The early branch can then hold what arrives while the late one computes, so
        the fork before them does not deadlock. A branch of a fork into a layer of one input
        is queued as any edge: into a windowed layer, the rows it cannot take yet
        (`_tail_depth`); into a layer that takes pixels at its own pace, the pixels that arrive
        before it can take them (`_paced_depth`, from the same pixel timing); out of a layer as
        slow as the network (`_NO_SLACK`), at least one row of the tensor; on a narrowing edge,
        at least `_NARROWING_DEPTH`.
    """
    tensor: str
    reader: str
    port: str
    lanes_from: int
    lanes_to: int
    fifo_depth: int

    @property
    def fifo_lanes(self):
        """Channels per beat of the edge's FIFO: the wider side's."""
        return max(self.lanes_from, self.lanes_to)


def edges(graph, plan):
    """Every tensor → reader connection of `graph` under `plan` (see `Edge`), in graph order."""
    fold = {layer.name: plan.get(layer.name, Folding()) for layer in graph.layers}
    first = graph.consumers(graph.input)[0]
    lanes = {graph.input: ops.get(first.op).in_lanes(fold[first.name])}
    for layer in graph.layers:
        lanes[layer.output] = ops.get(layer.op).out_lanes(fold[layer.name])
    cycles = {layer.name: ops.geometry(graph, layer, fold[layer.name]).cycles_per_frame
              for layer in graph.layers}
    rate = max(cycles.values())
    out = []
    for tensor in [graph.input, *(layer.output for layer in graph.layers)]:
        readers = graph.consumers(tensor) + ([None] if tensor == graph.output else [])
        for reader in readers:
            if reader is None:
                out.append(Edge(tensor, None, "o", lanes[tensor], lanes[tensor], 0))
                continue
            join = len(reader.inputs) > 1
            port = f"i{reader.inputs.index(tensor)}" if join else "i"
            lanes_to = ops.get(reader.op).in_lanes(fold[reader.name])
            if join:                        # one frame, until `_join_depths` knows better
                depth = graph.shapes[tensor].size // lanes_to + 4
            elif tensor == graph.input:     # the host waits without losing anything
                depth = 0
            else:
                depth = _tail_depth(graph, reader, fold[reader.name], cycles[reader.name],
                                    lanes_to, rate)
                producer = graph.producer(tensor)
                if cycles[producer.name] >= (1 - _NO_SLACK) * rate:
                    row = graph.shapes[tensor].w * graph.shapes[tensor].c // lanes_to
                    depth = max(depth, row + 4)
            wide = max(lanes[tensor], lanes_to)
            depth = -(-depth * lanes_to // wide)            # in beats of the wider side
            if lanes[tensor] > lanes_to:
                depth = max(depth, _NARROWING_DEPTH)
            out.append(Edge(tensor, reader.name, port, lanes[tensor], lanes_to, depth))
    return _timed_depths(graph, fold, out, rate, cycles)


def _paced(graph, fold, edge, rate, cycles):
    """`edge` leads to a layer that takes its input pixel by pixel at its own pace and is slow
    enough (`_PACED`) that a producer's burst may outrun it: one input, no window, more than one
    pixel, not the accelerator's input."""
    if edge.reader is None or edge.port != "i" or edge.tensor == graph.input:
        return False
    reader = graph.layer(edge.reader)
    shape = graph.shapes[edge.tensor]
    return (shape.h * shape.w > 1 and cycles[reader.name] >= _PACED * rate
            and ops.get(reader.op).window(graph, reader, fold[reader.name]) is None)


def _timed_depths(graph, fold, links, rate, cycles):
    """`links` with the FIFO of every join input, and of every `_paced` edge, as deep as its
    pixel timing needs (see `Edge`), with the input at the network's `rate` (cycles per
    frame)."""
    joins = {e.reader for e in links if e.port != "i" and e.reader is not None}
    paced = {(e.tensor, e.reader) for e in links if _paced(graph, fold, e, rate, cycles)}
    if not joins and not paced:
        return links
    pixels = graph.shapes[graph.input].h * graph.shapes[graph.input].w
    arrive, _ = arrivals(graph, fold, links, rate / pixels)
    out = []
    for e in links:
        if (e.tensor, e.reader) in paced:
            e = replace(e, fifo_depth=max(e.fifo_depth, _paced_depth(graph, e, arrive,
                                                                      cycles[e.reader])))
        elif e.reader in joins:
            inputs = [x for x in links if x.reader == e.reader]
            # a pixel is taken once every input's is there (a vector input's one pixel
            # holds for every pixel of the map it scales)
            taken = functools.reduce(np.maximum, [arrive[x.tensor, x.reader][1] for x in inputs])
            first = arrive[e.tensor, e.reader][0]
            waiting = np.searchsorted(first, taken, side="right") - np.arange(len(taken))
            shape = graph.shapes[e.tensor]
            pixel = shape.c // e.lanes_to
            depth = min(int(waiting.max()) * pixel + shape.w * pixel, shape.size // e.lanes_to) + 4
            depth = -(-depth * e.lanes_to // e.fifo_lanes)
            if e.lanes_from > e.lanes_to:
                depth = max(depth, _NARROWING_DEPTH)
            e = replace(e, fifo_depth=depth)
        out.append(e)
    return out


def _paced_depth(graph, edge, arrive, cycles):
    """Beats (of the wider side) to queue on a `_paced` edge: the pixels that arrive before
    the reader, computing a pixel in cycles / pixels, takes them (its input buffer frees a
    pixel as it starts the one before), beyond the one it holds; 0 when at most one waits."""
    first, last = arrive[edge.tensor, edge.reader]
    start = after(last, cycles / len(first))
    taken = np.maximum(first, np.concatenate([first[:1], start[:-1]]))
    waiting = np.arange(1, len(first) + 1) - np.searchsorted(taken, first, side="right")
    if waiting.max() < 2:
        return 0
    pixel = graph.shapes[edge.tensor].c // edge.lanes_to
    return -(-(int(waiting.max()) * pixel + 4) * edge.lanes_to // edge.fifo_lanes)


#: A layer taking at least this fraction of the network's cycles per frame may fall behind a
#: producer's burst (`_paced`).
_PACED = 0.5

#: Wide beats queued before every narrowing lane converter: a pooled row arrives in a burst.
_NARROWING_DEPTH = 16

#: A layer within this fraction of the network's rate has no time to spare: its output gets a
#: row of queue (`edges`), so that a moment's stall downstream costs it no cycles.
_NO_SLACK = 0.02


def _tail_depth(graph, layer, folding, cycles, lanes, rate):
    """Beats to queue before a windowed layer so that its producer never waits on it.

    Its producer, at the network's `rate` (cycles per frame), delivers rows evenly; rows
    delivered before the layer can take them must wait in a queue, or the producer stalls — and
    a producer as slow as the network cannot make that time up.

    - A layer bound by its window (pooling; a conv whose engine keeps up) takes input as fast
      as it walks the padded frame, except while it walks the bottom and top padding rows: what
      arrives meanwhile waits. (Its own spare time per frame does not help: the blocks between
      it and the network's slowest layer hold almost nothing, so that layer would stall.)
    - A layer bound by its engine takes rows at the engine's pace (`_waiting_rows`).

    0 for layers without a window (`Op.window`).
    """
    found = ops.get(layer.op).window(graph, layer, folding)
    if found is None:
        return 0
    walk, engine_bound = found
    shape = graph.in_shape(layer)
    top, _, bottom, _ = walk.pads
    if engine_bound:
        rows = _waiting_rows(shape.h, walk.out_h, walk.kernel[0], walk.stride[0], top, cycles,
                             rate)
    else:
        padding_walk = (top + bottom) * walk.cols * (shape.c // lanes)
        rows = math.ceil(padding_walk * shape.h / rate)
    return math.ceil(rows * shape.w * shape.c / lanes) + 4 if rows else 0


@functools.lru_cache(maxsize=65536)
def _waiting_rows(h, h_out, kh, sh, top, cycles, rate, frames=3):
    """Most input rows delivered but not yet taken at any time (see `_tail_depth`).

    Row r of frame k arrives at P = k·rate + (r+1)·rate/h. Output row i needs rows up to
    need(i) = min(h-1, i·sh + kh-1-top) and takes Q = cycles/h_out cycles, ending at
    E_i = max(P(need(i)), E_{i-1}) + Q (row after row, across frames). The window runs only a
    few windows ahead of the engine: it takes row need(i) while output row i is computed (from
    E_i - Q), and a row no window ends in once the windows before it are out (from E_j, j the
    last output row before it, in this frame or the previous one); or on arrival if later.
    Frame 0 is left out (a start-up transient).
    """
    per_row = cycles / h_out
    r, i = np.arange(h), np.arange(h_out)
    arrive = (r + 1) * rate / h
    need = np.minimum(h - 1, i * sh + kh - 1 - top)
    ready = np.concatenate([arrive[need] + k * rate for k in range(frames)]) + per_row
    ends = after(ready, per_row)
    emits = i * sh + kh - 1 - top                       # input row each output row ends in
    before = np.searchsorted(emits, r, side="left") - 1 # last output row ending above row r
    ends_in = np.searchsorted(emits, r, side="left")    # output row ending in row r, if any
    ends_here = (ends_in < h_out) & (emits[np.minimum(ends_in, h_out - 1)] == r)
    times, got = [], []
    for k in range(1, frames):
        row_end = ends[k * h_out + before]              # before = -1: the previous frame's last
        taken = np.where(ends_here, ends[k * h_out + np.minimum(ends_in, h_out - 1)] - per_row,
                         row_end)
        times.append(arrive + k * rate)
        got.append(np.where(taken > times[-1] + 0.5, taken, times[-1]))
    times, got = np.concatenate(times), np.sort(np.concatenate(got))
    waiting = np.searchsorted(times, times, side="right") - np.searchsorted(got, times, side="right")
    return int(np.max(waiting))
