"""Elementwise addition of two feature-map streams (residual connections)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from .common import clip, pixel_layout, round_shift, times_constant


__all__ = ["Add"]


class Add(wiring.Component):
    """Adds two feature maps of the same shape, channel by channel, as `golden` defines it:
    ``clip(round_shift(a·R_a + b·R_b, shift), lo, hi)`` with the constants of
    `golden.add_constants` (powers of two align the inputs to the larger frac; a quantized
    model's other scales make them multipliers) and the output format's range. The block joins
    the two streams: a beat is taken from both inputs in the same cycle (``ready = advance``,
    given to an input only while the other input is valid), ``advance = ~o.valid | o.ready``
    moving every register.

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) shape of both inputs and of the output; `lanes` must divide C.
    lanes : int
        Channels per beat.
    bits_a, bits_b, bits_out : int
        Widths of input ``i0``, input ``i1`` and the output.
    multipliers : (int, int)
        R_a and R_b (positive).
    shift : int
        The round shift after the sum (a left shift when negative).
    bounds : (int, int), optional
        The output's range, by default all of `bits_out`.

    Members
    -------
    i0 : In(stream.Signature(pixel_layout(bits_a, lanes)))
    i1 : In(stream.Signature(pixel_layout(bits_b, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    latency : int
        Cycles from a transfer on both inputs to the sum being offered: 1, or 2 when a
        multiplier is not a power of two (its product register).
    cycles_per_frame : int
        C·H·W / lanes: one beat per cycle.

    Raises
    ------
    ValueError
        If `lanes` does not divide C.
    """

    def __init__(self, shape, lanes, bits_a, bits_b, bits_out, multipliers, shift, bounds=None):
        if shape.c % lanes:
            raise ValueError(f"Add: lanes={lanes} must divide {shape.c} channels")
        self.shape, self.lanes = shape, lanes
        self.multipliers, self.shift = tuple(int(r) for r in multipliers), shift
        self.bounds = bounds or (-(1 << (bits_out - 1)), (1 << (bits_out - 1)) - 1)
        self.scaled = any(r & (r - 1) for r in self.multipliers)
        self.geometry = geometry.elementwise(shape, lanes, 2 if self.scaled else 1)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i0": In(stream.Signature(pixel_layout(bits_a, lanes))),
                          "i1": In(stream.Signature(pixel_layout(bits_b, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, lanes)))})

    @classmethod
    def from_formats(cls, shape, lanes, fmt_a, fmt_b, fmt_out):
        """The add of inputs in `fmt_a`, `fmt_b` into `fmt_out` (`ir.Format`), as golden's."""
        multipliers, shift = golden.add_constants((fmt_a, fmt_b), fmt_out)
        return cls(shape, lanes, fmt_a.bits, fmt_b.bits, fmt_out.bits, multipliers, shift,
                   (fmt_out.min, fmt_out.max))

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        m.d.comb += [
            advance.eq(~self.o.valid | self.o.ready),
            self.i0.ready.eq(advance & self.i1.valid),
            self.i1.ready.eq(advance & self.i0.valid),
        ]
        valid = self.i0.valid & self.i1.valid
        terms = [[times_constant(port.payload[lane], r)
                  for port, r in zip((self.i0, self.i1), self.multipliers)]
                 for lane in range(self.lanes)]
        if self.scaled:                     # the products registered
            registered = [[Signal.like(t, name=f"product{lane}_{k}") for k, t in enumerate(pair)]
                          for lane, pair in enumerate(terms)]
            products_valid = Signal()
            with m.If(advance):
                m.d.sync += products_valid.eq(valid)
                m.d.sync += [r.eq(t) for pair, regs in zip(terms, registered)
                             for t, r in zip(pair, regs)]
            terms, valid = registered, products_valid
        with m.If(advance):
            m.d.sync += self.o.valid.eq(valid)
            m.d.sync += [self.o.payload[lane].eq(clip(round_shift(a + b, self.shift), *self.bounds))
                         for lane, (a, b) in enumerate(terms)]
        return m
