"""Partitions: where a graph can be cut, the sub-graphs with weights reloading, the batch model
(`dnnhw.schedule`), and the partitioned search (`dse.explore_partitions`): exact against brute
force over the cuts, every partition within the budget, errors that name what does not fit."""

import dataclasses
from dataclasses import replace
import itertools
import tempfile

import numpy as np
import onnx
import pytest

from dnnhw import golden, quant, schedule
from dnnhw.boards import get_board
from dnnhw.dse import Exploration, PartitionedExploration, design, explore_partitions
from dnnhw.dse.partitions import _Ranges, stored_bits
from dnnhw.dse.search import budget
from dnnhw.errors import UserError
from dnnhw.frontend import load
from dnnhw.partition import (Partition, boundary_value, cuts, live, reload_factors,
                             shared_channels, subgraph)
from support import onnx_models


def quantized(model, bits=8):
    """`model` read by the frontend and quantized to `bits` on synthetic frames."""
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/net.onnx"
        onnx.save(model, path)
        graph = load(path)
    return quant.quantize(graph, quant.synthetic_frames(graph, 4), bits=bits)


@pytest.fixture(scope="module")
def vgg16bit():
    """The CIFAR-10 VGG that does not fit arty at 16 bits."""
    return quantized(onnx_models.vgg(*onnx_models.VGG_CIFAR, name="vgg_cifar"), bits=16)


def test_cuts_inside_residual_blocks_where_the_live_tensors_share_a_size():
    q = quantized(onnx_models.resnet(blocks=(1, 1), widths=(8, 16), classes=10, in_shape=(3, 32, 32)))
    names = [layer.name for layer in q.layers]
    # the projection conv5 runs first in its block (the frontend's short branches first)
    assert names[6:10] == ["conv5", "conv3", "conv4", "add1"]
    assert cuts(q) == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12], names
    assert live(q, 3) == ["maxpool0", "relu1"]      # the skip and the branch
    assert live(q, 8) == ["conv5", "relu3"]         # the projection and the branch, 4x4 each
    # in the stride-2 block before the branch's first conv, the block input is 8x8
    assert [tuple(q.shapes[t])[1:] for t in live(q, 7)] == [(8, 8), (4, 4)]


def _network_values(q, seed=0):
    x = golden.quantize(np.random.default_rng(seed).standard_normal(tuple(q.shapes[q.input])),
                        q.formats[q.input])
    return golden.run_fixed(q, x)


@pytest.mark.parametrize("model", ["residual", "resnet"])
def test_partitions_at_every_cut_chain_to_the_network(model):
    """Each partition's sub-graph (slices of its packed input, a pack of its live outputs)
    computes from the network's values at its start exactly the network's values at its end;
    with weights reloading, the chunks joined after their shared channels do too (the tensors
    live after the partition besides its last layer's, written alike by every run)."""
    q = quantized(onnx_models.residual() if model == "residual" else
                  onnx_models.resnet(blocks=(1, 1), widths=(8, 16), classes=10, in_shape=(3, 32, 32)))
    values = _network_values(q)
    positions = [0, *cuts(q), len(q.layers)]
    reloads = 0
    for a, b in zip(positions, positions[1:]):
        part = Partition(a, b)
        sub = subgraph(q, part)
        assert len(live(q, a)) == 1 or sub.layers[0].op == "slice"
        assert len(live(q, b)) == 1 or sub.layers[-1].attrs.get("pack")
        x = boundary_value(sub, sub.input, values)
        want = boundary_value(sub, sub.output, values)
        assert np.array_equal(golden.run_fixed(sub, x)[sub.output], want), (a, b)
        factors = reload_factors(q, q.layers[b - 1])
        if factors:
            reloads += 1
            chunks = [golden.run_fixed(s, x)[s.output]
                      for s in (subgraph(q, replace(part, reload=factors[0]), k)
                                for k in range(factors[0]))]
            shared = shared_channels(q, part)
            assert shared == sum(q.shapes[t].c for t in live(q, b)[:-1])
            joined = np.concatenate([chunks[0], *(c[shared:] for c in chunks[1:])])
            assert np.array_equal(joined, want), (a, b)
    assert reloads >= 3


def test_cuts_of_a_chain_are_every_boundary(vgg16bit):
    assert cuts(vgg16bit) == list(range(1, len(vgg16bit.layers)))


