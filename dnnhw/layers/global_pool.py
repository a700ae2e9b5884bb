"""Global average pooling: the mean of every channel over the whole H×W map (op "global_avgpool").

An exact sum per channel, then golden's reciprocal multiply and round shift with the divisor
H·W (`golden.avg_multiplier`), saturated to the input's bits.
"""

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from ..ir import Shape
from .common import pixel_layout
from .pool import AverageScale
from .sliding_window import DelayLine


__all__ = ["GlobalAveragePool", "ChannelSum"]


class ChannelSum(wiring.Component):
    """The exact sum of every channel over a frame of a feature-map stream.

    The accumulators (one word of `lanes` sums per channel group) form a `DelayLine` of depth
    C/lanes: each beat reads its group's running sum and writes back the sum plus the beat (the
    first pixel of a frame starts from zero, so frames follow each other without a reset).
    The beats of the frame's last pixel leave through a register stage as the totals.

    Parameters
    ----------
    shape : ir.Shape
        The input map (C, H, W).
    bits : int
        Bits of an input element.
    lanes : int
        Channels per beat; divides C.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
    o : Out(stream.Signature(pixel_layout(out_bits, lanes)))
        C/lanes beats per frame; out_bits = bits + ceil(log2(H·W)) never overflows.

    One input beat per cycle; the totals leave 1 cycle after the last pixel's beats.
    """

    latency = 1

    def __init__(self, shape, bits, lanes):
        self.shape, self._lanes = Shape(*shape), lanes
        self.groups, self.pixels = self.shape.c // lanes, self.shape.h * self.shape.w
        self.out_bits = bits + (self.pixels - 1).bit_length()
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits, lanes))),
            "o": Out(stream.Signature(pixel_layout(self.out_bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        sums = data.ArrayLayout(signed(self.out_bits), self._lanes)
        m.submodules.accumulators = acc = DelayLine(sums, self.groups)
        group, pixel = Signal(range(self.groups)), Signal(range(self.pixels))
        last = pixel == self.pixels - 1
        load = ~self.o.valid | self.o.ready
        advance = self.i.valid & self.i.ready
        total = Signal(sums)
        m.d.comb += [
            self.i.ready.eq(load | ~last),
            acc.en.eq(advance), acc.i.eq(total),
            *(total[lane].eq(Mux(pixel == 0, 0, acc.o[lane]) + self.i.payload[lane])
              for lane in range(self._lanes)),
        ]
        with m.If(advance):
            m.d.sync += group.eq(Mux(group == self.groups - 1, 0, group + 1))
            with m.If(group == self.groups - 1):
                m.d.sync += pixel.eq(Mux(last, 0, pixel + 1))
        with m.If(load):
            m.d.sync += [self.o.valid.eq(self.i.valid & last), self.o.payload.eq(total)]
        return m


class GlobalAveragePool(wiring.Component):
    """The mean of every channel over H×W, as `golden` computes "global_avgpool".

    A `ChannelSum` followed by an `AverageScale` with the single divisor H·W.

    Parameters
    ----------
    shape : ir.Shape
        The input map (C, H, W).
    bits : int
        Bits of an element in (and out, when the output keeps the input's format).
    lanes : int
        Channels per beat, in and out; divides C.
    out_bits, ratio, bounds : optional
        An output in another format (a quantized model's): its bits, the input's scale over
        its scale and its range (`AverageScale`).

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
        The input map, pixel by pixel, `lanes` channels per beat.
    o : Out(stream.Signature(pixel_layout(out_bits, lanes)))
        The (C, 1, 1) result: C/lanes beats per frame.

    Attributes
    ----------
    out_shape : ir.Shape
        (C, 1, 1).
    cycles_per_frame : int
        H · W · C/lanes: one input beat per cycle, frames back to back (exact when never
        stalled).
    latency : int
        (H · W - 1) · C/lanes + 3 cycles from the first input transfer to the first output
        transfer at that rate (exact).
    """

    def __init__(self, shape, bits, lanes, out_bits=None, ratio=1.0, bounds=None):
        shape = Shape(*shape)
        out_bits = out_bits or bits
        if shape.c % lanes:
            raise ValueError(f"GlobalAveragePool: lanes={lanes} must divide {shape.c} channels")
        self._sum = ChannelSum(shape, bits, lanes)
        self._scale = AverageScale(np.full((1, 1), self._sum.pixels), self._sum.groups,
                                   self._sum.out_bits, out_bits, lanes, ratio, bounds)
        self.out_shape = Shape(shape.c, 1, 1)
        self.geometry = geometry.global_pool(shape, lanes)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits, lanes))),
            "o": Out(stream.Signature(pixel_layout(out_bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sum = self._sum
        m.submodules.scale = self._scale
        wiring.connect(m, wiring.flipped(self.i), self._sum.i)
        wiring.connect(m, self._sum.o, self._scale.i)
        wiring.connect(m, self._scale.o, wiring.flipped(self.o))
        return m
