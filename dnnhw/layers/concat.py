"""Concatenation of feature-map streams over channels."""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .. import geometry, golden
from ..ir import Format
from .common import clip, pixel_layout, round_shift, times_constant


__all__ = ["Concat"]


class Concat(wiring.Component):
    """Concatenates N feature maps of the same height and width over channels.

    For every pixel the output carries input 0's C0/lanes beats, then input 1's C1/lanes beats,
    and so on: the block takes beats from one input at a time, in that order, and the other
    inputs wait (a graph that forks a stream and concatenates the branches needs FIFOs on the
    branches deep enough for that wait). Each input is requantized to the output format as
    `golden` defines it: ``saturate(round_shift(x · R_i, s_i))`` to the output's range, with
    (R_i, s_i) = `golden.concat_constants` (R_i = 1 and s_i = frac_i - frac_out for powers of
    two). The selected input feeds the output register (``ready = ~o.valid | o.ready``).

    Parameters
    ----------
    shapes : list of ir.Shape
        The (C_i, H, W) shapes of the inputs; `lanes` must divide every C_i.
    lanes : int
        Channels per beat, on every input and on the output.
    formats_in : list of ir.Format or (bits, frac)
        The inputs' formats.
    format_out : ir.Format or (bits, frac)
        The output's format.

    Members
    -------
    i0, i1, ... : In(stream.Signature(pixel_layout(bits_i, lanes)))
    o : Out(stream.Signature(pixel_layout(format_out.bits, lanes)))

    Attributes
    ----------
    latency : int
        1 cycle from an input transfer to its beat being offered.
    cycles_per_frame : int
        H·W·ΣC_i / lanes: one output beat per cycle (when the selected input keeps up).

    Raises
    ------
    ValueError
        If the inputs differ in height or width, if `lanes` does not divide every C_i, or if
        `formats_in` does not give one format per input.
    """

    def __init__(self, shapes, lanes, formats_in, format_out):
        shapes = list(shapes)
        formats_in = [_format(f) for f in formats_in]
        format_out = _format(format_out)
        if len(formats_in) != len(shapes):
            raise ValueError(f"Concat: {len(shapes)} inputs but {len(formats_in)} formats")
        if len({(s.h, s.w) for s in shapes}) != 1:
            raise ValueError(f"Concat: inputs must have the same height and width, got "
                             f"{', '.join(str(s) for s in shapes)}")
        if any(s.c % lanes for s in shapes):
            raise ValueError(f"Concat: lanes={lanes} must divide the channels of every input, got "
                             f"{', '.join(str(s.c) for s in shapes)}")
        self.shapes, self.lanes = shapes, lanes
        self.formats_in, self.format_out = formats_in, format_out
        self.constants = golden.concat_constants(formats_in, format_out)
        self.beats = [s.c // lanes for s in shapes]     # beats per pixel from each input
        self.geometry = geometry.concat(shapes, lanes)
        self.cycles_per_frame, self.latency = self.geometry.cycles_per_frame, self.geometry.latency
        super().__init__({
            **{f"i{k}": In(stream.Signature(pixel_layout(f.bits, lanes))) for k, f in enumerate(formats_in)},
            "o": Out(stream.Signature(pixel_layout(format_out.bits, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        source = Signal(range(len(self.shapes)))     # input being read
        beat = Signal(range(max(self.beats)))        # beat of the current pixel from that input
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        with m.Switch(source):
            for k, ((mult, shift), beats) in enumerate(zip(self.constants, self.beats)):
                port = getattr(self, f"i{k}")
                with m.Case(k):
                    m.d.comb += port.ready.eq(advance)
                    with m.If(advance):
                        m.d.sync += self.o.valid.eq(port.valid)
                        out = self.format_out
                        for lane in range(self.lanes):
                            x = times_constant(port.payload[lane], mult)
                            m.d.sync += self.o.payload[lane].eq(
                                clip(round_shift(x, shift), out.min, out.max))
                    with m.If(advance & port.valid):
                        with m.If(beat == beats - 1):
                            m.d.sync += [beat.eq(0), source.eq((k + 1) % len(self.shapes))]
                        with m.Else():
                            m.d.sync += beat.eq(beat + 1)
        return m


def _format(fmt):
    return fmt if isinstance(fmt, Format) else Format(*fmt)
