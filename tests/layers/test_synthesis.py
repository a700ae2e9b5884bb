"""Yosys synthesis smoke tests per block family: the blocks synthesize, resources are counted,
multipliers become DSPs and large memories block RAM."""

import pytest

from dnnhw.ir import Shape
from dnnhw.layers.activation import Activation
from dnnhw.layers.add import Add
from dnnhw.layers.fifo import StreamFIFO
from dnnhw.toolchain.yosys import synthesize
from support.graphs import conv_graph


def test_sigmoid_table_and_multiplier():
    block = Activation(Shape(4, 4, 4), 16, 16, 2, "sigmoid", frac_in=12, frac_out=15)
    resources, cells = synthesize(block, "ecp5", name="sigmoid")
    assert resources["dsp"] == 2, cells               # one interpolation multiplier per lane
    assert resources["bram"] == 2, cells              # one table per lane


def test_add_is_logic_only():
    resources, cells = synthesize(Add(Shape(8, 4, 4), 4, 8, 8, 8, (2, 1), 1), "xc7", name="add")
    assert resources["dsp"] == 0 and resources["bram"] == 0 and resources["lut"] > 0, cells


@pytest.mark.parametrize("family", ["xc7", "ecp5", "ice40"])
def test_deep_fifo_in_block_ram(family):
    resources, cells = synthesize(StreamFIFO(8, 4, 512), family, name="fifo")
    assert resources["bram"] >= 1, cells


@pytest.mark.parametrize("family", ["xc7", "ecp5"])
def test_conv_multipliers_become_dsps(family):
    from dnnhw.layers.conv import Conv

    graph, _ = conv_graph(Shape(4, 8, 8), 8, (3, 3), (1, 1), (1, 1, 1, 1), act="relu")
    conv = Conv.from_layer(graph, graph.layers[0], coarse_in=2, coarse_out=2, fine=3)
    resources, cells = synthesize(conv, family, name="conv")
    assert resources["dsp"] == conv.engine.multipliers == 12, cells


def test_line_buffer_in_block_ram():
    from dnnhw.layers.sliding_window import SlidingWindow

    window = SlidingWindow(Shape(32, 56, 56), (3, 3), (1, 1), (1, 1, 1, 1), 8, 4)
    resources, cells = synthesize(window, "ecp5", name="window")
    assert resources["bram"] >= 1 and resources["dsp"] == 0, cells


def test_average_pool_scale_in_dsps():
    from dnnhw.layers.pool import Pool

    pool = Pool(Shape(8, 16, 16), (3, 3), (2, 2), (1, 1, 1, 1), 8, 4, kind="avg")
    resources, cells = synthesize(pool, "ecp5", name="avgpool")
    assert resources["dsp"] == 4, cells               # one reciprocal multiplier per lane


def test_logic_multipliers_stay_out_of_dsps():
    from dnnhw.layers.conv import Conv

    graph, _ = conv_graph(Shape(4, 8, 8), 8, (3, 3), (1, 1), (1, 1, 1, 1), act="relu")
    conv = Conv.from_layer(graph, graph.layers[0], coarse_in=2, coarse_out=2, fine=3,
                           logic_multipliers=5)
    resources, cells = synthesize(conv, "xc7", name="conv")
    assert resources["dsp"] == 12 - 5, cells
