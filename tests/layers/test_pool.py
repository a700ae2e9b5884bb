"""Tests of max and average pooling (dnnhw/layers/pool.py) against the golden model.

Expected outputs come from `golden.run_fixed` on a one-layer graph ("maxpool" or "avgpool")
quantized with `dnnhw.quant.quantize`. The harness, the checks (bit-exact under random stalls on
both sides, exact cycles per frame and latency without stalls, frames back to back, no extra
beat) and the generated matrix's axes are the sliding window's (`support.windows`), with the
pooling kind as one more axis: max, average excluding padding, average including padding.
"""

import itertools
import random
from typing import NamedTuple

import numpy as np
import pytest

from dnnhw import golden, quant
from dnnhw.ir import Graph, Layer, Shape
from dnnhw.layers.pool import AverageScale, Pool
from dnnhw.sim import to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim
from support.windows import (BITS, FRAMES, KERNELS, LANES, PADS, SHAPE, STRIDES, check_stream, params,
                             random_frames, seed_of)


KINDS = {                       # case kind: (graph op, Pool kind, count_include_pad)
    "max": ("maxpool", "max", False),
    "avg": ("avgpool", "avg", False),
    "avgpad": ("avgpool", "avg", True),
}


class Case(NamedTuple):
    kernel: tuple
    stride: tuple
    pads: str
    lanes: int
    bits: int
    kind: str

    @property
    def name(self):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return f"{self.kind}_k{kh}x{kw}_s{sh}x{sw}_{self.pads}_l{self.lanes}_b{self.bits}"

    @property
    def attrs(self):
        op, _, count_include_pad = KINDS[self.kind]
        attrs = {"kernel": self.kernel, "stride": self.stride, "pads": PADS[self.pads](*self.kernel)}
        return {**attrs, "count_include_pad": count_include_pad} if op == "avgpool" else attrs

    def fits(self):
        """The window fits the padded map, and no average excluding padding divides by zero."""
        top, left, bottom, right = self.attrs["pads"]
        if self.kernel[0] > SHAPE.h + top + bottom or self.kernel[1] > SHAPE.w + left + right:
            return False
        return self.kind != "avg" or golden.avg_divisors(SHAPE, self.attrs).min() > 0


GEOMETRIES = list(itertools.product(KERNELS, STRIDES, PADS))
# every geometry and kind, with lanes and bits drawn at random (the sliding window's own tests
# run the full product with lanes and bits)
_draw = random.Random(0)
MATRIX = [case for case in (Case(k, s, p, _draw.choice(LANES), _draw.choice(BITS), kind)
                            for (k, s, p), kind in itertools.product(GEOMETRIES, KINDS)) if case.fits()]
DEFAULT = [Case((3, 3), (1, 1), "sym", 2, 16, "avg"), Case((2, 2), (2, 2), "nopad", 4, 8, "max"),
           Case((5, 5), (1, 2), "asym", 1, 8, "avgpad"), Case((7, 7), (2, 2), "sym", 2, 8, "max"),
           Case((4, 10), (2, 2), "sym", 1, 16, "avg"), Case((3, 1), (2, 2), "asym", 4, 16, "avgpad"),
           Case((1, 1), (1, 2), "nopad", 2, 8, "avg")]
VERILATOR = DEFAULT[:3]
# the slow Verilator set: every geometry, the kind, lanes and bits drawn at random
VERILATOR_SLOW = [case for case in (Case(k, s, p, _draw.choice(LANES), _draw.choice(BITS), _draw.choice(list(KINDS)))
                                    for k, s, p in GEOMETRIES) if case.fits() and case not in VERILATOR]


def pool_graph(case, seed):
    """A one-layer graph of the case's pooling, quantized on random calibration frames."""
    op = KINDS[case.kind][0]
    c, h_out, w_out = golden.window_view(np.zeros(tuple(SHAPE)), case.kernel, case.stride,
                                         case.attrs["pads"], 0).shape[:3]
    graph = Graph("pool", "x", "y", {"x": SHAPE, "y": Shape(c, h_out, w_out)},
                  [Layer("pool", op, ["x"], "y", case.attrs)], (1, *SHAPE), (1, c, h_out, w_out))
    frames = np.random.default_rng(seed).standard_normal((4, *SHAPE))
    return quant.quantize(graph, frames, bits=case.bits)


def pool_test(case, simulator, seed):
    graph = pool_graph(case, seed)
    assert graph.formats["x"] == graph.formats["y"]
    xs = random_frames(SHAPE, graph.formats["x"].bits, np.random.default_rng(seed), FRAMES[simulator])
    ys = [golden.run_fixed(graph, x)["y"] for x in xs]
    _, kind, count_include_pad = KINDS[case.kind]
    dut = Pool(SHAPE, case.kernel, case.stride, case.attrs["pads"], case.bits, case.lanes,
               kind=kind, count_include_pad=count_include_pad)
    assert dut.out_shape == graph.shapes["y"]
    beats = np.concatenate([to_beats(x, case.lanes) for x in xs])
    expected = np.concatenate([to_beats(y, case.lanes) for y in ys])
    check_stream(dut, f"pool_{case.name}", simulator, beats, expected, len(xs), seed)


@pytest.mark.parametrize("case", params(DEFAULT, MATRIX))
def test_pool_amaranth(case):
    pool_test(case, "amaranth", seed=seed_of(case.name))


@pytest.mark.parametrize("case", params(VERILATOR, VERILATOR + VERILATOR_SLOW))
def test_pool_verilator(case):
    pool_test(case, "verilator", seed=1 + seed_of(case.name))


def test_average_pool_divisors_vary():
    """The default 3×3 average excluding padding has three row and three column classes."""
    case = Case((3, 3), (1, 1), "sym", 2, 16, "avg")
    divisors = golden.avg_divisors(SHAPE, case.attrs)
    assert sorted(np.unique(divisors).tolist()) == [4, 6, 9]


def test_average_scale_any_divisors():
    """`AverageScale` against golden's reciprocal rule for divisors with no structure (every
    position its own n, 1..200: shifts 16..23), sums over the whole input range (saturating)."""
    rng = np.random.default_rng(3)
    divisors = rng.integers(1, 201, size=(3, 5))
    groups, in_bits, bits, lanes = 2, 14, 8, 3
    dut = AverageScale(divisors, groups, in_bits, bits, lanes)
    sums = rng.integers(-(1 << (in_bits - 1)), 1 << (in_bits - 1), size=(2, 3, 5, groups, lanes))
    n = np.broadcast_to(divisors[None, :, :, None, None], sums.shape)
    mk = np.vectorize(golden.avg_multiplier)(n)
    expected = golden.saturate(golden.round_shift(sums * mk[0], mk[1]), bits).reshape(-1, lanes)
    assert np.any(expected == 127) and np.any(expected == -128) and np.any(np.abs(expected) < 127)
    result = run_stream_sim(dut, {"i": sums.reshape(-1, lanes)}, {"o": len(expected)},
                            stall_in=0.3, stall_out=0.3, seed=3)
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
