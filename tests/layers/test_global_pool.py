"""Tests of global average pooling (dnnhw/layers/global_pool.py) against the golden model.

Expected outputs come from `golden.run_fixed` on a one-layer "global_avgpool" graph quantized
with `dnnhw.quant.quantize`. Harness and checks are the sliding window's (`support.windows`):
bit-exact under random stalls on both sides, exact cycles per frame and latency without stalls,
frames back to back, no extra beat. The matrix: shapes (odd sizes, a single pixel, a single
channel group) × lanes (1, 2, C) × bits (8, 16); and a quantized model's average in its own
stated format (scales that are not powers of two, zero points' ranges).
"""

import gc
import itertools
from typing import NamedTuple

import numpy as np
import pytest

from dnnhw import golden, ops, quant
from dnnhw.folding import Folding
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.layers.global_pool import GlobalAveragePool
from dnnhw.sim import to_beats
from support.windows import BITS, FRAMES, check_stream, params, random_frames, seed_of


SHAPES = [Shape(4, 7, 9), Shape(6, 1, 1), Shape(2, 5, 3), Shape(8, 4, 4)]


class Case(NamedTuple):
    shape: Shape
    lanes: int
    bits: int

    @property
    def name(self):
        return f"{self.shape}_l{self.lanes}_b{self.bits}"


MATRIX = [Case(shape, lanes, bits) for shape, bits in itertools.product(SHAPES, BITS)
          for lanes in sorted({1, 2, shape.c})]
DEFAULT = [Case(Shape(4, 7, 9), 2, 8), Case(Shape(6, 1, 1), 6, 16), Case(Shape(2, 5, 3), 1, 16),
           Case(Shape(8, 4, 4), 8, 8)]
VERILATOR = [Case(Shape(4, 7, 9), 2, 8), Case(Shape(6, 1, 1), 6, 16), Case(Shape(2, 5, 3), 1, 16)]


def gap_graph(shape, bits, seed):
    """A one-layer global average pooling graph, quantized on random calibration frames."""
    graph = Graph("gap", "x", "y", {"x": shape, "y": Shape(shape.c, 1, 1)},
                  [Layer("gap", "global_avgpool", ["x"], "y")], (1, *shape), (1, shape.c, 1, 1))
    return quant.quantize(graph, np.random.default_rng(seed).standard_normal((4, *shape)), bits=bits)


def gap_test(case, simulator, seed):
    graph = gap_graph(case.shape, case.bits, seed)
    assert graph.formats["x"] == graph.formats["y"]
    rng = np.random.default_rng(seed)
    xs = random_frames(case.shape, case.bits, rng, FRAMES[simulator])
    lo, hi = -(1 << (case.bits - 1)), (1 << (case.bits - 1)) - 1
    xs[-1, 0], xs[-1, -1] = hi, lo          # a frame whose sums reach both ends of the range
    ys = [golden.run_fixed(graph, x)["y"] for x in xs]
    dut = GlobalAveragePool(case.shape, case.bits, case.lanes)
    assert dut.out_shape == graph.shapes["y"]
    beats = np.concatenate([to_beats(x, case.lanes) for x in xs])
    expected = np.concatenate([to_beats(y, case.lanes) for y in ys])
    check_stream(dut, f"gap_{case.name.replace('x', '_')}", simulator, beats, expected, len(xs), seed)


@pytest.mark.parametrize("case", params(DEFAULT, MATRIX))
def test_global_pool_amaranth(case):
    gap_test(case, "amaranth", seed=seed_of(case.name))


@pytest.mark.parametrize("case", params(VERILATOR, MATRIX))
def test_global_pool_verilator(case):
    gap_test(case, "verilator", seed=1 + seed_of(case.name))


@pytest.mark.parametrize("lanes", [1, 4])
def test_global_pool_scaled_amaranth(lanes):
    """The input's scale and the stated output's in the reciprocal multiplier, the result
    clipped to the output's range (an int8 zero point's), as golden computes it."""
    shape = Shape(4, 5, 3)
    graph = Graph("gap", "x", "y", {"x": shape, "y": Shape(shape.c, 1, 1)},
                  [Layer("gap", "global_avgpool", ["x"], "y")], (1, *shape), (1, shape.c, 1, 1),
                  format_hints={"x": Format(9, 7, 1.37235, 0, 255),
                                "y": Format(9, 9, 1.64342, -100, 155)})
    graph = quant.quantize(graph, np.zeros((1, *shape)))
    assert graph.formats["y"] == graph.format_hints["y"]
    rng = np.random.default_rng(lanes)
    xs = rng.integers(0, 256, (3, *shape))
    xs[-1] = 255                            # an average beyond the output's range: clipped
    ys = [golden.run_fixed(graph, x)["y"] for x in xs]
    assert ys[-1].max() == 155
    dut = ops.get("global_avgpool").block(graph, graph.layers[0], Folding(lanes, lanes))
    check_stream(dut, f"gap_scaled_l{lanes}", "amaranth",
                 np.concatenate([to_beats(x, lanes) for x in xs]),
                 np.concatenate([to_beats(y, lanes) for y in ys]), len(xs), lanes)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_formulas():
    """The docstring's formulas (the simulations check the attributes against measurements)."""
    dut = GlobalAveragePool(Shape(8, 3, 5), 8, 2)
    assert (dut.cycles_per_frame, dut.latency) == (3 * 5 * 4, (3 * 5 - 1) * 4 + 3)
    assert dut.out_shape == Shape(8, 1, 1)
    del dut
    gc.collect()                # under this test's filter: the block is never elaborated
