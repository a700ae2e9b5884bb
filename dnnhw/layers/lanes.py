"""Lane-width conversion of a feature-map stream (a data-width converter, as FINN calls it)."""

from math import lcm

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["LaneConverter"]


class LaneConverter(wiring.Component):
    """Carries a feature-map stream from `lanes_in` to `lanes_out` channels per beat.

    The channel values keep their order (the stream is a flat sequence of values cut into beats
    differently). When one width divides the other this is one stage: widening gathers
    lanes_out/lanes_in input beats into the output register, narrowing scatters one input beat
    over lanes_in/lanes_out output beats. Other ratios (e.g. 2 → 3) widen to
    lcm(lanes_in, lanes_out) lanes, then narrow; the lcm divides C because both widths do.

    Parameters
    ----------
    channels : int or ir.Shape
        The number of channels C (of the shape, if a shape); both lane widths must divide it.
    bits : int
        Width of one channel value.
    lanes_in, lanes_out : int
        Channels per input and per output beat.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes_in)))
    o : Out(stream.Signature(pixel_layout(bits, lanes_out)))

    Attributes
    ----------
    latency : int
        Cycles from the first input transfer to the first output transfer without stalls:
        ``gather + scatter`` where gather is lcm/lanes_in when widening (else 0) and scatter is
        1 when narrowing (else 0); 0 when the widths are equal (wires).
    lanes_per_cycle : int
        min(lanes_in, lanes_out): the block takes one input beat and offers one output beat per
        cycle on its narrower side, so a frame takes C·H·W / min(lanes_in, lanes_out) cycles.

    Raises
    ------
    ValueError
        If `lanes_in` or `lanes_out` does not divide C.
    """

    def __init__(self, channels, bits, lanes_in, lanes_out):
        channels = getattr(channels, "c", channels)
        for lanes in (lanes_in, lanes_out):
            if channels % lanes:
                raise ValueError(f"LaneConverter: lanes={lanes} must divide {channels} channels")
        self.channels, self.bits, self.lanes_in, self.lanes_out = channels, bits, lanes_in, lanes_out
        self.wide = lcm(lanes_in, lanes_out)
        self.latency = (self.wide // lanes_in if self.wide > lanes_in else 0) + (self.wide > lanes_out)
        self.lanes_per_cycle = min(lanes_in, lanes_out)
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, lanes_in))),
                          "o": Out(stream.Signature(pixel_layout(bits, lanes_out)))})

    def elaborate(self, platform):
        m = Module()
        head = wiring.flipped(self.i)
        if self.wide > self.lanes_in:
            m.submodules.gather = gather = Gather(self.bits, self.lanes_in, self.wide)
            wiring.connect(m, head, gather.i)
            head = gather.o
        if self.wide > self.lanes_out:
            m.submodules.scatter = scatter = Scatter(self.bits, self.wide, self.lanes_out)
            wiring.connect(m, head, scatter.i)
            head = scatter.o
        wiring.connect(m, head, wiring.flipped(self.o))
        return m


class Gather(wiring.Component):
    """Widens a stream: every `lanes_out / lanes_in` input beats become one output beat.

    The first beats of a group shift into a buffer; the group's last beat moves it, with
    itself, into the output register (``ready = ~o.valid | o.ready`` for that beat; the others
    are always taken). One input beat per cycle; latency lanes_out / lanes_in cycles from a
    group's first input transfer to its output being offered.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes_in)))
    o : Out(stream.Signature(pixel_layout(bits, lanes_out)))
    """

    def __init__(self, bits, lanes_in, lanes_out):
        assert lanes_out % lanes_in == 0 and lanes_out > lanes_in, (lanes_in, lanes_out)
        self.lanes_in, self.ratio = lanes_in, lanes_out // lanes_in
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, lanes_in))),
                          "o": Out(stream.Signature(pixel_layout(bits, lanes_out)))})

    def elaborate(self, platform):
        m = Module()
        beat_width = len(self.i.payload.as_value())
        buffer = Signal((self.ratio - 1) * beat_width)     # a group's first beats, oldest lowest
        count = Signal(range(self.ratio))
        last = count == self.ratio - 1
        m.d.comb += self.i.ready.eq(~last | ~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(last):
                m.d.sync += [self.o.payload.eq(Cat(buffer, self.i.payload)), self.o.valid.eq(1), count.eq(0)]
            with m.Else():
                m.d.sync += [buffer.eq(Cat(buffer[beat_width:], self.i.payload)), count.eq(count + 1)]
        return m


class Scatter(wiring.Component):
    """Narrows a stream: every input beat becomes `lanes_in / lanes_out` output beats.

    The input beat is loaded into a register that shifts down one output beat per transfer; the
    next input beat is taken while the last part is read (``i.ready = ~o.valid | (o.ready &
    last)``). One output beat per cycle; latency 1.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, lanes_in)))
    o : Out(stream.Signature(pixel_layout(bits, lanes_out)))
    """

    def __init__(self, bits, lanes_in, lanes_out):
        assert lanes_in % lanes_out == 0 and lanes_in > lanes_out, (lanes_in, lanes_out)
        self.ratio = lanes_in // lanes_out
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, lanes_in))),
                          "o": Out(stream.Signature(pixel_layout(bits, lanes_out)))})

    def elaborate(self, platform):
        m = Module()
        beat_width = len(self.o.payload.as_value())
        buffer = Signal(len(self.i.payload.as_value()))   # the parts not yet sent, next lowest
        count = Signal(range(self.ratio))
        last = count == self.ratio - 1
        m.d.comb += [self.o.payload.eq(buffer[:beat_width]),
                     self.i.ready.eq(~self.o.valid | (self.o.ready & last))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [buffer.eq(buffer[beat_width:]), count.eq(count + 1)]
            with m.If(last):
                m.d.sync += [self.o.valid.eq(0), count.eq(0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [buffer.eq(self.i.payload), self.o.valid.eq(1), count.eq(0)]
        return m
