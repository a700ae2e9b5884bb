"""The design-space exploration: optimal on spaces small enough to enumerate, within budget,
deterministic, and clear when nothing fits."""

import dataclasses

import numpy as np
import pytest

from dnnhw import model, quant
from dnnhw.boards import get_board
from dnnhw.dse import KINDS, Space, explore, explore_together
from dnnhw.errors import UserError
from dnnhw.ir import Graph, Layer, Shape


def small_net(seed=0):
    """conv 2→4 3×3 → relu → conv 4→4 3×3 stride 2 → fc 4·3·3 → 10, quantized to 8 bits."""
    rng = np.random.default_rng(seed)
    shapes = {"x": Shape(2, 6, 6), "a": Shape(4, 6, 6), "b": Shape(4, 6, 6), "c": Shape(4, 3, 3),
              "y": Shape(10, 1, 1)}
    conv = {"kernel": (3, 3), "pads": (1, 1, 1, 1), "groups": 1, "act": None}
    layers = [
        Layer("conv1", "conv", ["x"], "a", {**conv, "stride": (1, 1)},
              weight=rng.standard_normal((4, 2, 3, 3)), bias=rng.standard_normal(4)),
        Layer("relu", "relu", ["a"], "b"),
        Layer("conv2", "conv", ["b"], "c", {**conv, "stride": (2, 2)},
              weight=rng.standard_normal((4, 4, 3, 3)), bias=rng.standard_normal(4)),
        Layer("fc", "fc", ["c"], "y", {"act": None},
              weight=rng.standard_normal((10, 36)), bias=rng.standard_normal(10)),
    ]
    graph = Graph("small", "x", "y", shapes, layers, (1, 2, 6, 6), (1, 10))
    return quant.quantize(graph, rng.standard_normal((4, 2, 6, 6)))


def board_with(dsp, lut=4000, ff=8000, bram=20):
    return dataclasses.replace(get_board("arty"), name="tiny", dsp=dsp, lut=lut, ff=ff, bram=bram)


def conv_fc_net(seed=0):
    """conv 2→4 3×3 → fc 4·4·4 → 6: small enough to enumerate with logic multipliers."""
    rng = np.random.default_rng(seed)
    shapes = {"x": Shape(2, 4, 4), "a": Shape(4, 4, 4), "y": Shape(6, 1, 1)}
    layers = [
        Layer("conv", "conv", ["x"], "a", {"kernel": (3, 3), "pads": (1, 1, 1, 1), "groups": 1,
                                           "act": "relu", "stride": (1, 1)},
              weight=rng.standard_normal((4, 2, 3, 3)), bias=rng.standard_normal(4)),
        Layer("fc", "fc", ["a"], "y", {"act": None},
              weight=rng.standard_normal((6, 64)), bias=rng.standard_normal(6)),
    ]
    graph = Graph("conv_fc", "x", "y", shapes, layers, (1, 2, 4, 4), (1, 6))
    return quant.quantize(graph, rng.standard_normal((4, 2, 4, 4)))


def brute_force(graph, board, cap, logic):
    """The fewest cycles per frame of any plan within the budget, by enumeration: every plan's
    cycles and layer resources at once (NumPy), then the full resources, lane converters and
    FIFOs included, of the plans whose layers alone fit, fastest first."""
    space = Space(graph, board.family, logic=logic)
    limit = np.array([int(cap * board.resources[k]) for k in KINDS])
    names = [layer.name for layer in graph.layers]
    cands = [space.candidates[n] for n in names]
    index = np.indices([len(c.foldings) for c in cands]).reshape(len(cands), -1)
    cycles = np.max([c.cycles[i] for c, i in zip(cands, index)], axis=0)
    layers = np.sum([c.resources[i] for c, i in zip(cands, index)], axis=0)
    fits = np.flatnonzero(np.all(layers <= limit, axis=1))
    for k in fits[np.argsort(cycles[fits], kind="stable")]:
        plan = {n: c.foldings[i] for n, c, i in zip(names, cands, index[:, k])}
        if np.all(space.resources(plan) <= limit):
            return cycles[k]
    return None


@pytest.mark.parametrize("net, logic", [(small_net, False), (conv_fc_net, True)])
@pytest.mark.parametrize("dsp", [6, 16, 40])
def test_throughput_finds_the_enumerated_optimum(net, logic, dsp):
    graph, board = net(), board_with(dsp)
    found = explore(graph, board, cap=0.8, logic_multipliers=logic)
    optimum = brute_force(graph, board, 0.8, logic)
    assert found.perf.cycles_per_frame <= 1.05 * optimum
    assert all(found.resources[k] <= found.limit[k] for k in KINDS)
    space = Space(graph, board.family, logic=logic)
    assert dict(zip(KINDS, space.resources(found.plan).tolist())) == found.resources


