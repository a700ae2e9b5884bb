# amaranth: UnusedElaboratable=no
"""mul: the product of two maps (a Swish's gate, HardSwish) or of a map and a per-channel vector
(squeeze-and-excitation). The block bit-exact against golden under random stalls, its rate,
latency and pixel timing as modelled; the ONNX patterns imported through it match onnxruntime
(both exporters), and a squeeze-and-excitation network is bit-exact in Verilator, its map
waiting a frame in the FIFO before the product."""

import numpy as np
import pytest

from dnnhw import frontend, model, ops, quant
from dnnhw.errors import UserError
from dnnhw.folding import Folding
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.sim import to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim
from support import torch_models
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
nn = torch.nn


def _graph(shape, broadcast):
    c, h, w = shape
    vector = Shape(c, 1, 1) if broadcast else Shape(c, h, w)
    layer = Layer(name="mul", op="mul", inputs=["a", "b"], output="y",
                  attrs={"broadcast": True} if broadcast else {})
    return Graph(name="mul", input="a", output="y",
                 shapes={"a": Shape(c, h, w), "b": vector, "y": Shape(c, h, w)}, layers=[layer],
                 onnx_input_shape=(1, c, h, w), onnx_output_shape=(1, c, h, w),
                 formats={"a": Format(8, 4), "b": Format(6, 5), "y": Format(8, 5)})


def _timing(cycles, beats):
    t = np.array(cycles)
    return t[::beats], t[beats - 1::beats]


@pytest.mark.parametrize("broadcast", [False, True], ids=["maps", "vector"])
@pytest.mark.parametrize("shape, lanes", [((4, 3, 5), 2), ((3, 2, 2), 1), ((2, 1, 1), 2)])
def test_block_bit_exact_under_stalls(shape, lanes, broadcast):
    graph = _graph(shape, broadcast)
    layer, folding = graph.layers[0], Folding(lanes, lanes)
    rng = np.random.default_rng(lanes + broadcast)
    a = rng.integers(-128, 128, (3, *shape))
    b = rng.integers(-32, 32, (3, *graph.shapes["b"]))
    want = np.concatenate([to_beats(ops.get("mul").run(graph, layer, [x, y]), lanes)
                           for x, y in zip(a, b)])
    beats = {"i0": np.concatenate([to_beats(x, lanes) for x in a]),
             "i1": np.concatenate([to_beats(y, lanes) for y in b])}
    block = ops.get("mul").block(graph, layer, folding)
    stalled = run_stream_sim(block, beats, {"o": len(want)}, stall_in=0.3, stall_out=0.4, seed=5)
    np.testing.assert_array_equal(stalled.outputs["o"], want)
    assert stalled.extra == {"o": 0}
    # one frame unstalled, the vector first: latency, a beat a cycle, the modelled timing
    one = {port: value[:len(value) // 3] for port, value in beats.items()}
    free = run_stream_sim(ops.get("mul").block(graph, layer, folding), one, {"o": len(want) // 3})
    out, start = np.array(free.out_cycles["o"]), free.in_cycles["i0"][0]
    assert out[0] - start == model.latency(graph, layer, folding) == block.latency
    assert (np.diff(out) == 1).all()
    per_pixel = shape[0] // lanes
    zero = min(free.in_cycles["i0"][0], free.in_cycles["i1"][0])
    ins = [_timing(np.array(free.in_cycles[p]) - zero, per_pixel) for p in ("i0", "i1")]
    first, last = ops.get("mul").timing(graph, layer, folding, ins)
    np.testing.assert_array_equal(first, out[::per_pixel] - zero)
    np.testing.assert_array_equal(last, out[per_pixel - 1::per_pixel] - zero)


class SqueezeExcite(nn.Module):
    """Conv + HardSwish, squeeze-and-excitation (mean, 1×1, ReLU, 1×1, Hardsigmoid, scale), a
    Swish (x · sigmoid(x)), a 1×1 conv."""

    input_shape = (1, 3, 6, 5)

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish())
        self.squeeze = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 1),
                                     nn.Hardsigmoid())
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.conv(x)
        x = x * self.squeeze(x.mean((2, 3), keepdim=True))
        return self.out(x * torch.sigmoid(x))


def _export(tmp_path, dynamo):
    return torch_models.export_fresh(SqueezeExcite, tmp_path / "se.onnx", dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_imports_and_matches_onnxruntime(tmp_path, dynamo):
    path = _export(tmp_path, dynamo)
    graph = frontend.load(path)
    muls = [layer.attrs.get("broadcast", False) for layer in graph.layers if layer.op == "mul"]
    assert sorted(muls) == [False, False, True]
    frames = np.random.default_rng(0).standard_normal((4, *SqueezeExcite.input_shape[1:]))
    torch_models.assert_matches_onnxruntime(path, graph, frames, rel_rms=0.001)


def test_other_broadcasts_refused(tmp_path):
    class RowScale(nn.Module):
        input_shape = (1, 2, 3, 4)

        def forward(self, x):
            return x * x.mean(3, keepdim=True)

    path = torch_models.export_fresh(RowScale, tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"^(ReduceMean '.*': reduction over axes \[3\]|Mul '.*': "
                                        r"Mul of shapes)"):
        frontend.load(path)


def test_squeeze_excite_bit_exact_in_verilator(tmp_path):
    graph = frontend.load(_export(tmp_path, False))
    frames = np.random.default_rng(1).standard_normal((8, *SqueezeExcite.input_shape[1:]))
    q = quant.quantize(graph, frames, bits=8)
    plan = {layer.name: Folding(2, 2) for layer in q.layers if layer.op == "mul"}
    run_accelerator(q, plan, frames[:3], "squeeze_excite", stall=0.3)
