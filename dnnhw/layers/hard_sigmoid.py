"""HardSigmoid of every element of a stream: max(0, min(1, alpha·x + beta)) in fixed point."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from .common import pixel_layout, round_shift, saturate


__all__ = ["HardSigmoid"]


class HardSigmoid(wiring.Component):
    """``saturate(clip(round_shift(x·alpha_q + beta_q, shift), 0, one))`` per lane, as
    `golden.hard_sigmoid` defines it (constants from `golden.hard_sigmoid_constants`).

    Two register stages under the register handshake: the product plus bias, then the round
    shift, clip and saturation.

    Parameters
    ----------
    shape : ir.Shape
        The map (C, H, W); `lanes` divides C.
    bits_in, bits_out : int
    lanes : int
    alpha_q, beta_q, shift : int
        The slope and offset as integers, and the round shift to the output format.
    one : int
        1.0 in the output format (2**frac_out).

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits_in, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    geometry : geometry.Stream
        C·H·W/lanes cycles per frame (a beat a cycle); latency `HARD_SIGMOID_LATENCY` (2).
    """

    def __init__(self, shape, bits_in, bits_out, lanes, alpha_q, beta_q, shift, one):
        if shape.c % lanes:
            raise ValueError(f"HardSigmoid: lanes={lanes} must divide {shape.c} channels")
        self.lanes, self.bits_out = lanes, bits_out
        self.alpha_q, self.beta_q, self.shift, self.one = alpha_q, beta_q, shift, one
        self.geometry = geometry.elementwise(shape, lanes, geometry.HARD_SIGMOID_LATENCY)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i": In(stream.Signature(pixel_layout(bits_in, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, lanes)))})

    def elaborate(self, platform):
        m = Module()
        advance, valid = Signal(), Signal()
        m.d.comb += [advance.eq(~self.o.valid | self.o.ready), self.i.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += [valid.eq(self.i.valid), self.o.valid.eq(valid)]
        for lane in range(self.lanes):
            x = self.i.payload[lane]
            affine = Signal((x * self.alpha_q + self.beta_q).shape(), name=f"affine{lane}")
            y = round_shift(affine, self.shift)
            clipped = Mux(y < 0, 0, Mux(y > self.one, self.one, y))
            with m.If(advance):
                m.d.sync += [affine.eq(x * self.alpha_q + self.beta_q),
                             self.o.payload[lane].eq(saturate(clipped, self.bits_out))]
        return m
