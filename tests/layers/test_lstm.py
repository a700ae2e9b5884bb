"""Tests of the LSTM cell (dnnhw/layers/lstm.py) against golden.run_fixed.

Every case builds a one-layer lstm graph (I inputs, H hidden units, T steps), quantizes it on
random sequences and streams quantized sequences time step after time step (`coarse_in`
features per beat) into the cell; the expected output is golden's hidden state per step (or the
last step's), one unit per beat.

- amaranth.sim (default): small shapes, foldings, 4/8/16 bits, initial states, last-only.
- cocotb + Verilator (default): sequences of 20+ steps, bit-exact under random stalls on both
  streams; unstalled, cycles per frame and latency exactly `geometry.lstm`.
- cocotb + Verilator (slow): hidden and input sizes up to 256.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from dnnhw import geometry, golden, model, quant
from dnnhw.ir import Graph, Layer, Shape
from dnnhw.layers.lstm import LSTMCell
from dnnhw.sim import run_stream_bench, to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim


@dataclass(frozen=True)
class Case:
    n_in: int
    hidden: int
    steps: int
    fold: tuple                 # (coarse_in, coarse_out)
    bits: int = 8
    last: bool = False
    initial: bool = False       # non-zero h0, c0
    frames: int = 2
    seed: int = 0

    @property
    def id(self):
        return (f"i{self.n_in}_h{self.hidden}_t{self.steps}_f{self.fold[0]}_{self.fold[1]}"
                f"_b{self.bits}{'_last' if self.last else ''}{'_init' if self.initial else ''}")


def lstm_graph(case):
    """The quantized one-layer graph of `case`: weights large enough that gates saturate now
    and then, and a cell state that grows past ±1."""
    rng = np.random.default_rng(case.seed)
    i, h, t = case.n_in, case.hidden, case.steps
    attrs = {"hidden": h, "last": case.last,
             "h0": np.tanh(rng.standard_normal(h)) if case.initial else None,
             "c0": rng.standard_normal(h) if case.initial else None}
    steps_out = 1 if case.last else t
    graph = Graph("lstm", "x", "y", {"x": Shape(i, 1, t), "y": Shape(h, 1, steps_out)},
                  [Layer("lstm", "lstm", ["x"], "y", attrs,
                         rng.standard_normal((4 * h, i + h)) * 1.5 / np.sqrt(i + h),
                         rng.standard_normal(4 * h) * 0.5 + np.repeat([0, 0, 1, 0], h))],
                  (1, t, i), (1, steps_out, h), input_hwc=True, output_hwc=True)
    return quant.quantize(graph, rng.standard_normal((4, t, i)), bits=case.bits)


def streams(graph, case):
    rng = np.random.default_rng(case.seed + 1)
    frames = rng.standard_normal((case.frames, case.steps, case.n_in)) * 1.5
    xs = [golden.quantize(golden.input_to_chw(graph, f), graph.formats["x"]) for f in frames]
    inputs = np.concatenate([to_beats(x, case.fold[0]) for x in xs])
    want = np.concatenate([to_beats(golden.run_fixed(graph, x)["y"], 1) for x in xs])
    return inputs, want


def cell(case):
    graph = lstm_graph(case)
    return graph, LSTMCell.from_layer(graph, graph.layers[0], *case.fold)


SIM = [
    Case(3, 4, 5, (1, 1)),
    Case(3, 1, 4, (1, 1)),
    Case(4, 4, 3, (2, 2), bits=4),
    Case(4, 8, 3, (4, 2), last=True),
    Case(6, 6, 4, (3, 2), bits=16),
    Case(4, 4, 3, (2, 1), initial=True),
    Case(4, 4, 3, (2, 4), last=True, initial=True, bits=16),
    Case(2, 12, 3, (2, 6)),                      # coarse_out = 6 > I/ci: steps stall
]


@pytest.mark.parametrize("case", SIM, ids=lambda c: c.id)
def test_lstm_amaranth_sim(case):
    graph, dut = cell(case)
    inputs, want = streams(graph, case)
    result = run_stream_sim(dut, {"i": inputs}, {"o": len(want)}, stall_in=0.3, stall_out=0.3,
                            seed=case.seed)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"].reshape(-1), want.reshape(-1))


def check_bench(case, name):
    """Bit-exact with random stalls; unstalled, frames back to back end `cycles_per_frame`
    apart and the first output comes `latency` cycles after the first input."""
    graph, dut = cell(case)
    inputs, want = streams(graph, case)
    timeout = 4 * case.frames * (dut.cycles_per_frame + dut.latency) + 1000
    free = run_stream_bench(dut, {"i": inputs}, {"o": len(want)}, name=name, timeout=timeout)
    assert free.extra == {"o": 0}
    np.testing.assert_array_equal(free.outputs["o"].reshape(-1), want.reshape(-1))
    per_frame = len(want) // case.frames
    ends = np.array(free.out_cycles["o"])[per_frame - 1::per_frame]
    assert list(np.diff(ends)) == [dut.cycles_per_frame] * (case.frames - 1)
    assert free.out_cycles["o"][0] - free.in_cycles["i"][0] == dut.latency
    stalled = run_stream_bench(dut, {"i": inputs}, {"o": len(want)}, name=name, timeout=timeout,
                               stall_in=0.3, stall_out=0.3, seed=case.seed + 7)
    assert stalled.extra == {"o": 0}
    np.testing.assert_array_equal(stalled.outputs["o"].reshape(-1), want.reshape(-1))
    return dut, free


VERILATOR = [
    Case(12, 20, 24, (4, 4), bits=16),
    Case(8, 16, 20, (2, 8), last=True, initial=True),
]


@pytest.mark.parametrize("case", VERILATOR, ids=lambda c: c.id)
def test_lstm_verilator(case):
    check_bench(case, f"lstm_{case.id}")


def test_cycles_per_step_formula():
    """A step is G·K beats plus the recurrence stall; only a frame's first step runs without it."""
    case = Case(2, 8, 21, (1, 8), frames=2)     # K = 10, I/ci = 2: stall = 15 + 8 - 2
    _, dut = cell(case)
    g = geometry.lstm(2, 8, 21, 1, 8, False)
    per_step, per_frame = g.cycles_per_step, g.cycles_per_frame
    assert (per_step, per_frame) == (10 + 21, 21 * 10 + 20 * 21)
    assert dut.cycles_per_step == per_step and dut.cycles_per_frame == per_frame
    _, free = check_bench(case, "lstm_stall")
    steps = np.array(free.out_cycles["o"][::8])          # each step's first unit
    assert set(np.diff(steps[:21])) == {per_step}


LARGE = [
    Case(256, 256, 20, (16, 16), frames=1),
    Case(64, 256, 20, (8, 32), bits=16, last=True, frames=1),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", LARGE, ids=lambda c: c.id)
def test_lstm_large(case):
    check_bench(case, f"lstm_{case.id}")


def test_invalid_foldings():
    graph = lstm_graph(Case(6, 4, 3, (1, 1)))
    layer = graph.layers[0]
    assert model.foldings(graph, layer) == [
        model.Folding(ci, co) for ci in (1, 2) for co in (1, 2, 4) if co <= (6 + 4) // ci]
    for ci, co in ((3, 1), (4, 1), (1, 3)):
        with pytest.raises(ValueError, match="lstm"):
            model.check(graph, layer, model.Folding(ci, co))
        with pytest.raises(ValueError):
            LSTMCell.from_layer(graph, layer, ci, co)
