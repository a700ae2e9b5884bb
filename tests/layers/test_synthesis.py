"""Yosys synthesis smoke tests per block family: the blocks synthesize, resources are counted,
multipliers become DSPs and large memories block RAM."""

import pytest

from dnnhw.ir import Shape
from dnnhw.layers.activation import Activation
from dnnhw.layers.add import Add
from dnnhw.layers.fifo import StreamFIFO
from dnnhw.toolchain.yosys import synthesize


def test_sigmoid_table_and_multiplier():
    block = Activation(Shape(4, 4, 4), 16, 16, 2, "sigmoid", frac_in=12, frac_out=15)
    resources, cells = synthesize(block, "ecp5", name="sigmoid")
    assert resources["dsp"] == 2, cells               # one interpolation multiplier per lane
    assert resources["bram"] == 2, cells              # one table per lane


def test_add_is_logic_only():
    resources, cells = synthesize(Add(Shape(8, 4, 4), 4, 8, 3, 8, 4, 8, 3), "xc7", name="add")
    assert resources["dsp"] == 0 and resources["bram"] == 0 and resources["lut"] > 0, cells


@pytest.mark.parametrize("family", ["xc7", "ecp5", "ice40"])
def test_deep_fifo_in_block_ram(family):
    resources, cells = synthesize(StreamFIFO(8, 4, 512), family, name="fifo")
    assert resources["bram"] >= 1, cells
