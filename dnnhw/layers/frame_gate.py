"""Whole frames passed on or dropped, as a stream of decisions says (a cascade's second stage
takes only the frames its first stage was unsure of)."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["FrameGate"]


class FrameGate(wiring.Component):
    """Passes a frame of `beats` beats from `i` to `o` when its decision is `keep`, and takes
    and drops it otherwise; one decision a frame, taken with the frame's last beat.

    Parameters
    ----------
    bits, lanes : int
        The payload is `pixel_layout(bits, lanes)`.
    beats : int
        Beats a frame.
    keep : int
        The decision (0 or 1) that passes a frame.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
    decision : In(stream.Signature(unsigned(1)))
    o : Out(stream.Signature(pixel_layout(bits, lanes)))

    Attributes
    ----------
    latency : int
        0: no register in the data path. A beat per cycle, passed or dropped, once the frame's
        decision is there.

    Raises
    ------
    ValueError
        If `beats` < 1 or `keep` is not 0 or 1.
    """

    def __init__(self, bits, lanes, beats, keep=1):
        if beats < 1:
            raise ValueError(f"FrameGate: a frame needs at least 1 beat, got {beats}")
        if keep not in (0, 1):
            raise ValueError(f"FrameGate: keep must be 0 or 1, got {keep}")
        self.beats, self.keep = beats, keep
        self.latency = 0
        layout = pixel_layout(bits, lanes)
        super().__init__({"i": In(stream.Signature(layout)),
                          "decision": In(stream.Signature(unsigned(1))),
                          "o": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.beats))
        decided, passed = self.decision.valid, self.decision.payload == self.keep
        m.d.comb += [
            self.o.payload.eq(self.i.payload),
            self.o.valid.eq(self.i.valid & decided & passed),
            self.i.ready.eq(decided & (self.o.ready | ~passed)),
        ]
        with m.If(self.i.valid & self.i.ready):
            last = count == self.beats - 1
            m.d.comb += self.decision.ready.eq(last)
            m.d.sync += count.eq(Mux(last, 0, count + 1))
        return m
