"""Tests of the sliding window (dnnhw/layers/sliding_window.py) against `golden.window_view`.

Every design runs several frames back to back: with random stalls on both sides (bit-exact, no
lost, duplicated or extra beat) and without stalls (cycles per frame and latency equal to the
block's stated formulas, exactly). The generated matrix runs in `amaranth.sim` (fast, no build);
a few designs also run in cocotb + Verilator. The whole matrix is marked slow except a subset
that covers every kernel, stride, padding, lane count and width at least once.

Both simulators go through the same checks (`support.windows.check_stream`), which the pool and
global pool tests share, with the matrix's axes.
"""

import gc
import itertools
import random
from typing import NamedTuple

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from dnnhw import golden
from dnnhw.ir import Shape
from dnnhw.layers.sliding_window import DelayLine, SlidingWindow
from dnnhw.sim import to_beats
from support.windows import (BITS, FRAMES, KERNELS, LANES, PADS, SHAPE, STRIDES, check_stream, params,
                             random_frames, seed_of)


class Case(NamedTuple):
    kernel: tuple
    stride: tuple
    pads: str
    lanes: int
    bits: int

    @property
    def pad_tuple(self):
        return PADS[self.pads](*self.kernel)

    @property
    def name(self):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return f"k{kh}x{kw}_s{sh}x{sw}_{self.pads}_l{self.lanes}_b{self.bits}"

    def fits(self, shape=SHAPE):
        top, left, bottom, right = self.pad_tuple
        return (self.kernel[0] <= shape.h + top + bottom) and (self.kernel[1] <= shape.w + left + right)


MATRIX = [case for case in itertools.starmap(Case, itertools.product(KERNELS, STRIDES, PADS, LANES, BITS))
          if case.fits()]
# a diagonal through the matrix: every kernel, stride, padding, lane count and width at least once
DEFAULT = [Case(k, STRIDES[j % 3], pads, LANES[j % 3], BITS[j % 2])
           for j, (k, pads) in enumerate(zip(KERNELS, ["sym", "nopad", "asym", "sym", "asym", "sym", "nopad"]))]
VERILATOR = [Case((3, 3), (1, 1), "sym", 2, 8), Case((4, 10), (2, 2), "asym", 4, 16),
             Case((1, 1), (1, 2), "nopad", 1, 8)]
# the slow Verilator set: every geometry, lanes and bits drawn at random
_draw = random.Random(0)
VERILATOR_SLOW = [case for case in (Case(k, s, p, _draw.choice(LANES), _draw.choice(BITS))
                                    for k, s, p in itertools.product(KERNELS, STRIDES, PADS))
                  if case.fits() and case not in VERILATOR]


def expected_windows(x, kernel, stride, pads, lanes, pad_value):
    """Window beats of one frame, in stream order: (H_out·W_out·C/lanes, kh·kw·lanes)."""
    (kh, kw), c = kernel, x.shape[0]
    win = golden.window_view(x, kernel, stride, pads, pad_value)
    _, h_out, w_out = win.shape[:3]
    beats = win.transpose(1, 2, 0, 3, 4).reshape(h_out, w_out, c // lanes, lanes, kh * kw)
    return beats.transpose(0, 1, 2, 4, 3).reshape(-1, kh * kw * lanes)


def window_test(case, simulator, seed):
    rng = np.random.default_rng(seed)
    pad_value = int(rng.integers(-(1 << (case.bits - 1)), 1 << (case.bits - 1)))
    dut = SlidingWindow(SHAPE, case.kernel, case.stride, case.pad_tuple, case.bits, case.lanes, pad_value)
    xs = random_frames(SHAPE, case.bits, rng, FRAMES[simulator])
    beats = np.concatenate([to_beats(x, case.lanes) for x in xs])
    expected = np.concatenate([expected_windows(x, case.kernel, case.stride, case.pad_tuple, case.lanes,
                                                pad_value) for x in xs])
    c, h_out, w_out = dut.out_shape
    assert len(expected) == len(xs) * h_out * w_out * c // case.lanes
    check_stream(dut, f"sw_{case.name}", simulator, beats, expected, len(xs), seed)


# -- tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", params(DEFAULT, MATRIX))
def test_window_amaranth(case):
    window_test(case, "amaranth", seed=seed_of(case.name))


@pytest.mark.parametrize("case", params(VERILATOR, VERILATOR + VERILATOR_SLOW))
def test_window_verilator(case):
    window_test(case, "verilator", seed=1 + seed_of(case.name))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_formulas():
    """The stated rate and latency for a window whose top padding holds a whole window."""
    dut = SlidingWindow(Shape(6, 5, 4), (1, 3), (1, 2), (2, 1, 0, 3), 8, 2)
    assert dut.padded == (7, 8)
    assert dut.out_shape == Shape(6, 7, 3)
    assert dut.cycles_per_frame == 7 * 8 * 3
    assert dut.latency == ((1 - 1 - 2) * 8 + 3 - 1 - 1) * 3 + 1 < 0
    del dut
    gc.collect()                # under this test's filter: the block is never elaborated


def test_window_top_padding_before_input():
    """Windows entirely in the top padding leave before the first input beat (negative latency)."""
    shape, kernel, stride, pads = Shape(6, 5, 4), (1, 3), (1, 2), (2, 1, 0, 3)
    dut = SlidingWindow(shape, kernel, stride, pads, 8, 2, pad_value=5)
    xs = random_frames(shape, 8, np.random.default_rng(7), 3)
    beats = np.concatenate([to_beats(x, 2) for x in xs])
    expected = np.concatenate([expected_windows(x, kernel, stride, pads, 2, 5) for x in xs])
    check_stream(dut, "sw_toppad", "amaranth", beats, expected, len(xs), seed=7)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_delay_line(depth):
    """`o` on an enabled cycle is the word stored `depth` enabled cycles earlier."""
    m = Module()
    m.submodules.line = line = DelayLine(8, depth)
    rng = random.Random(depth)

    async def bench(ctx):
        stored = []
        for step in range(60):
            en = rng.random() < 0.6
            ctx.set(line.en, en)
            ctx.set(line.i, step)
            if en:
                if len(stored) >= depth:
                    assert ctx.get(line.o) == stored[-depth]
                stored.append(step)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=Shape(6, 5, 5), lanes=4), "SlidingWindow: lanes=4 must divide 6 channels"),
    (dict(kernel=(7, 3)), "SlidingWindow: kernel 7x3 is larger than the padded map 6x5"),
    (dict(pad_value=128), "SlidingWindow: pad_value 128 does not fit in 8 bits"),
])
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_errors(kwargs, message):
    args = dict(shape=Shape(2, 5, 5), kernel=(3, 3), stride=(1, 1), pads=(0, 0, 1, 0), bits=8, lanes=1)
    with pytest.raises(ValueError, match=message):
        SlidingWindow(**{**args, **kwargs})
    gc.collect()                # under this test's filter: the half-built block