@pytest.mark.parametrize("dsp", [7, 22, 37])          # budgets the candidates' counts miss
def test_dsps_left_over_take_back_logic_multipliers(dsp):
    """The plan's logic multipliers are as few as its DSP budget allows: one fewer in any
    layer would not fit (the candidates offer only some counts; the search picks the exact one)."""
    graph, board = conv_fc_net(), board_with(dsp)
    found = explore(graph, board, cap=0.8)
    space = Space(graph, board.family)
    limit = np.array([found.limit[k] for k in KINDS])
    assert (any(f.impl.logic_multipliers for f in found.plan.values())
            or found.resources["dsp"] < limit[2])
    for name, folding in found.plan.items():
        if folding.impl.logic_multipliers:
            fewer = {**found.plan, name: folding.with_impl(
                logic_multipliers=folding.impl.logic_multipliers - 1)}
            assert not np.all(space.resources(fewer) <= limit)


def test_plan_is_valid_and_predicted_by_the_model():
    graph = small_net()
    found = explore(graph, board_with(16))
    for layer in graph.layers:
        model.check(graph, layer, found.plan[layer.name])
    assert found.perf == model.network(graph, found.plan)


def test_deterministic_for_a_seed():
    graph, board = small_net(), board_with(16)
    a, b = explore(graph, board, seed=7), explore(graph, board, seed=7)
    assert a.plan == b.plan and a.pareto == b.pareto


def test_binding_resource_is_named():
    found = explore(small_net(), board_with(6), logic_multipliers=False)
    assert found.binding == "dsp"


def test_latency_objective_is_no_worse_than_throughputs_latency():
    graph, board = small_net(), board_with(16)
    fast = explore(graph, board, objective="throughput")
    low = explore(graph, board, objective="latency")
    assert low.perf.latency <= fast.perf.latency


def test_target_frame_rate_with_least_resources():
    graph, board = small_net(), board_with(40)
    fastest = explore(graph, board)
    clock = board.clock_mhz * 1e6
    target = clock / (4 * fastest.perf.cycles_per_frame)
    found = explore(graph, board, target_fps=target)
    assert clock / found.perf.cycles_per_frame >= target
    assert found.resources["dsp"] < fastest.resources["dsp"]
    with pytest.raises(UserError, match="fastest design that fits"):
        explore(graph, board, target_fps=2 * clock / fastest.perf.cycles_per_frame)


def test_pareto_front_is_monotonic():
    found = explore(small_net(), board_with(40))
    front = sorted((p for p in found.pareto if p["pareto"]), key=lambda p: p["cycles_per_frame"])
    assert len(front) >= 3
    for faster, slower in zip(front, front[1:]):
        assert any(faster[k] > slower[k] for k in KINDS)   # speed costs something


def test_does_not_fit_says_by_how_much():
    with pytest.raises(UserError) as error:
        explore(small_net(), board_with(dsp=90, bram=0, lut=50, ff=50))
    message = str(error.value)
    assert "does not fit tiny even fully folded" in message and "LUT" in message


def test_bad_objective_and_cap():
    with pytest.raises(UserError, match="unknown objective"):
        explore(small_net(), board_with(16), objective="power")
    with pytest.raises(UserError, match="cap"):
        explore(small_net(), board_with(16), cap=1.5)


def test_explore_together_shares_one_budget():
    """Two graphs planned at once: each within its cycles per frame, both within one budget;
    None when the rates are faster than each graph's best alone."""
    graphs, board = [small_net(), conv_fc_net()], board_with(16)
    clock = board.clock_mhz * 1e6
    fastest = [explore(g, board).perf.cycles_per_frame for g in graphs]
    rates = [0.5 * clock / c for c in fastest]
    found = explore_together(graphs, board, rates)
    assert found is not None
    for f, rate in zip(found, rates):
        assert f.perf.cycles_per_frame <= clock / rate
        assert f.limit == found[0].limit and f.binding.startswith("target")
    total = {k: sum(f.resources[k] for f in found) for k in KINDS}
    assert all(total[k] <= found[0].limit[k] for k in KINDS)
    assert explore_together(graphs, board, [clock / (c - 1) for c in fastest]) is None
