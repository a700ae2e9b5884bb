"""Tests of the conv engine (dnnhw/layers/conv_engine.py) against golden.run_fixed.

Every case builds a one-layer conv graph with float weights whose magnitudes differ by up to 2**6
between output channels (so the per-channel weight formats and requantization shifts differ),
quantizes it on random frames, and feeds the engine the windows of quantized input frames, made
from `golden.window_view` in window-stream order. Expected outputs are `golden.run_fixed`'s.

- amaranth.sim (default): a table of cases over groups (depthwise, 2), kernels, foldings, bits,
  activations, negative and uniform shifts, and groups side by side (coarse_group), with random
  stalls on both sides.
- cocotb + Verilator (default): one layer at three foldings, from one multiplier to full folding
  (cycles per frame ∝ 1 / (coarse_in · coarse_out · fine), and one window beat per cycle at full
  folding), a grouped 16-bit LeakyReLU layer and a depthwise layer with four groups a beat
  (coarse_group), and one with requantization multipliers; each bit-exact with random stalls,
  and with no
  stalls the measured cycles per frame and latency equal the engine's formulas exactly.
- cocotb + Verilator (slow): the generated matrix of shapes × kernels × foldings.
"""

import gc
import itertools
from dataclasses import dataclass, replace

import numpy as np
import pytest

from dnnhw import golden, partition, quant
from dnnhw.ir import Format, Graph, Layer, Shape, WeightQuant
from dnnhw.layers.conv_engine import ConvEngine, leaky_floor
from dnnhw.sim import bench_phases, port_shapes, to_beats, verilate
from dnnhw.sim.amaranth_sim import run_stream_sim
from support.engines import ACTS, VARIANTS, check_bench, divisors, input_frames, simulate


# -- one-layer graphs and their streams ---------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A conv layer, its quantization and the engine's folding (coarse_in, coarse_out, fine)."""
    c_in: int
    c_out: int
    groups: int
    kernel: tuple
    fold: tuple
    hw: tuple = (4, 5)
    stride: tuple = (1, 1)
    pads: tuple = (0, 0, 0, 0)
    bits: int = 8
    act: str | None = None
    negative_shift: bool = False   # force the smallest requantization shift to -2
    spread: int = 3                 # weight magnitudes per output channel: 2**-spread..2**spread
    scaled: bool = False            # scales not powers of two, an output zero point's range
    seed: int = 0
    frames: int = 3

    @property
    def id(self):
        ci, co, fine = self.fold
        return (f"c{self.c_in}_{self.c_out}_g{self.groups}_k{self.kernel[0]}x{self.kernel[1]}"
                f"_f{ci}_{co}_{fine}_b{self.bits}_{self.act}{'_neg' if self.negative_shift else ''}"
                f"{'_scaled' if self.scaled else ''}")


def out_hw(hw, kernel, stride, pads):
    (h, w), (kh, kw), (sh, sw), (top, left, bottom, right) = hw, kernel, stride, pads
    return (h + top + bottom - kh) // sh + 1, (w + left + right - kw) // sw + 1


