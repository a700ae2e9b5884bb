"""A cascade (CascadeCNN) of two accelerators of one network: a low-precision first stage for
every frame, a high-precision second stage for the frames the first is unsure of.

Data path (`CascadeAccelerator`)::

    i ─ Fork ─┬─ first stage ─ 1 lane ─ Fork ─┬─ Confidence ─ Fork ─┬─ FIFO ─┐
              │                               │                     └─ FIFO ─┼──────┐
              │                               └─ score FIFO ────────────── a │      │
              └─ frame queue ─ FrameGate(keep 1) ─ second stage ─ 1 lane ── b│ StageMerge ─ o
                                  └─ decision ─────────────────────────────┘

The frame queue keeps each input frame until the first stage has decided it; the gate gives
the second stage only the frames to recompute and drops the rest; the merge gives each frame,
in input order, the scores of the stage that decided it and a tag (1 or 2). The queues are
deep enough that no stage waits on another for lack of room while the other is busy with a
frame before it (`queue_frames`, `score_frames`), so the steady rate is the slowest of the
first stage, the merge's output, and the frame queue's port, which spends the second stage's
time on each recomputed frame and a beat a cycle dropping the others (`dnnhw.cascade.rate`).
"""

import math

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.lib import stream

from . import model
from .accel import Accelerator
from .ir import Shape
from .layers.common import pixel_layout
from .layers.confidence import Confidence
from .layers.fifo import StreamFIFO
from .layers.fork import Fork
from .layers.frame_gate import FrameGate
from .layers.lanes import LaneConverter
from .layers.stage_merge import StageMerge


__all__ = ["CascadeAccelerator", "SLACK_FRAMES"]

#: Frames the frame queue holds beyond those inside the first stage: room for a run of frames
#: the first stage decides while the second is busy.
SLACK_FRAMES = 8


