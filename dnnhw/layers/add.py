"""Elementwise addition of two feature-map streams (residual connections)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from .common import pixel_layout, round_shift, saturate


__all__ = ["Add"]


class Add(wiring.Component):
    """Adds two feature maps of the same shape, channel by channel, as `golden` defines it.

    Both inputs are shifted left to the larger of their fracs, added exactly, round-shifted
    (half up) to `frac_out` — a left shift when `frac_out` is the larger — and saturated to
    `bits_out`. The block joins the two streams: a beat is taken from both inputs in the same
    cycle, into the output register (``ready = ~o.valid | o.ready``, given to an input only
    while the other input is valid).

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) shape of both inputs and of the output; `lanes` must divide C.
    lanes : int
        Channels per beat.
    bits_a, frac_a : int
        Format of input ``i0``.
    bits_b, frac_b : int
        Format of input ``i1``.
    bits_out, frac_out : int
        Format of the output.

    Members
    -------
    i0 : In(stream.Signature(pixel_layout(bits_a, lanes)))
    i1 : In(stream.Signature(pixel_layout(bits_b, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    latency : int
        1 cycle from a transfer on both inputs to the sum being offered.
    cycles_per_frame : int
        C·H·W / lanes: one beat per cycle.

    Raises
    ------
    ValueError
        If `lanes` does not divide C.
    """

    def __init__(self, shape, lanes, bits_a, frac_a, bits_b, frac_b, bits_out, frac_out):
        if shape.c % lanes:
            raise ValueError(f"Add: lanes={lanes} must divide {shape.c} channels")
        self.shape, self.lanes = shape, lanes
        self.bits_out = bits_out
        top = max(frac_a, frac_b)
        self.align = (top - frac_a, top - frac_b)   # left shifts to the common frac
        self.shift = top - frac_out                  # then round-shift right (left if negative)
        self.geometry = geometry.elementwise(shape, lanes, 1)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i0": In(stream.Signature(pixel_layout(bits_a, lanes))),
                          "i1": In(stream.Signature(pixel_layout(bits_b, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, lanes)))})

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i0.ready.eq(advance & self.i1.valid),
            self.i1.ready.eq(advance & self.i0.valid),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i0.valid & self.i1.valid)
            for lane in range(self.lanes):
                total = (self.i0.payload[lane] << self.align[0]) + (self.i1.payload[lane] << self.align[1])
                m.d.sync += self.o.payload[lane].eq(saturate(round_shift(total, self.shift), self.bits_out))
        return m
