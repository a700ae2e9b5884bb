"""A first-in first-out queue between stream ports."""

from amaranth.hdl import Module, Shape
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["StreamFIFO"]


class StreamFIFO(wiring.Component):
    """`amaranth.lib.fifo.SyncFIFOBuffered` (or `SyncFIFO`) with stream ports.

    The buffered queue reads its memory synchronously, so it maps to block RAM; the unbuffered
    one reads it combinationally (distributed RAM or flip-flops) and is a cycle faster.

    Parameters
    ----------
    bits, lanes : int or None
        The payload is `pixel_layout(bits, lanes)` unless `layout` is given.
    depth : int
        Number of beats the queue holds. For one beat per cycle it must be at least 3 when
        buffered (a depth of 2 or 1 passes one beat every other cycle) and at least 2 when not.
    buffered : bool
        `SyncFIFOBuffered` if true, else `SyncFIFO`.
    layout : ShapeLike, optional
        Any payload shape or layout instead; `bits` and `lanes` are then not used.

    Members
    -------
    i : In(stream.Signature(layout))
    o : Out(stream.Signature(layout))

    Attributes
    ----------
    latency : int
        Cycles from an input transfer into the empty queue to the beat being offered: 2 when
        buffered, 1 when not (or when buffered with depth 1, a single register).

    Raises
    ------
    ValueError
        If `depth` is less than 1.
    """

    def __init__(self, bits, lanes, depth, buffered=True, *, layout=None):
        if depth < 1:
            raise ValueError(f"StreamFIFO: depth must be at least 1, got {depth}")
        self.depth, self.buffered = depth, buffered
        self.layout = pixel_layout(bits, lanes) if layout is None else layout
        self.latency = 2 if buffered and depth > 1 else 1
        super().__init__({"i": In(stream.Signature(self.layout)),
                          "o": Out(stream.Signature(self.layout))})

    def elaborate(self, platform):
        m = Module()
        queue = fifo.SyncFIFOBuffered if self.buffered else fifo.SyncFIFO
        m.submodules.queue = queue = queue(width=Shape.cast(self.layout).width, depth=self.depth)
        w, r = queue.w_stream, queue.r_stream      # payloads are plain bits: connect by hand
        m.d.comb += [
            w.payload.eq(self.i.payload), w.valid.eq(self.i.valid), self.i.ready.eq(w.ready),
            self.o.payload.eq(r.payload), self.o.valid.eq(r.valid), r.ready.eq(self.o.ready),
        ]
        return m