def conv_graph(case):
    """The quantized one-layer graph of `case`."""
    rng = np.random.default_rng(case.seed)
    kh, kw = case.kernel
    weight = rng.standard_normal((case.c_out, case.c_in // case.groups, kh, kw))
    weight *= 2.0 ** rng.integers(-case.spread, case.spread + 1, size=(case.c_out, 1, 1, 1))
    attrs = dict(kernel=case.kernel, stride=case.stride, pads=case.pads, groups=case.groups,
                 **ACTS[case.act])
    shapes = {"x": Shape(case.c_in, *case.hw),
              "y": Shape(case.c_out, *out_hw(case.hw, case.kernel, case.stride, case.pads))}
    graph = Graph("conv", "x", "y", shapes,
                  [Layer("conv", "conv", ["x"], "y", attrs, weight, rng.standard_normal(case.c_out))],
                  (1, case.c_in, *case.hw), (1, *shapes["y"]))
    calibration = rng.standard_normal((8, case.c_in, *case.hw))
    q = quant.quantize(graph, calibration, bits=case.bits, per_channel=case.spread > 0)
    if case.negative_shift:
        shift = golden.requant_shift(q, q.layers[0])
        graph.format_hints["y"] = Format(case.bits, q.formats["y"].frac + int(shift.min()) + 2)
        q = quant.quantize(graph, calibration, bits=case.bits)
        assert golden.requant_shift(q, q.layers[0]).min() == -2
    if case.scaled:
        q = _scaled(graph, q, case, calibration, rng)
    return q


def _scaled(graph, q, case, calibration, rng):
    """`q` requantized as a quantized model's import would be: the input, output and weight
    scales with mantissas (`Format.mult`) in [1, 2), the output one bit wider, its range that of
    a zero point's ([-z, 2**bits - 1 - z], z = 2**(bits - 2))."""
    fx, fy = q.formats["x"], q.formats["y"]
    zero = 1 << (case.bits - 2)
    graph.format_hints["x"] = Format(fx.bits, fx.frac + 1, 1.37)
    graph.format_hints["y"] = Format(case.bits + 1, fy.frac, 1.71, -zero, (1 << case.bits) - 1 - zero)
    mult = rng.uniform(1, 2, case.c_out)
    graph.layers[0].attrs["weight_format"] = (case.bits, q.layers[0].wq.frac, mult)
    scaled = quant.quantize(graph, calibration, bits=case.bits)
    assert golden.requant(scaled, scaled.layers[0])[0] is not None
    return scaled


def window_beats(x, attrs, lanes):
    """The window stream of (C, H, W) integers `x`: per output pixel, per channel group, the
    element [k][lane] = window position k (row-major), channel group·lanes + lane."""
    windows = golden.window_view(x, attrs["kernel"], attrs["stride"], attrs["pads"], 0)
    c, h_out, w_out, kh, kw = windows.shape
    return (windows.reshape(c // lanes, lanes, h_out, w_out, kh * kw)
            .transpose(2, 3, 0, 4, 1).reshape(h_out * w_out * c // lanes, kh * kw * lanes))


def streams(graph, frames, fold, beats=window_beats):
    """Input beats and expected output beats of `frames` back to back."""
    layer = graph.layers[0]
    inputs = np.concatenate([beats(x, layer.attrs, fold[0]) for x in frames])
    outputs = np.concatenate([to_beats(golden.run_fixed(graph, x)[graph.output], fold[1])
                              for x in frames])
    return inputs, outputs


def pixel_beats(x, attrs, lanes):
    """A feature map's plain pixel stream (the window stream of a 1×1 kernel)."""
    return to_beats(x, lanes)


# -- amaranth.sim --------------------------------------------------------------------------------

QUICK = [
    Case(4, 6, 1, (3, 3), (2, 3, 3), pads=(1, 1, 1, 1), act="relu"),
    Case(4, 4, 2, (3, 2), (1, 2, 2), hw=(5, 4), stride=(1, 2), pads=(1, 0, 2, 1), act="leaky"),
    Case(4, 4, 4, (5, 5), (1, 1, 5), hw=(4, 5), pads=(2, 2, 2, 2), act="clamp", bits=16),
    Case(6, 6, 6, (3, 3), (1, 1, 1), hw=(3, 3), pads=(1, 1, 1, 1), act="leaky", bits=4),
    Case(3, 4, 1, (1, 1), (3, 2, 1), hw=(3, 3), act=None, bits=4, negative_shift=True),
    Case(2, 2, 1, (4, 10), (1, 1, 8), hw=(5, 11), act=None, bits=16),
    Case(2, 4, 2, (4, 10), (1, 2, 40), hw=(4, 10), stride=(1, 3), pads=(1, 2, 0, 3), act="relu"),
    Case(4, 8, 1, (3, 3), (4, 8, 9), hw=(3, 4), act="clamp", negative_shift=True),
    Case(4, 4, 1, (3, 3), (2, 2, 9), hw=(3, 3), act="leaky", spread=0),
    Case(4, 4, 1, (3, 3), (2, 1, 3), hw=(3, 3), act="leaky_steep", bits=4),
    Case(2, 4, 1, (3, 3), (1, 2, 9), hw=(3, 3), act="leaky_negative"),
    Case(4, 6, 1, (3, 3), (2, 3, 3), pads=(1, 1, 1, 1), act=None, scaled=True),
    Case(4, 4, 2, (3, 3), (1, 1, 9), hw=(3, 3), act="relu", bits=4, scaled=True),
]


@pytest.mark.parametrize("case", QUICK, ids=lambda c: c.id)
def test_amaranth_sim(case):
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    inputs, want = streams(graph, input_frames(graph, 2, case.seed), case.fold)
    np.testing.assert_array_equal(simulate(engine, inputs, len(want), seed=case.seed), want)


PAIRED = [
    Case(4, 6, 1, (3, 3), (2, 2, 3), pads=(1, 1, 1, 1), act="relu"),
    Case(4, 4, 2, (3, 3), (1, 2, 9), hw=(3, 4), act="leaky", bits=4, negative_shift=True),
    Case(3, 8, 1, (1, 1), (3, 8, 1), hw=(3, 3), act=None, spread=6),
    Case(2, 4, 1, (3, 3), (2, 4, 1), hw=(3, 3), act="clamp", bits=6, seed=3),
    Case(2, 4, 1, (3, 3), (1, 2, 3), hw=(3, 3), act=None, scaled=True),
]


@pytest.mark.parametrize("case", PAIRED, ids=lambda c: c.id)
def test_amaranth_sim_paired(case):
    """Pairs of output lanes sharing each multiplier (packed weights): the same results, over
    input frames spanning the whole format (both products' extremes) and weight magnitudes from
    2**-6 to 2**6 between channels."""
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold, paired=True)
    inputs, want = streams(graph, input_frames(graph, 3, case.seed), case.fold)
    np.testing.assert_array_equal(simulate(engine, inputs, len(want), seed=case.seed), want)


GROUPED = [    # (case, coarse_group): the case's fold is the lanes, whole groups side by side
    (Case(8, 8, 8, (3, 3), (4, 4, 3), pads=(1, 1, 1, 1), act="relu"), 4),
    (Case(6, 6, 6, (3, 3), (6, 6, 9), hw=(3, 4), act="leaky", bits=4, negative_shift=True), 6),
    (Case(8, 8, 4, (3, 3), (4, 4, 9), hw=(3, 3), act="clamp", bits=16), 2),
    (Case(4, 8, 2, (1, 1), (4, 8, 1), hw=(3, 3), act=None, spread=6), 2),
]


@pytest.mark.parametrize("paired", [False, True], ids=["plain", "paired"])
@pytest.mark.parametrize("case, coarse_group", GROUPED, ids=lambda c: getattr(c, "id", f"cg{c}"))
def test_amaranth_sim_coarse_group(case, coarse_group, paired):
    """Groups side by side in the lanes (`coarse_group`): each output lane multiplies only its
    own group's input lanes; a depthwise layer's channels all in one beat. The same results
    under stalls, with paired multipliers where a group has an even number of output lanes."""
    if paired and case.c_out // case.groups % 2:
        pytest.skip("a depthwise group has one output lane: nothing to pair")
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold, coarse_group=coarse_group,
                                   paired=paired)
    ci, co, fine = case.fold
    assert engine.multipliers == ci * co * fine // coarse_group
    assert engine.steps == case.groups // coarse_group * case.kernel[0] * case.kernel[1] // fine
    inputs, want = streams(graph, input_frames(graph, 2, case.seed), case.fold,
                           beats=window_beats if case.kernel != (1, 1) else pixel_beats)
    np.testing.assert_array_equal(simulate(engine, inputs, len(want), seed=case.seed), want)


def test_amaranth_sim_1x1_from_pixel_beats():
    """A 1×1 convolution needs no window buffer: plain pixel beats are 1-position windows."""
    case = Case(6, 4, 2, (1, 1), (3, 2, 1), hw=(3, 4), act="relu")
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    inputs, want = streams(graph, input_frames(graph, 2), case.fold, beats=pixel_beats)
    np.testing.assert_array_equal(simulate(engine, inputs, len(want)), want)


WRITABLE = [
    Case(4, 8, 1, (3, 3), (2, 2, 3), pads=(1, 1, 1, 1), act="relu"),
    Case(4, 8, 1, (3, 3), (1, 2, 9), hw=(3, 3), act="leaky", bits=16, negative_shift=True),
    Case(3, 8, 1, (1, 1), (3, 4, 1), hw=(3, 3), bits=4, spread=6),
    Case(4, 8, 1, (3, 3), (2, 2, 9), hw=(3, 3), act="relu", scaled=True),
]


def chunks(graph, reload):
    """The one-layer graphs of `graph`'s `reload` filter chunks (`partition.subgraph`)."""
    return [partition.subgraph(graph, partition.Partition(0, 1, reload), k) for k in range(reload)]


@pytest.mark.parametrize("paired", [False, True], ids=["plain", "paired"])
@pytest.mark.parametrize("case", WRITABLE, ids=lambda c: c.id)
def test_amaranth_sim_writable(case, paired):
    """A writable engine built for chunk 0 of a layer's filters computes chunk 1 once chunk 1's
    weights are loaded (the load and the input frames arrive at once, under stalls): its
    memories hold what the load wrote, not the weights it was built from, and its
    requantization handles every chunk's shifts."""
    graph = conv_graph(case)
    first, second = chunks(graph, 2)
    engine = ConvEngine.from_layer(first, first.layers[0], *case.fold, paired=paired,
                                   writable=True)
    mult, shift = golden.requant(second, second.layers[0])
    words = engine.load_words(second.layers[0].wq, shift, mult)
    assert len(words) == engine.load.beats and max(words) < 1 << engine.load_bits
    inputs, want = streams(second, input_frames(second, 2, case.seed), case.fold)
    result = run_stream_sim(engine, {"w": np.array(words)[:, None], "i": inputs}, {"o": len(want)},
                            stall_in=0.3, stall_out=0.3, seed=case.seed, timeout=100_000)
    np.testing.assert_array_equal(result.outputs["o"], want)
    assert result.out_cycles["o"][0] > result.in_cycles["w"][-1] + engine.depth


def test_shifts_differ_per_channel():
    """The cases really exercise per-channel shifts, uniform shifts and negative shifts."""
    shifts = [golden.requant_shift(g, g.layers[0]) for g in map(conv_graph, QUICK)]
    assert sum(len(set(s)) > 1 for s in shifts) >= 6
    assert any(len(set(s)) == 1 for s in shifts)
    assert sum(s.min() < 0 for s in shifts) >= 2


# -- arithmetic identities the engine relies on -------------------------------------------------

@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.1, 0.5, 1.0, 1.5, -0.2])
def test_leaky_floor(alpha, bits):
    """Below leaky_floor, saturate(leaky_relu(y)) is constant, so the clip changes nothing."""
    alpha_q = golden.leaky_alpha(alpha)
    floor = leaky_floor(alpha_q, bits)
    assert floor < 0
    y = np.arange(floor - 5000, floor + 1)
    leaky = golden.saturate(golden.round_shift(y * alpha_q, golden.LEAKY_FRAC), bits)
    assert np.all(leaky == leaky[-1])


def test_left_shift_then_common_shift():
    """round_shift(acc, s) == round_shift(acc << (smax - s), smax) for s ≤ smax."""
    acc = np.arange(-3000, 3000)
    for smax in range(-3, 9):
        for s in range(-5, smax + 1):
            np.testing.assert_array_equal(golden.round_shift(acc, s),
                                          golden.round_shift(acc << (smax - s), smax))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_errors():
    wq = WeightQuant(8, np.zeros(4, int), np.zeros((4, 3, 3, 3), int), np.zeros(4, int), 20)
    with pytest.raises(ValueError, match=r"^coarse_in=2 must divide 3 input channels per group$"):
        ConvEngine(3, 4, 1, (3, 3), 8, 8, wq, 0, coarse_in=2)
    with pytest.raises(ValueError, match=r"^coarse_out=3 must divide 4 output channels per group$"):
        ConvEngine(3, 4, 1, (3, 3), 8, 8, wq, 0, coarse_out=3)
    with pytest.raises(ValueError, match=r"^fine=2 must divide 9 kernel positions$"):
        ConvEngine(3, 4, 1, (3, 3), 8, 8, wq, 0, fine=2)
    with pytest.raises(ValueError, match=r"^groups=2 must divide 3 input and 4 output channels$"):
        ConvEngine(3, 4, 2, (3, 3), 8, 8, wq, 0)
    with pytest.raises(ValueError, match=r"^weights of shape \(4, 3, 3, 3\); expected \(4, 3, 1, 1\)$"):
        ConvEngine(3, 4, 1, (1, 1), 8, 8, wq, 0)
    with pytest.raises(ValueError, match=r"^unknown activation 'gelu'"):
        ConvEngine(3, 4, 1, (3, 3), 8, 8, wq, 0, "gelu")
    graph = conv_graph(Case(4, 6, 1, (3, 3), (1, 1, 1)))
    with pytest.raises(ValueError, match=r"^Conv 'conv': coarse_out=4 must divide 6 output "):
        ConvEngine.from_layer(graph, graph.layers[0], coarse_out=4)
    with pytest.raises(ValueError, match=r"^paired multipliers need an even coarse_out per group "
                                         r"\(got 3\)"):
        ConvEngine(3, 6, 1, (3, 3), 8, 8, WeightQuant(8, np.zeros(6, int), np.zeros((6, 3, 3, 3), int),
                                                      np.zeros(6, int), 20), 0,
                   coarse_out=3, paired=True)
    with pytest.raises(ValueError, match=r"and no logic multipliers \(got 2\)"):
        ConvEngine(3, 4, 1, (3, 3), 8, 8, wq, 0, coarse_out=2, logic_multipliers=2, paired=True)
    depthwise = WeightQuant(8, np.zeros(4, int), np.zeros((4, 1, 3, 3), int), np.zeros(4, int), 20)
    with pytest.raises(ValueError, match=r"^coarse_group=3 must divide the 4 groups$"):
        ConvEngine(4, 4, 4, (3, 3), 8, 8, depthwise, 0, coarse_in=3, coarse_out=3, coarse_group=3)
    with pytest.raises(ValueError, match=r"^coarse_group=2 needs whole groups in the lanes: "
                                         r"coarse_in=2, coarse_out=2$"):
        ConvEngine(4, 4, 4, (3, 3), 8, 8, depthwise, 0, coarse_in=2, coarse_group=2)
    gc.collect()        # the objects whose construction failed, under this test's filter


# -- cocotb + Verilator --------------------------------------------------------------------------

def bench(case, engine, graph, name, beats=window_beats):
    """`check_bench` of the engine on `case.frames` frames."""
    inputs, want = streams(graph, input_frames(graph, case.frames, case.seed), case.fold, beats)
    pixels = graph.shapes[graph.output].h * graph.shapes[graph.output].w
    return check_bench(engine, inputs, want, case.frames, engine.cycles_per_frame(pixels),
                       engine.latency, name, case.seed)


SCALING = [(1, 1, 1), (2, 2, 3), (2, 4, 9)]         # the last is full folding


def test_verilator_scaling():
    """One layer at three foldings: cycles per frame = pixels · steps, steps · coarse_in ·
    coarse_out · fine = MACs per pixel; at full folding one window beat per cycle."""
    cycles = {}
    for fold in SCALING:
        case = Case(2, 4, 1, (3, 3), fold, hw=(4, 5), pads=(1, 1, 1, 1), act="relu")
        graph = conv_graph(case)
        engine = ConvEngine.from_layer(graph, graph.layers[0], *fold)
        free = bench(case, engine, graph, f"conv_engine_scaling_{'_'.join(map(str, fold))}")
        cycles[fold] = engine.cycles_per_frame(20)
        assert engine.steps * engine.multipliers == 4 * 2 * 9
    assert {fold: c * np.prod(fold) for fold, c in cycles.items()} == {fold: 20 * 72 for fold in SCALING}
    # full folding: every input beat transfers on consecutive cycles, one window per cycle
    assert list(np.diff(free.in_cycles["i"])) == [1] * (len(free.in_cycles["i"]) - 1)
    assert cycles[SCALING[-1]] == 20


def test_verilator_grouped_leaky_16bit():
    case = Case(4, 8, 2, (3, 2), (2, 2, 3), hw=(5, 4), stride=(2, 1), pads=(1, 0, 1, 1),
                act="leaky", bits=16)
    graph = conv_graph(case)
    assert len(set(golden.requant_shift(graph, graph.layers[0]))) > 1
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    bench(case, engine, graph, "conv_engine_grouped_leaky")


def test_verilator_scaled():
    """Requantization multipliers (scales not powers of two) and an output zero point's range in
    Verilog: bit-exact under stalls, one more pipeline stage, the latency the engine states."""
    case = Case(4, 6, 1, (3, 3), (2, 3, 3), hw=(4, 4), pads=(1, 1, 1, 1), scaled=True)
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    unscaled = conv_graph(replace(case, scaled=False))
    plain = ConvEngine.from_layer(unscaled, unscaled.layers[0], *case.fold)
    assert engine.depth == plain.depth + 1
    bench(case, engine, graph, "conv_engine_scaled")


def test_verilator_coarse_group():
    """A depthwise layer with 4 of its 8 channels a beat (coarse_group 4) in Verilog: bit-exact
    under stalls; 2 groups of groups × 3 kernel steps a pixel, 4 times fewer than one channel a
    beat, at the engine's latency."""
    case = Case(8, 8, 8, (3, 3), (4, 4, 3), hw=(4, 4), pads=(1, 1, 1, 1), act="relu")
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold, coarse_group=4)
    one = ConvEngine.from_layer(graph, graph.layers[0], 1, 1, 3)
    assert (engine.steps, one.steps, engine.multipliers) == (6, 24, 12)
    bench(case, engine, graph, "conv_engine_coarse_group")