@pytest.mark.parametrize("reload", [2, 4])
def test_reloaded_chunks_concatenate_to_the_whole_layer(vgg16bit, reload):
    """Each chunk's sub-graph computes its F/wr output channels of the layer exactly."""
    q = vgg16bit
    conv = next(k for k, layer in enumerate(q.layers) if layer.op == "conv" and k > 0)
    part = Partition(conv, conv + 1, reload)
    x = golden.quantize(np.random.default_rng(0).standard_normal(tuple(q.shapes[q.input])),
                        q.formats[q.input])
    values = golden.run_fixed(q, x)
    chunks = []
    for chunk in range(reload):
        sub = subgraph(q, part, chunk)
        assert sub.shapes[sub.output].c == q.shapes[sub.output].c // reload
        chunks.append(golden.run_fixed(sub, values[sub.input])[sub.output])
    assert np.array_equal(np.concatenate(chunks), values[q.layers[conv].output])


def test_subgraph_describes_its_own_stream(vgg16bit):
    q = vgg16bit
    first, last = subgraph(q, Partition(0, 3)), subgraph(q, Partition(3, len(q.layers)))
    assert first.input == q.input and first.onnx_input_shape == q.onnx_input_shape
    assert first.onnx_output_shape == (1, *q.shapes[first.output])
    assert last.output == q.output and last.onnx_output_shape == q.onnx_output_shape
    assert last.input == first.output and set(last.formats) == set(last.shapes)


def test_reload_factors():
    q = quantized(onnx_models.depthwise_separable())
    depthwise = next(layer for layer in q.layers if layer.attrs.get("groups", 1) > 1)
    assert reload_factors(q, depthwise) == []
    pool = next(layer for layer in quantized(onnx_models.pools()).layers if "pool" in layer.op)
    assert reload_factors(q, pool) == []
    with pytest.raises(ValueError, match="does not split its"):
        subgraph(q, Partition(0, 1, 7))


# -- the batch model -------------------------------------------------------------------------------


def test_partition_time_by_hand():
    cost = schedule.PartitionCost(cycles_per_frame=100, latency=30, in_bits=800, out_bits=1200,
                                  weight_bits=5000, reload=2)
    dram = schedule.Path("DRAM", 10.0, False)           # needs 20 bits/cycle: slow-down 2
    t = schedule.partition_time(cost, 4, dram)
    assert t.slowdown == 2.0
    assert t.compute == (100 * 4 + 30) * 2
    assert t.stall == 100 * 4 * 2
    assert t.loading == 2 * 5000 / 10
    link = schedule.Path("host link", 10.0, True)       # duplex: the larger side, 12 bits/cycle
    assert schedule.partition_time(cost, 4, link).slowdown == pytest.approx(1.2)


def test_schedule_counts_reconfigurations_and_the_single_partition_streams():
    zc706 = get_board("zc706")
    cost = schedule.PartitionCost(1000, 200, 10**6, 10**6)
    two = schedule.schedule([cost, cost], zc706, 200.0, 8)
    assert two.reconfiguration_s == 2 * zc706.reconfiguration_s
    assert two.path.name == "DRAM"
    hz = 200e6
    assert two.batch_s == pytest.approx(sum(t.cycles for t in two.partitions) / hz
                                        + two.reconfiguration_s)
    assert two.fps == pytest.approx(8 / two.batch_s)
    assert sum(two.shares(200.0).values()) == pytest.approx(1.0)
    one = schedule.schedule([cost], zc706, 200.0, 8)    # today's streams: no feature-map traffic
    assert one.reconfiguration_s == 0 and one.partitions[0].slowdown == 1.0
    assert one.batch_s == pytest.approx((1000 * 8 + 200) / hz)


def test_arty_passes_feature_maps_through_the_host():
    arty = get_board("arty")
    route = schedule.path(arty, 100.0, 2)
    assert route.name == "host link" and route.duplex
    assert route.bits_per_cycle == pytest.approx(3e6 / 10 * 8 / 100e6)
    with pytest.raises(ValueError, match="no memory to reload weights from"):
        schedule.schedule([schedule.PartitionCost(10, 1, 8, 8, 64, 2)], get_board("icebreaker"),
                          12.0, 1)
    with pytest.raises(ValueError, match="no figure for loading"):
        schedule.schedule([schedule.PartitionCost(10, 1, 8, 8)] * 2, get_board("orangecrab-25f"),
                          48.0, 1)


