"""Yosys synthesis of a small multiply-accumulate: multipliers land in DSPs on every family."""

import pytest
from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dnnhw.toolchain.yosys import count_resources, synthesize


class MultiplyAccumulate(wiring.Component):
    """acc += a × b with registered operands, `n` lanes."""

    def __init__(self, n):
        self._n = n
        super().__init__({"a": In(signed(8 * n)), "b": In(signed(8 * n)), "acc": Out(signed(24 * n))})

    def elaborate(self, platform):
        m = Module()
        for lane in range(self._n):
            a, b = Signal(signed(8)), Signal(signed(8))
            product, acc = Signal(signed(16)), Signal(signed(24))
            m.d.sync += [a.eq(self.a[8 * lane:8 * lane + 8]), b.eq(self.b[8 * lane:8 * lane + 8]),
                         product.eq(a * b), acc.eq(acc + product)]
            m.d.comb += self.acc[24 * lane:24 * lane + 24].eq(acc)
        return m


@pytest.mark.parametrize("family", ["xc7", "ecp5", "ice40"])
def test_multipliers_become_dsps(family):
    resources, cells = synthesize(MultiplyAccumulate(2), family, name="mac")
    assert resources["dsp"] == 2, cells
    assert resources["bram"] == 0
    if family != "xc7":             # DSP48E1 absorbs the operand and accumulator registers
        assert resources["ff"] > 0


def test_count_resources_units():
    assert count_resources({"RAMB36E1": 2, "RAMB18E1": 1, "LUT6": 5, "$scopeinfo": 3}, "xc7") == \
        {"lut": 5, "ff": 0, "dsp": 0, "bram": 5, "lutram": 0}
    assert count_resources({"CCU2C": 3, "LUT4": 4}, "ecp5")["lut"] == 10
