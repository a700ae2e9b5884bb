"""The output of a cascade: each frame's scores from the stage that decided it, in input order,
tagged with that stage."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["StageMerge"]


class StageMerge(wiring.Component):
    """One output frame per decision: `classes` scores and a tag.

    A frame whose decision is 0 gets the first stage's scores (`a`); one whose decision is 1
    gets the second stage's (`b`), and the first stage's scores of that frame are taken from
    `a` and dropped, beat for beat with `b`'s. Every score is sign-extended to `bits_out`; the
    frame's last beat is its tag, the stage that produced it: 1 or 2.

    Parameters
    ----------
    bits_a, bits_b, bits_out : int
        Widths of the first and second stages' scores and of the output (at least both, and
        at least 3 for the tag).
    classes : int
        Scores per frame.

    Members
    -------
    decision : In(stream.Signature(unsigned(1)))
        A frame's decision, taken with its tag beat.
    a : In(stream.Signature(pixel_layout(bits_a, 1)))
        Every frame's first-stage scores.
    b : In(stream.Signature(pixel_layout(bits_b, 1)))
        The second stage's scores of the frames decided 1, only.
    o : Out(stream.Signature(pixel_layout(bits_out, 1)))
        `classes` + 1 beats a frame.

    Attributes
    ----------
    latency : int
        0: no register in the data path. A beat per cycle.

    Raises
    ------
    ValueError
        If `bits_out` is narrower than a stage's scores or than 3 bits.
    """

    def __init__(self, bits_a, bits_b, bits_out, classes):
        if bits_out < max(bits_a, bits_b, 3):
            raise ValueError(f"StageMerge: {bits_out} output bits cannot hold {bits_a}- and "
                             f"{bits_b}-bit scores and the tag")
        self.classes, self.bits_out = classes, bits_out
        self.latency = 0
        super().__init__({"decision": In(stream.Signature(unsigned(1))),
                          "a": In(stream.Signature(pixel_layout(bits_a, 1))),
                          "b": In(stream.Signature(pixel_layout(bits_b, 1))),
                          "o": Out(stream.Signature(pixel_layout(bits_out, 1)))})

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.classes + 1))
        tag, second = count == self.classes, self.decision.payload
        a, b, o = self.a, self.b, self.o
        with m.If(self.decision.valid):
            with m.If(tag):
                m.d.comb += [o.valid.eq(1), o.payload[0].eq(1 + second),
                             self.decision.ready.eq(o.ready)]
            with m.Elif(second):
                m.d.comb += [o.valid.eq(a.valid & b.valid), o.payload[0].eq(b.payload[0]),
                             a.ready.eq(b.valid & o.ready), b.ready.eq(a.valid & o.ready)]
            with m.Else():
                m.d.comb += [o.valid.eq(a.valid), o.payload[0].eq(a.payload[0]),
                             a.ready.eq(o.ready)]
        with m.If(o.valid & o.ready):
            m.d.sync += count.eq(Mux(tag, 0, count + 1))
        return m
