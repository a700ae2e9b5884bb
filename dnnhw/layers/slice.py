"""A channel range of a feature-map stream."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from .common import pixel_layout


__all__ = ["Slice"]


class Slice(wiring.Component):
    """Passes channels `start` to `stop` - 1 of every pixel of a (C, H, W) stream and drops the
    others: the output is the (stop - start, H, W) feature map, values unchanged (each narrowed
    to `bits_out`, which must hold them). Every input beat is taken, one a cycle; the kept ones
    enter the output register (``ready = ~o.valid | o.ready``), the others are taken while the
    register is free.

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) shape of the input.
    start, stop : int
        The channel range kept; `lanes` must divide C, `start` and `stop`.
    lanes : int
        Channels per beat, in and out.
    bits_in, bits_out : int
        Bits of an input and of an output channel (bits_out ≤ bits_in: the range's values fit).

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits_in, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    latency : int
        1 cycle from an input transfer to its beat being offered.
    cycles_per_frame : int
        C·H·W/lanes: every input beat, kept or not, takes a cycle.

    Raises
    ------
    ValueError
        If `lanes` does not divide C, `start` and `stop`, or the range is empty or beyond C.
    """

    def __init__(self, shape, start, stop, lanes, bits_in, bits_out):
        c = tuple(shape)[0]
        if not 0 <= start < stop <= c or any(n % lanes for n in (c, start, stop)):
            raise ValueError(f"Slice: channels {start}..{stop - 1} of {c} in beats of {lanes} "
                             "lanes: lanes must divide C and both ends, and the range lie in C")
        self.shape, self.start, self.stop, self.lanes = shape, start, stop, lanes
        self.bits_in, self.bits_out = bits_in, bits_out
        self.geometry = geometry.slice_(shape, lanes)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits_in, lanes))),
            "o": Out(stream.Signature(pixel_layout(bits_out, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        beats = tuple(self.shape)[0] // self.lanes
        beat = Signal(range(beats))                  # beat of the current pixel
        keep = Signal()
        advance = Signal()
        m.d.comb += [
            keep.eq((beat >= self.start // self.lanes) & (beat < self.stop // self.lanes)),
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid & keep)
            for lane in range(self.lanes):
                m.d.sync += self.o.payload[lane].eq(self.i.payload[lane])
        with m.If(advance & self.i.valid):
            with m.If(beat == beats - 1):
                m.d.sync += beat.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