def test_dram_bytes():
    costs = [schedule.PartitionCost(1, 1, 800, 1600), schedule.PartitionCost(1, 1, 1600, 80, 640, 4)]
    assert schedule.dram_bytes(costs, 10) == (2 * 10 * 1600 + 640 * 4) // 8


# -- the search --------------------------------------------------------------------------------


def test_search_is_exact_against_brute_force_over_the_cuts(vgg16bit):
    """The dynamic programme picks the cover of least batch time among all covers built from
    the same candidate partitions."""
    arty = get_board("arty")
    found = explore_partitions(vgg16bit, arty, batch=16)
    ranges = _Ranges(vgg16bit, arty, found.cap, True, lambda sub: None, {})
    positions, n = ranges.positions, len(vgg16bit.layers)
    best = None
    for k in range(len(positions) - 1):
        for inner in itertools.combinations(positions[1:-1], k):
            bounds = [0, *inner, n]
            spans = list(zip(bounds, bounds[1:]))
            if all(s in ranges.costs for s in spans):
                t = schedule.schedule([ranges.costs[s][1] for s in spans], arty, 100.0, 16).batch_s
                best = t if best is None else min(best, t)
    chosen = [(p.part.start, p.part.stop) for p in found.partitions]
    covered = [layer for p in found.partitions for layer in p.graph.layers]
    assert [layer.name for layer in covered] == [layer.name for layer in vgg16bit.layers]
    threshold = schedule.schedule([ranges.costs[s][1] for s in chosen], arty, 100.0, 16).batch_s
    assert threshold == pytest.approx(best)
    assert found.perf.batch_s <= best * 1.0001        # the annealed plans are no slower


def test_every_partition_fits_the_budget(vgg16bit):
    arty = get_board("arty")
    found = explore_partitions(vgg16bit, arty)
    limit = dict(zip(("lut", "ff", "dsp", "bram"), budget(arty, found.cap)))
    assert len(found.partitions) >= 2 and found.perf.batch == 256
    for p in found.partitions:
        assert all(p.found.resources[k] <= limit[k] for k in limit), p.found.resources
        assert p.cost.in_bits == p.graph.shapes[p.graph.input].size * stored_bits(16)


def test_design_is_one_accelerator_when_it_fits(vgg16bit):
    assert isinstance(design(vgg16bit, get_board("zc706")), Exploration)
    assert isinstance(design(vgg16bit, get_board("arty")), PartitionedExploration)


def test_latency_objective_runs_batch_one(vgg16bit):
    found = explore_partitions(vgg16bit, get_board("arty"), objective="latency")
    assert found.perf.batch == 1 and found.perf.fps == pytest.approx(1 / found.perf.batch_s)


def test_batch_limited_by_dram():
    """A board whose DRAM holds only a few frames of the largest boundary gets that batch."""
    q = quantized(onnx_models.vgg(*onnx_models.VGG_CIFAR), bits=16)
    zynq = get_board("pynq-z1")
    small = dataclasses.replace(zynq, name="tiny-dram", bram=60,
                                memory=dataclasses.replace(zynq.memory, bytes=600_000))
    found = explore_partitions(q, small)
    need = schedule.dram_bytes([p.cost for p in found.partitions], found.perf.batch)
    assert found.perf.batch < 256 and need <= 600_000
    assert schedule.dram_bytes([p.cost for p in found.partitions], 2 * found.perf.batch) > 600_000


def test_a_layer_too_large_even_reloaded_is_named():
    """A conv whose line buffer (two rows of 64 × 512 8-bit pixels) exceeds the iCE40's block
    RAM however its weights are split."""
    b = onnx_models._Builder(17, seed=3)
    b.conv(b.conv("x", 64, 8, pads=[1, 1, 1, 1]), 8, 8, out="y")
    q = quantized(b.model("wide", [1, 64, 4, 512], [1, 8, 4, 512]))
    with pytest.raises(UserError, match=r"layer 'conv0' \(conv\) does not fit icebreaker even "
                                        r"alone, fully folded with its weights reloaded in 8 "
                                        r"chunks: [0-9,]+ BRAM of 24 at 80% of the board"):
        design(q, get_board("icebreaker"))


def test_target_fps_with_partitions_is_refused(vgg16bit):
    with pytest.raises(UserError, match="--target-fps plans one design only"):
        design(vgg16bit, get_board("arty"), target_fps=10.0)
