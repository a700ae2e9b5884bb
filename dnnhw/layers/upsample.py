"""Upsampling of a feature-map stream: nearest neighbour, or zero insertion."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry
from .common import pixel_layout


__all__ = ["Upsample"]


class Upsample(wiring.Component):
    """Each pixel of a (C, H, W) stream becomes a block of sh × sw pixels of the (C, H·sh, W·sw)
    output: copies of it (nearest-neighbour upsampling), or, with `zeros`, the pixel at the
    block's top left and zeros elsewhere (the zero insertion of a transposed convolution).

    Two row banks, ping-pong: `i` writes an input row (W·C/lanes beats) into one while the
    output reads the other sh times over, each pixel's beats sw times. The output is the rate
    limit: a beat a cycle once the first row is in, so the input waits only if it runs ahead
    by more than a row.

    Parameters
    ----------
    shape : ir.Shape
        The (C, H, W) input shape.
    scale : (int, int)
        (sh, sw), each at least 1.
    lanes : int
        Channels per beat, in and out; divides C.
    bits : int
        Bits of a channel.
    zeros : bool
        Zero insertion instead of copies.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes)))
    o : Out(stream.Signature(pixel_layout(bits, lanes)))

    Attributes
    ----------
    latency : int
        W·C/lanes + 1 cycles from the first input transfer to the first output beat offered
        (the first row, then the bank's read).
    cycles_per_frame : int
        H·sh·W·sw·C/lanes: every output beat.
    """

    def __init__(self, shape, scale, lanes, bits, zeros=False):
        c, _, _ = tuple(shape)
        if c % lanes or min(scale) < 1:
            raise ValueError(f"Upsample: {lanes} lanes must divide {c} channels and the scale "
                             f"{tuple(scale)} be at least 1")
        self.shape, self.scale, self.lanes, self.bits, self.zeros = shape, tuple(scale), lanes, bits, zeros
        self.geometry = geometry.upsample(shape, scale, lanes)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits, lanes))),
            "o": Out(stream.Signature(pixel_layout(bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        c, _, w = tuple(self.shape)
        sh, sw = self.scale
        beats = c // self.lanes             # beats of a pixel
        row = w * beats                     # beats of a row: one bank
        m.submodules.rows = rows = memory.Memory(shape=pixel_layout(self.bits, self.lanes),
                                                 depth=2 * row, init=[])
        write, read = rows.write_port(), rows.read_port()
        full = [Signal(name=f"full{b}") for b in range(2)]

        # write side: a row into the bank `in_bank`, then the other
        in_bank, in_beat = Signal(), Signal(range(row))
        in_full = Mux(in_bank, full[1], full[0])
        take = self.i.valid & self.i.ready
        m.d.comb += [
            self.i.ready.eq(~in_full),
            write.addr.eq(Mux(in_bank, row, 0) + in_beat),
            write.data.eq(self.i.payload),
            write.en.eq(take),
        ]
        with m.If(take):
            m.d.sync += in_beat.eq(Mux(in_beat == row - 1, 0, in_beat + 1))
            with m.If(in_beat == row - 1):
                m.d.sync += in_bank.eq(~in_bank)
                for b in range(2):
                    with m.If(in_bank == b):
                        m.d.sync += full[b].eq(1)

        # read side: the full bank `out_bank`, sh rows of W·sw pixels of `beats` beats
        out_bank = Signal()
        beat, copy_x, pixel, copy_y = (Signal(range(n), name=name) for n, name in
                                       ((beats, "beat"), (sw, "copy_x"), (w, "pixel"),
                                        (sh, "copy_y")))
        base = Signal(range(row))           # pixel · beats
        ready = Mux(out_bank, full[1], full[0])
        advance = ~self.o.valid | self.o.ready
        zero = Signal()
        m.d.comb += [
            read.en.eq(advance),
            read.addr.eq(Mux(out_bank, row, 0) + base + beat),
            self.o.payload.as_value().eq(Mux(zero, 0, read.data.as_value())),
        ]
        with m.If(advance):
            m.d.sync += self.o.valid.eq(ready)
            if self.zeros:
                m.d.sync += zero.eq((copy_x != 0) | (copy_y != 0))
        with m.If(advance & ready):
            m.d.sync += beat.eq(Mux(beat == beats - 1, 0, beat + 1))
            with m.If(beat == beats - 1):
                m.d.sync += copy_x.eq(Mux(copy_x == sw - 1, 0, copy_x + 1))
                with m.If(copy_x == sw - 1):
                    m.d.sync += [pixel.eq(Mux(pixel == w - 1, 0, pixel + 1)),
                                 base.eq(Mux(pixel == w - 1, 0, base + beats))]
                    with m.If(pixel == w - 1):
                        m.d.sync += copy_y.eq(Mux(copy_y == sh - 1, 0, copy_y + 1))
                        with m.If(copy_y == sh - 1):        # the bank is read out
                            m.d.sync += out_bank.eq(~out_bank)
                            for b in range(2):
                                with m.If(out_bank == b):
                                    m.d.sync += full[b].eq(0)
        return m
