"""The checks and matrix axes shared by the sliding-window family's tests (sliding window, pool,
global pool): several frames back to back, bit-exact with random stalls on both sides, no lost,
duplicated or extra beat, and without stalls cycles per frame and latency exactly as the block
states; in amaranth.sim or in cocotb + Verilator, through the same harness (`dnnhw.sim`)."""

import zlib

import numpy as np
import pytest

from dnnhw.ir import Shape
from dnnhw.sim import run_stream_bench
from dnnhw.sim.amaranth_sim import run_stream_sim


FRAMES = {"amaranth": 2, "verilator": 3}    # frames back to back per run
STALLS = [(0.3, 0.3), (0.1, 0.7)]           # (stall_in, stall_out): balanced, and output-bound

SHAPE = Shape(4, 7, 9)
KERNELS = [(1, 1), (2, 2), (3, 3), (5, 5), (7, 7), (4, 10), (3, 1)]
STRIDES = [(1, 1), (2, 2), (1, 2)]
PADS = {
    "nopad": lambda kh, kw: (0, 0, 0, 0),
    "sym": lambda kh, kw: (kh // 2, kw // 2, kh // 2, kw // 2),
    "asym": lambda kh, kw: (kh // 2, kw - 1, kh, 0),      # bottom exceeds kh - 1, as ceil mode
}
LANES = [1, 2, SHAPE.c]
BITS = [8, 16]


def run(simulator, dut, name, beats, n_out, **stalls):
    """One run of `dut` ("i" → "o") in `simulator` ("amaranth" or "verilator", built as `name`)."""
    if simulator == "verilator":
        return run_stream_bench(dut, {"i": beats}, {"o": n_out}, name=name, **stalls)
    return run_stream_sim(dut, {"i": beats}, {"o": n_out}, **stalls)


def check_stream(dut, name, simulator, beats, expected, frames, seed):
    """Bit-exact under stalls; cycles per frame and latency exact without stalls."""
    for stall_in, stall_out in STALLS:
        result = run(simulator, dut, name, beats, len(expected),
                     stall_in=stall_in, stall_out=stall_out, seed=seed)
        assert result.extra == {"o": 0}
        assert len(result.in_cycles["i"]) == len(beats)
        np.testing.assert_array_equal(result.outputs["o"], expected)
    result = run(simulator, dut, name, beats, len(expected))
    assert result.extra == {"o": 0}
    np.testing.assert_array_equal(result.outputs["o"], expected)
    per_frame = len(expected) // frames
    ends = [result.out_cycles["o"][(f + 1) * per_frame - 1] for f in range(frames)]
    assert np.diff(ends).tolist() == [dut.cycles_per_frame] * (frames - 1)
    assert result.out_cycles["o"][0] - result.in_cycles["i"][0] == dut.latency


def random_frames(shape, bits, rng, frames):
    """Integers over the whole range of `bits`, extremes included."""
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    xs = rng.integers(lo, hi, size=(frames, *shape))
    xs[0].flat[:2] = lo, hi - 1
    return xs


def seed_of(name):
    """A seed per design, stable across runs."""
    return zlib.crc32(name.encode())


def params(default, everything):
    """pytest parameters: the `default` cases, and the rest of `everything` marked slow."""
    return ([pytest.param(case, id=case.name) for case in default] +
            [pytest.param(case, id=case.name, marks=pytest.mark.slow)
             for case in everything if case not in default])
