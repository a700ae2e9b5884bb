"""Elementwise product of two feature-map streams, or of a feature map and a per-channel vector
(squeeze-and-excitation's channel scaling, a Swish's gate)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from .common import pixel_layout, round_shift, saturate


__all__ = ["Mul"]


class Mul(wiring.Component):
    """Multiplies input ``i0``, a (C, H, W) feature map, channel by channel by ``i1``: a map of
    the same shape, or with `broadcast` a (C, 1, 1) vector applied to every pixel, as `golden`
    defines it: the exact product round-shifted (half up) from frac_a + frac_b to `frac_out`,
    saturated to `bits_out`.

    Two stages advance together (``ready = ~o.valid | o.ready``): the operands' registers, then
    the product's rounding into the output register. Without `broadcast` a beat is taken from
    both inputs in the same cycle. With it the vector's C/lanes beats are first written into a
    memory, then every beat of the frame reads its channels' factors there; after the frame's
    last beat the next vector may load.

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) shape of ``i0`` and of the output; `lanes` must divide C.
    lanes : int
        Channels per beat, on every port.
    bits_a, frac_a, bits_b, frac_b : int
        Formats of ``i0`` and ``i1``.
    bits_out, frac_out : int
        Format of the output.
    broadcast : bool
        ``i1`` is one (C, 1, 1) vector a frame.

    Members
    -------
    i0 : In(stream.Signature(pixel_layout(bits_a, lanes)))
    i1 : In(stream.Signature(pixel_layout(bits_b, lanes)))
    o : Out(stream.Signature(pixel_layout(bits_out, lanes)))

    Attributes
    ----------
    latency : int
        2 cycles from an ``i0`` transfer to its product being offered.
    cycles_per_frame : int
        C·H·W/lanes, and C/lanes more with `broadcast` (the vector's load).
    """

    def __init__(self, shape, lanes, bits_a, frac_a, bits_b, frac_b, bits_out, frac_out,
                 broadcast=False):
        if shape.c % lanes:
            raise ValueError(f"Mul: lanes={lanes} must divide {shape.c} channels")
        self.shape, self.lanes, self.broadcast = shape, lanes, broadcast
        self.bits_a, self.bits_b, self.bits_out = bits_a, bits_b, bits_out
        self.shift = frac_a + frac_b - frac_out
        self.geometry = geometry.multiply(shape, lanes, broadcast)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({"i0": In(stream.Signature(pixel_layout(bits_a, lanes))),
                          "i1": In(stream.Signature(pixel_layout(bits_b, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, lanes)))})

    def elaborate(self, platform):
        m = Module()
        advance = Signal()
        valid = Signal()                                # the operand stage holds a beat
        a = Signal(pixel_layout(self.bits_a, self.lanes))
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        if self.broadcast:
            taken, b = self._vector(m, advance)
        else:
            b = Signal(pixel_layout(self.bits_b, self.lanes))
            m.d.comb += [self.i0.ready.eq(advance & self.i1.valid),
                         self.i1.ready.eq(advance & self.i0.valid)]
            taken = self.i0.valid & self.i1.valid
            with m.If(advance):
                m.d.sync += b.eq(self.i1.payload)
        with m.If(advance):
            m.d.sync += [valid.eq(taken), a.eq(self.i0.payload), self.o.valid.eq(valid)]
            for lane in range(self.lanes):
                product = a[lane] * b[lane]
                m.d.sync += self.o.payload[lane].eq(
                    saturate(round_shift(product, self.shift), self.bits_out))
        return m

    def _vector(self, m, advance):
        """The factor memory: loaded from ``i1``, then read a beat ahead of the product. Returns
        (``i0`` beat taken this cycle, the factors of the beat in the operand stage)."""
        c, h, w = tuple(self.shape)
        beats = c // self.lanes
        m.submodules.factors = factors = memory.Memory(
            shape=pixel_layout(self.bits_b, self.lanes), depth=beats, init=[])
        write, read = factors.write_port(), factors.read_port()
        loaded = Signal()
        load_beat, beat = Signal(range(beats)), Signal(range(beats))
        pixel = Signal(range(h * w))
        taken = self.i0.valid & self.i0.ready
        m.d.comb += [
            self.i1.ready.eq(~loaded),
            write.en.eq(self.i1.valid & ~loaded),
            write.addr.eq(load_beat),
            write.data.eq(self.i1.payload),
            self.i0.ready.eq(advance & loaded),
            read.en.eq(advance),
            read.addr.eq(beat),
        ]
        with m.If(write.en):
            m.d.sync += load_beat.eq(Mux(load_beat == beats - 1, 0, load_beat + 1))
            with m.If(load_beat == beats - 1):
                m.d.sync += loaded.eq(1)
        with m.If(taken):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
            with m.If(beat == beats - 1):
                m.d.sync += pixel.eq(Mux(pixel == h * w - 1, 0, pixel + 1))
                with m.If(pixel == h * w - 1):
                    m.d.sync += loaded.eq(0)
        return taken, read.data
