"""Tests of the fully connected layer (dnnhw/layers/fc.py) against golden.run_fixed.

Every case builds a one-layer fc graph over a (C, H, W) input whose weights differ in magnitude by
up to 2**6 between outputs (per-output shifts differ), quantizes it on random frames and streams
the quantized input pixel by pixel (HWC, `coarse_in` channels per beat) into the layer; the
expected (N_out, 1, 1) output is `golden.run_fixed`'s, `coarse_out` features per beat.

- amaranth.sim (default): a table of shapes, foldings, bits, activations, negative shifts.
- cocotb + Verilator (default): two foldings, one of them full (one input beat per cycle),
  bit-exact with random stalls; with no stalls cycles per frame and latency equal the formulas.
- cocotb + Verilator (slow): the generated matrix.
"""

import gc
import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from dnnhw import golden, quant
from dnnhw.ir import Format, Graph, Layer, Shape, WeightQuant
from dnnhw.layers.fc import FullyConnected
from dnnhw.sim import to_beats
from support.engines import ACTS, VARIANTS, check_bench, divisors, input_frames, simulate


@dataclass(frozen=True)
class Case:
    """An fc layer over a (C, H, W) input, its quantization and the folding (coarse_in,
    coarse_out)."""
    in_shape: tuple
    n_out: int
    fold: tuple
    bits: int = 8
    act: str | None = None
    negative_shift: bool = False   # force the smallest requantization shift to -2
    seed: int = 0
    frames: int = 3

    @property
    def id(self):
        c, h, w = self.in_shape
        return (f"in{c}x{h}x{w}_out{self.n_out}_f{self.fold[0]}_{self.fold[1]}_b{self.bits}"
                f"_{self.act}{'_neg' if self.negative_shift else ''}")


def fc_graph(case):
    """The quantized one-layer graph of `case`."""
    rng = np.random.default_rng(case.seed)
    n_in = int(np.prod(case.in_shape))
    weight = rng.standard_normal((case.n_out, n_in)) * 2.0 ** rng.integers(-3, 4, size=(case.n_out, 1))
    shapes = {"x": Shape(*case.in_shape), "y": Shape(case.n_out, 1, 1)}
    graph = Graph("fc", "x", "y", shapes,
                  [Layer("fc", "fc", ["x"], "y", dict(ACTS[case.act]), weight,
                         rng.standard_normal(case.n_out))],
                  (1, *case.in_shape), (1, case.n_out))
    calibration = rng.standard_normal((8, *case.in_shape))
    q = quant.quantize(graph, calibration, bits=case.bits)
    if case.negative_shift:
        shift = golden.requant_shift(q, q.layers[0])
        graph.format_hints["y"] = Format(case.bits, q.formats["y"].frac + int(shift.min()) + 2)
        q = quant.quantize(graph, calibration, bits=case.bits)
        assert golden.requant_shift(q, q.layers[0]).min() == -2
    return q


def streams(graph, frames, fold):
    """Input pixel beats and expected output beats of `frames` back to back."""
    inputs = np.concatenate([to_beats(x, fold[0]) for x in frames])
    outputs = np.concatenate([to_beats(golden.run_fixed(graph, x)[graph.output], fold[1])
                              for x in frames])
    return inputs, outputs


QUICK = [
    Case((4, 2, 3), 10, (2, 5), act="relu"),
    Case((3, 3, 2), 6, (1, 1), act="leaky", bits=16),
    Case((6, 1, 1), 4, (6, 4), act="clamp", bits=4, negative_shift=True),
    Case((2, 3, 3), 8, (2, 2), act=None, negative_shift=True),
    Case((8, 2, 2), 3, (4, 3), act="leaky", bits=4),
]


@pytest.mark.parametrize("case", QUICK, ids=lambda c: c.id)
def test_amaranth_sim(case):
    graph = fc_graph(case)
    layer = FullyConnected.from_layer(graph, graph.layers[0], *case.fold)
    inputs, want = streams(graph, input_frames(graph, 3, case.seed), case.fold)
    np.testing.assert_array_equal(simulate(layer, inputs, len(want), seed=case.seed), want)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_errors():
    wq = WeightQuant(8, np.zeros(5, int), np.zeros((5, 24), int), np.zeros(5, int), 20)
    with pytest.raises(ValueError, match=r"^coarse_in=3 must divide 4 input channels$"):
        FullyConnected(Shape(4, 2, 3), 5, 8, 8, wq, 0, coarse_in=3)
    with pytest.raises(ValueError, match=r"^coarse_out=2 must divide 5 outputs$"):
        FullyConnected(Shape(4, 2, 3), 5, 8, 8, wq, 0, coarse_out=2)
    with pytest.raises(ValueError, match=r"^weights of shape \(5, 24\); expected \(5, 12\)$"):
        FullyConnected(Shape(4, 1, 3), 5, 8, 8, wq, 0)
    graph = fc_graph(Case((4, 2, 3), 10, (1, 1)))
    with pytest.raises(ValueError, match=r"^FC 'fc': coarse_out=4 must divide 10 outputs$"):
        FullyConnected.from_layer(graph, graph.layers[0], coarse_out=4)
    gc.collect()        # the objects whose construction failed, under this test's filter


def bench(case, layer, graph, name):
    """`check_bench` of the layer on `case.frames` frames."""
    inputs, want = streams(graph, input_frames(graph, case.frames, case.seed), case.fold)
    return check_bench(layer, inputs, want, case.frames, layer.cycles_per_frame, layer.latency,
                       name, case.seed)


def test_verilator_folded():
    case = Case((4, 2, 3), 10, (2, 5), act="relu")
    graph = fc_graph(case)
    layer = FullyConnected.from_layer(graph, graph.layers[0], *case.fold)
    assert layer.cycles_per_frame == (10 // 5) * (24 // 2)
    bench(case, layer, graph, "fc_folded")


def test_verilator_full_rate():
    """coarse_out = N_out: one input beat per cycle, back to back across frames."""
    case = Case((4, 1, 3), 6, (4, 6), act="leaky", bits=16, negative_shift=True)
    graph = fc_graph(case)
    layer = FullyConnected.from_layer(graph, graph.layers[0], *case.fold)
    free = bench(case, layer, graph, "fc_full_rate")
    assert layer.cycles_per_frame == 3
    assert list(np.diff(free.in_cycles["i"])) == [1] * (len(free.in_cycles["i"]) - 1)


MATRIX = [Case(in_shape, n_out, (ci, co), bits=bits, act=act, negative_shift=negative, frames=2)
          for n, (in_shape, n_out) in enumerate(itertools.product([(4, 2, 3), (6, 1, 1), (2, 3, 4)],
                                                                  [4, 9]))
          for bits, act, negative in [VARIANTS[n % len(VARIANTS)]]
          for ci, co in sorted({(1, 1), (in_shape[0], n_out),
                                (divisors(in_shape[0])[1], divisors(n_out)[1])})]


@pytest.mark.slow
@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
def test_verilator_matrix(case):
    graph = fc_graph(case)
    layer = FullyConnected.from_layer(graph, graph.layers[0], *case.fold)
    bench(case, layer, graph, f"fc_{case.id}")
