"""Batch-1 timing, pixel by pixel: the arithmetic the ops' `timing` methods share.

A tensor's timing is two arrays over its pixels (row-major): the cycle of each pixel's first
beat and of its last beat, counted from the first input beat (cycle 0). Each layer maps its
inputs' timings to its output's. The recurrences "x[p] = max(a[p], x[p-1] + c)" (a pixel
starts when its input is there and the stage is free) are evaluated with a running maximum:
x = maximum.accumulate(a - p·c) + p·c. With input at full rate each layer's first output
comes exactly `latency` cycles after its first input, as the blocks measure.
"""

import numpy as np


__all__ = ["after", "window_timing", "arrivals"]


def after(ready, step):
    """x[p] = max(ready[p], x[p-1] + step), x[0] = ready[0]."""
    ramp = np.arange(len(ready)) * step
    return np.maximum.accumulate(ready - ramp) + ramp


def window_timing(walk, h, w, first, last):
    """(first, last) beat cycles at which `SlidingWindow` (geometry `walk`, over an H × W
    input) emits each output pixel's window.

    The window walks the padded grid one position per C/lanes beats; a real position also waits
    for its input pixel's beats, a padding position only for the walk. A position's first beat
    follows the previous position's last, and its window beat leaves one cycle after its input
    beat. The padding before the first input pixel is walked ahead of it (negative cycles).
    Output pixel (i, j) is emitted at position (i·sh + kh-1, j·sw + kw-1).
    """
    (kh, kw), (sh, sw) = walk.kernel, walk.stride
    top, left, _, _ = walk.pads
    beats, rows, cols = walk.groups, walk.rows, walk.cols
    real = np.full((rows, cols), -1, dtype=np.int64)
    real[top:top + h, left:left + w] = np.arange(h * w).reshape(h, w)
    real = real.ravel()
    never = np.iinfo(np.int64).min // 4
    arrive_first = np.where(real >= 0, first[real], never)
    arrive_last = np.where(real >= 0, last[real], never)
    # W_first[q] = max(W_first[q-1] + beats, first[q], last[q-1] + 1)
    ready = np.maximum(arrive_first, np.concatenate(([never], arrive_last[:-1] + 1)))
    ready[0] = max(ready[0], first[0] - (top * cols + left) * beats)   # leading padding: no wait
    walk_first = after(ready, beats)
    walk_last = np.maximum(walk_first + beats - 1, arrive_last)
    emit = ((np.arange(walk.out_h)[:, None] * sh + kh - 1) * cols
            + np.arange(walk.out_w)[None, :] * sw + kw - 1).ravel()
    return walk_first[emit] + 1, walk_last[emit] + 1


def arrivals(graph, fold, links, pace=0):
    """Batch-1 timing of a whole graph under the foldings `fold` (layer name → `Folding`) and
    its `links` (`interconnect.Edge`): ({(tensor, reader name): the tensor's timing where it
    enters that reader}, the timing at the accelerator's output port). The input arrives at
    full rate, or a pixel every `pace` cycles if that is slower (the network's rate: its steady
    state); every edge adds its lane converter's and FIFO's latency, and no stream is faster
    than a beat a cycle (`_one_beat_a_cycle`)."""
    from . import geometry, ops
    c = graph.shapes[graph.input]
    beats = c.c // links[0].lanes_from
    start = (np.arange(c.h * c.w) * max(beats, pace)).astype(np.int64)
    times = {graph.input: (start, start + beats - 1)}
    arrive = {}
    by_name = {layer.name: layer for layer in graph.layers}
    for edge in links:
        if edge.tensor not in times:
            continue
        first, last = times[edge.tensor]
        delay = (geometry.converter_latency(edge.lanes_from, edge.lanes_to)
                 + geometry.fifo_latency(edge.fifo_depth))
        beats = graph.shapes[edge.tensor].c // edge.lanes_to
        timing = _one_beat_a_cycle(first + delay, last + delay, beats)
        if edge.reader is None:
            return arrive, timing
        arrive[edge.tensor, edge.reader] = timing
        reader = by_name[edge.reader]
        if all((t, reader.name) in arrive for t in reader.inputs):
            op, folding = ops.get(reader.op), fold[reader.name]
            out = op.timing(graph, reader, folding, [arrive[t, reader.name] for t in reader.inputs])
            beats = graph.shapes[reader.output].c // op.out_lanes(folding)
            times[reader.output] = _one_beat_a_cycle(*out, beats)
    raise ValueError(f"model: the output '{graph.output}' is not reached from the input")


def _one_beat_a_cycle(first, last, beats):
    """Pixel timing (first, last beat per pixel) no faster than a stream carries it: `beats`
    beats per pixel, one a cycle (a lane converter narrowing a stream, a concat serializing
    its inputs or a slice of a wider one would otherwise seem to keep their inputs' pace)."""
    if len(last) < 2:
        return first, last
    last = after(last, beats)
    first = np.maximum(first, np.concatenate([[first[0]], last[:-1] + 1]))
    return first, last