def test_verilator_paired():
    """Paired multipliers in Verilog: bit-exact under stalls, rate and latency unchanged."""
    case = Case(4, 8, 1, (3, 3), (2, 4, 3), hw=(4, 4), pads=(1, 1, 1, 1), act="relu", spread=5)
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold, paired=True)
    plain = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    assert (engine.latency, engine.cycles_per_frame(16)) == (plain.latency, plain.cycles_per_frame(16))
    bench(case, engine, graph, "conv_engine_paired")


def test_verilator_reloaded():
    """Weights reloading in Verilog: one writable engine computes a layer's two filter chunks in
    turn, each loaded before its frames, bit-exact with golden under stalls; a load takes one
    cycle a beat, and each chunk's frames the engine's own rate and latency."""
    case = Case(4, 8, 1, (3, 3), (2, 2, 3), hw=(4, 4), pads=(1, 1, 1, 1), act="relu", frames=3)
    graph = conv_graph(case)
    parts = chunks(graph, 2)
    engine = ConvEngine.from_layer(parts[0], parts[0].layers[0], *case.fold, writable=True)
    phases, wants = [], []
    for part in parts:
        layer = part.layers[0]
        words = np.array(engine.load_words(layer.wq, golden.requant_shift(part, layer)))[:, None]
        inputs, want = streams(part, input_frames(part, case.frames, case.seed), case.fold)
        phases += [({"w": words}, {}), ({"i": inputs}, {"o": len(want)})]
        wants.append(want)
    runner, build_dir = verilate(engine, "conv_engine_reloaded")
    pixels = 16
    for stall in (0.0, 0.3):
        results = bench_phases(runner, build_dir, "conv_engine_reloaded", port_shapes(engine),
                               phases, stall_in=stall, stall_out=stall, seed=case.seed)
        for load, run, want in zip(results[0::2], results[1::2], wants):
            np.testing.assert_array_equal(run.outputs["o"], want)
            assert run.extra == {"o": 0}
            if stall:
                continue
            assert load.in_cycles["w"] == list(range(engine.load.beats))
            ends = np.array(run.out_cycles["o"])[len(want) // case.frames - 1::len(want) // case.frames]
            assert list(np.diff(ends)) == [engine.cycles_per_frame(pixels)] * (case.frames - 1)
            assert run.out_cycles["o"][0] - run.in_cycles["i"][0] == engine.latency


# the generated matrix: channels × kernels × foldings, bits and activations cycled through

SHAPES = [(4, 6, 1), (4, 4, 2), (4, 4, 4), (3, 8, 1)]
GEOMETRIES = [  # kernel, stride, pads, input (H, W)
    ((1, 1), (1, 1), (0, 0, 0, 0), (3, 4)),
    ((3, 3), (1, 2), (1, 0, 2, 1), (5, 6)),
    ((5, 5), (1, 1), (2, 2, 2, 2), (4, 4)),
    ((4, 10), (2, 1), (1, 2, 0, 3), (5, 8)),
]
def foldings(c_in, c_out, groups, kernel):
    """Smallest, middle and largest folding."""
    options = [divisors(c_in // groups), divisors(c_out // groups), divisors(kernel[0] * kernel[1])]
    return sorted({tuple(d[0] for d in options), tuple(d[len(d) // 2] for d in options),
                   tuple(d[-1] for d in options)})


MATRIX = [Case(*shape, kernel, fold, hw=hw, stride=stride, pads=pads, bits=bits, act=act,
               negative_shift=negative, frames=2)
          for n, (shape, (kernel, stride, pads, hw)) in enumerate(itertools.product(SHAPES, GEOMETRIES))
          for bits, act, negative in [VARIANTS[n % len(VARIANTS)]]
          for fold in foldings(*shape, kernel)]


@pytest.mark.slow
@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.id)
def test_verilator_matrix(case):
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    bench(case, engine, graph, f"conv_engine_{case.id}")


@pytest.mark.slow
def test_verilator_1x1_from_pixel_beats():
    case = Case(3, 4, 1, (1, 1), (3, 2, 1), hw=(3, 3), bits=4, act="clamp", negative_shift=True)
    graph = conv_graph(case)
    engine = ConvEngine.from_layer(graph, graph.layers[0], *case.fold)
    bench(case, engine, graph, "conv_engine_1x1_pixels", beats=pixel_beats)
