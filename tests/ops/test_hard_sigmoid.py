# amaranth: UnusedElaboratable=no
"""hard_sigmoid, the op added by following docs/ops.md: ONNX import, golden against onnxruntime,
the block bit-exact against golden under random stalls (amaranth.sim and Verilator), its
measured rate and latency equal to the op's geometry, and a build through the accelerator."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dnnhw import frontend, golden, model, ops, quant, resources
from dnnhw.accel import build_block
from dnnhw.folding import Folding
from dnnhw.ir import Format
from dnnhw.sim import run_stream_bench, to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim


def hard_sigmoid_model(path, alpha=0.25, beta=0.4):
    """x (1, 4, 5, 5) → HardSigmoid → y."""
    node = helper.make_node("HardSigmoid", ["x"], ["y"], alpha=alpha, beta=beta)
    graph = helper.make_graph([node], "hs", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           [1, 4, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 5, 5])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(proto, path)
    return path


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    path = hard_sigmoid_model(tmp_path_factory.mktemp("hs") / "hs.onnx")
    graph = frontend.load(path)
    frames = np.random.default_rng(0).normal(0, 3, (16, 4, 5, 5))
    return path, graph, frames, quant.quantize(graph, frames, bits=8)


def test_imports_and_matches_onnxruntime(graphs):
    path, graph, frames, q = graphs
    assert [layer.op for layer in graph.layers] == ["hard_sigmoid"]
    assert graph.layers[0].attrs == pytest.approx({"alpha": 0.25, "beta": 0.4})
    reference = frontend.onnxruntime_outputs(path, graph, frames)
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False), reference, atol=1e-6)
    error = golden.float_error(reference, golden.run(q, frames))
    # the input's rounding through the slope, the output's rounding, 1.0 saturating to 127/128
    bound = 0.25 * 2.0 ** -(q.formats["x"].frac + 1) + 1.5 * 2.0 ** -7
    assert q.formats["y"].frac == 7 and error["max_abs"] <= bound + 1e-9


def test_golden_rule():
    """Exact on values that need no rounding; clipped to [0, 1); saturates at the top."""
    fmt_in, fmt_out = Format(8, 4), Format(8, 7)
    x = np.array([-128, -32, -8, 0, 8, 32, 127])
    got = golden.hard_sigmoid(x, fmt_in, fmt_out, 0.25, 0.5)
    want = np.clip(x / 16 * 0.25 + 0.5, 0, 1) * 128
    np.testing.assert_array_equal(got, np.minimum(np.round(want), 127))


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_block_bit_exact_under_stalls(graphs, lanes):
    _, _, _, q = graphs
    layer, folding = q.layers[0], Folding(lanes, lanes)
    dut = build_block(q, layer, folding)
    fmt = q.formats["x"]
    xs = np.random.default_rng(lanes).integers(fmt.min, fmt.max + 1, (3, 4, 5, 5))
    beats = np.concatenate([to_beats(x, lanes) for x in xs])
    want = np.concatenate([to_beats(golden.run_fixed(q, x)["y"], lanes) for x in xs])
    stalled = run_stream_sim(dut, {"i": beats}, {"o": len(want)}, stall_in=0.3, stall_out=0.4,
                             seed=lanes)
    np.testing.assert_array_equal(stalled.outputs["o"], want)
    free = run_stream_sim(build_block(q, layer, folding), {"i": beats}, {"o": len(want)})
    out = np.array(free.out_cycles["o"])
    assert out[0] - free.in_cycles["i"][0] == model.latency(q, layer, folding) == dut.latency
    assert (np.diff(out) == 1).all()
    assert model.cycles_per_frame(q, layer, folding) == dut.cycles_per_frame == 100 // lanes


def test_verilator(graphs):
    _, _, _, q = graphs
    layer, folding = q.layers[0], Folding(2, 2)
    fmt = q.formats["x"]
    xs = np.random.default_rng(7).integers(fmt.min, fmt.max + 1, (2, 4, 5, 5))
    beats = np.concatenate([to_beats(x, 2) for x in xs])
    want = np.concatenate([to_beats(golden.run_fixed(q, x)["y"], 2) for x in xs])
    result = run_stream_bench(build_block(q, layer, folding), {"i": beats}, {"o": len(want)},
                              name="hard_sigmoid", stall_in=0.3, stall_out=0.3, seed=1)
    np.testing.assert_array_equal(result.outputs["o"], want)


def test_model_and_resources(graphs):
    _, _, _, q = graphs
    layer = q.layers[0]
    assert model.foldings(q, layer) == [Folding(1, 1), Folding(2, 2), Folding(4, 4)]
    with pytest.raises(ValueError, match="needs coarse_in = coarse_out dividing"):
        ops.check(q, layer, Folding(3, 3))
    one, four = (resources.layer_resources(q, layer, Folding(n, n), "xc7") for n in (1, 4))
    assert 0 < one.lut < four.lut and one.dsp == four.dsp == 0
