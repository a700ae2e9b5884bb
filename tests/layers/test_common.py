"""The arithmetic helpers of dnnhw/layers/common.py, exhaustively on small widths."""

import itertools
import random

import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator

from dnnhw.layers.common import logic_product


@pytest.mark.parametrize("a_bits, b_bits", [(1, 1), (2, 3), (4, 4), (5, 4), (4, 5), (5, 5), (3, 8)])
def test_logic_product_every_pair(a_bits, b_bits):
    pairs = itertools.product(range(-(1 << (a_bits - 1)), 1 << (a_bits - 1)),
                              range(-(1 << (b_bits - 1)), 1 << (b_bits - 1)))
    check(a_bits, b_bits, list(pairs))


def test_logic_product_16_bits():
    rng = random.Random(0)
    lo, hi = -(1 << 15), (1 << 15) - 1
    corners = [(x, y) for x in (lo, -1, 0, 1, hi) for y in (lo, -1, 0, 1, hi)]
    check(16, 16, corners + [(rng.randint(lo, hi), rng.randint(lo, hi)) for _ in range(500)])


def check(a_bits, b_bits, pairs):
    m = Module()
    a, b = Signal(signed(a_bits)), Signal(signed(b_bits))
    product = Signal(signed(a_bits + b_bits))
    m.d.comb += product.eq(logic_product(a, b))
    sim = Simulator(m)

    async def bench(ctx):
        for x, y in pairs:
            ctx.set(a, x)
            ctx.set(b, y)
            assert ctx.get(product) == x * y, (x, y)

    sim.add_testbench(bench)
    sim.run()