class CascadeAccelerator(wiring.Component):
    """Two quantized graphs of one classifier as one stream component.

    Parameters
    ----------
    first, second : ir.Graph
        The first (low-precision) and second stage's quantized graphs: the same input shape
        and format, and the same output shape (classes, 1, 1).
    first_plan, second_plan : dict of layer name → Folding
    threshold : int
        A frame goes to the second stage when the margin of its first-stage scores (largest
        less second largest, in the first output format's LSBs) is below this.

    Members
    -------
    i : In(stream.Signature(pixel_layout(input bits, input_lanes)))
        Input frames, as the first stage takes them.
    o : Out(stream.Signature(pixel_layout(output_bits, 1)))
        Per input frame, in order: its `classes` scores from the stage that decided it (the
        first's sign-extended), then a beat holding that stage, 1 or 2.

    Attributes
    ----------
    stages : tuple of Accelerator
    classes, input_lanes, output_lanes, output_bits : int
    in_shape, out_shape : ir.Shape
    in_bits, out_bits : int
        An input frame, an output frame (classes + 1 values), and the bits of their values, as
        `Accelerator` has them for a host link.
    latency, latency_recomputed : int
        Predicted cycles from a frame's first input beat to its tag, the pipeline empty and
        the output always ready: for a frame the first stage decides (its latency, the
        scores serialised, the decision two cycles later, then the scores and tag a beat a
        cycle), and for one the second stage recomputes (from the decision, the frame from
        the queue a beat a cycle through the second stage's `model.lead` and latency, then
        the tag).
    queue_frames, score_frames : int
        Frames the frame queue and the first stage's score queue hold.
    """

    def __init__(self, first, first_plan, second, second_plan, threshold):
        if first.formats[first.input] != second.formats[second.input]:
            raise ValueError("CascadeAccelerator: the stages' input formats differ "
                             f"({first.formats[first.input]}, {second.formats[second.input]})")
        shape = first.shapes[first.output]
        if shape != second.shapes[second.output] or (shape.h, shape.w) != (1, 1):
            raise ValueError("CascadeAccelerator: the stages must output the same classes × 1 × 1, "
                             f"not {shape} and {second.shapes[second.output]}")
        self.first, self.second, self.threshold = first, second, threshold
        self.stages = (Accelerator(first, first_plan), Accelerator(second, second_plan))
        self.classes = shape.c
        self.input_lanes = self.stages[0].input_lanes
        self.frame_beats = first.shapes[first.input].size // self.input_lanes
        perf1, perf2 = (stage.perf for stage in self.stages)
        self.queue_frames = math.ceil(perf1.latency / perf1.cycles_per_frame) + 1 + SLACK_FRAMES
        self.score_frames = self.queue_frames + math.ceil(perf2.latency / perf2.cycles_per_frame) + 1
        self.bits = [g.formats[g.output].bits for g in (first, second)]
        self.output_bits = max(*self.bits, 3)
        bits_in = first.formats[first.input].bits
        one, two = self.stages
        self.converters = {
            "lanes_in": _converter(first.shapes[first.input].c, bits_in, self.input_lanes,
                                   two.input_lanes),
            "lanes1": _converter(self.classes, self.bits[0], one.output_lanes, 1),
            "lanes2": _converter(self.classes, self.bits[1], two.output_lanes, 1)}
        delay = {name: c.latency if c else 0 for name, c in self.converters.items()}
        decided = perf1.latency + delay["lanes1"] + 2
        self.latency = decided + self.classes
        self.latency_recomputed = (decided + delay["lanes_in"] + model.lead(second, second_plan)
                                   + perf2.latency + delay["lanes2"] + 1)
        self.in_shape, self.in_bits = first.shapes[first.input], bits_in
        self.out_shape, self.out_bits = Shape(self.classes + 1, 1, 1), self.output_bits
        self.output_lanes = 1
        super().__init__({
            "i": In(stream.Signature(pixel_layout(bits_in, self.input_lanes))),
            "o": Out(stream.Signature(pixel_layout(self.output_bits, 1)))})

    def elaborate(self, platform):
        m = Module()
        first, second = self.stages
        m.submodules.first, m.submodules.second = first, second
        bits_in = self.first.formats[self.first.input].bits
        for name, converter in self.converters.items():
            if converter is not None:
                m.submodules[name] = converter
        m.submodules.split = split = Fork(bits_in, self.input_lanes, 2)
        m.submodules.queue = queue = StreamFIFO(bits_in, self.input_lanes,
                                                self.queue_frames * self.frame_beats)
        m.submodules.gate = gate = FrameGate(bits_in, self.input_lanes, self.frame_beats)
        wiring.connect(m, wiring.flipped(self.i), split.i)
        wiring.connect(m, split.o0, first.i)
        wiring.connect(m, split.o1, queue.i)
        wiring.connect(m, queue.o, gate.i)
        wiring.connect(m, self._through(m, "lanes_in", gate.o), second.i)
        scores1 = self._through(m, "lanes1", first.o)
        scores2 = self._through(m, "lanes2", second.o)
        m.submodules.scores = scores = Fork(self.bits[0], 1, 2)
        m.submodules.confidence = confidence = Confidence(self.bits[0], self.classes,
                                                          self.threshold)
        m.submodules.score_queue = score_queue = StreamFIFO(
            self.bits[0], 1, self.score_frames * self.classes)
        m.submodules.decisions = decisions = Fork(None, None, 2, layout=unsigned(1))
        depth = self.score_frames + 2
        m.submodules.gate_decisions = gate_decisions = StreamFIFO(
            None, None, depth, buffered=False, layout=unsigned(1))
        m.submodules.merge_decisions = merge_decisions = StreamFIFO(
            None, None, depth, buffered=False, layout=unsigned(1))
        m.submodules.merge = merge = StageMerge(*self.bits, self.output_bits, self.classes)
        wiring.connect(m, scores1, scores.i)
        wiring.connect(m, scores.o0, confidence.i)
        wiring.connect(m, scores.o1, score_queue.i)
        wiring.connect(m, confidence.o, decisions.i)
        wiring.connect(m, decisions.o0, gate_decisions.i)
        wiring.connect(m, decisions.o1, merge_decisions.i)
        wiring.connect(m, gate_decisions.o, gate.decision)
        wiring.connect(m, merge_decisions.o, merge.decision)
        wiring.connect(m, score_queue.o, merge.a)
        wiring.connect(m, scores2, merge.b)
        wiring.connect(m, merge.o, wiring.flipped(self.o))
        return m

    def _through(self, m, name, source):
        """`source` through the lane converter `name`, if there is one."""
        converter = self.converters[name]
        if converter is None:
            return source
        wiring.connect(m, source, converter.i)
        return converter.o


def _converter(channels, bits, lanes_from, lanes_to):
    """A `LaneConverter` between the widths, or None when they are equal."""
    if lanes_from == lanes_to:
        return None
    return LaneConverter(channels, bits, lanes_from, lanes_to)
