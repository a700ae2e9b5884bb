"""One stream to several consumers (the branches of a residual or inception block)."""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["Fork"]


class Fork(wiring.Component):
    """Gives every beat of `i` to each of `n` outputs.

    An output is offered the current input beat until it takes it; a register bit per output
    remembers which outputs already took it, so the outputs need not accept together and no
    consumer sees a beat twice. The input beat is consumed in the cycle the last remaining output
    takes it. No register in the data path: valid and payload pass through combinationally.
    One beat per cycle when every consumer takes one per cycle.

    Parameters
    ----------
    bits, lanes : int or None
        The payload is `pixel_layout(bits, lanes)` unless `layout` is given.
    n : int
        Number of outputs, at least 1.
    layout : ShapeLike, optional
        Any payload shape or layout instead; `bits` and `lanes` are then not used.

    Members
    -------
    i : In(stream.Signature(layout))
    o0, o1, ... : Out(stream.Signature(layout))

    Attributes
    ----------
    latency : int
        0 cycles: a beat is offered on the outputs in the cycle it is offered on the input.

    Raises
    ------
    ValueError
        If `n` is less than 1.
    """

    def __init__(self, bits, lanes, n=2, *, layout=None):
        if n < 1:
            raise ValueError(f"Fork: needs at least 1 output, got n={n}")
        self.n = n
        self.layout = pixel_layout(bits, lanes) if layout is None else layout
        self.latency = 0
        super().__init__({"i": In(stream.Signature(self.layout)),
                          **{f"o{k}": Out(stream.Signature(self.layout)) for k in range(n)}})

    def elaborate(self, platform):
        m = Module()
        outputs = [getattr(self, f"o{k}") for k in range(self.n)]
        taken = Signal(self.n)          # outputs that already took the current beat
        m.d.comb += self.i.ready.eq(Cat(*(o.ready | t for o, t in zip(outputs, taken))).all())
        for o, t in zip(outputs, taken):
            m.d.comb += [o.valid.eq(self.i.valid & ~t), o.payload.eq(self.i.payload)]
            with m.If(o.valid & o.ready):
                m.d.sync += t.eq(1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += taken.eq(0)
        return m
