"""The confidence evaluation unit of a cascade (CascadeCNN): is a classifier's answer sure?"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .common import pixel_layout


__all__ = ["Confidence"]


class Confidence(wiring.Component):
    """The margin between a frame's two largest scores against a threshold.

    Takes the `classes` scores of each frame, one per beat, and answers once per frame whether
    the frame must be recomputed: ``margin < threshold``, the margin being the largest score
    less the second largest (0 when two scores tie for the largest), as `golden.margins`
    computes. A threshold of 0 recomputes nothing, 2**bits everything.

    Parameters
    ----------
    bits : int
        Width of a score (signed).
    classes : int
        Scores per frame, at least 2.
    threshold : int
        In units of the scores' least significant bit, 0..2**bits.

    Members
    -------
    i : In(stream.Signature(pixel_layout(bits, 1)))
        Scores, `classes` beats a frame.
    o : Out(stream.Signature(unsigned(1)))
        One beat a frame: 1 when it is to be recomputed.

    Attributes
    ----------
    latency : int
        1 cycle from a frame's last score to its answer. A beat per cycle on `i`; the answer
        waits there until taken, and `i` with it.

    Raises
    ------
    ValueError
        If `classes` < 2 or `threshold` is outside 0..2**bits.
    """

    def __init__(self, bits, classes, threshold):
        if classes < 2:
            raise ValueError(f"Confidence: needs at least 2 classes, got {classes}")
        if not 0 <= threshold <= 1 << bits:
            raise ValueError(f"Confidence: threshold {threshold} is outside 0..{1 << bits}")
        self.bits, self.classes, self.threshold = bits, classes, threshold
        self.latency = 1
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, 1))),
                          "o": Out(stream.Signature(unsigned(1)))})

    def elaborate(self, platform):
        m = Module()
        lowest = -(1 << (self.bits - 1))
        best = Signal(signed(self.bits), init=lowest)
        second = Signal(signed(self.bits), init=lowest)
        count = Signal(range(self.classes))
        score = self.i.payload[0]
        new_best = Signal(signed(self.bits))
        new_second = Signal(signed(self.bits))
        with m.If(score > best):
            m.d.comb += [new_best.eq(score), new_second.eq(best)]
        with m.Elif(score > second):
            m.d.comb += [new_best.eq(best), new_second.eq(score)]
        with m.Else():
            m.d.comb += [new_best.eq(best), new_second.eq(second)]

        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(count == self.classes - 1):
                margin = new_best - new_second
                m.d.sync += [count.eq(0), best.eq(lowest), second.eq(lowest),
                             self.o.valid.eq(1), self.o.payload.eq(margin < self.threshold)]
            with m.Else():
                m.d.sync += [count.eq(count + 1), best.eq(new_best), second.eq(new_second)]
        return m
