# amaranth: UnusedElaboratable=no
"""upsample: nearest Resize/Upsample and ConvTranspose's zero insertion. The block bit-exact
against golden under random stalls, its rate and latency the op's geometry, its pixel timing the
model's; the ONNX ops imported through it match onnxruntime (both exporters), and a network of
them is bit-exact in Verilator."""

import math

import numpy as np
import pytest

from dnnhw import frontend, golden, model, ops, quant
from dnnhw.errors import UserError
from dnnhw.folding import Folding
from dnnhw.ir import Format, Graph, Layer, Shape
from dnnhw.sim import to_beats
from dnnhw.sim.amaranth_sim import run_stream_sim
from support import torch_models
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
nn = torch.nn


def _graph(shape, scale, mode, bits=6):
    c, h, w = shape
    out = Shape(c, h * scale[0], w * scale[1])
    layer = Layer(name="up", op="upsample", inputs=["x"], output="y",
                  attrs={"scale": scale, "mode": mode})
    return Graph(name="up", input="x", output="y", shapes={"x": Shape(*shape), "y": out},
                 layers=[layer], onnx_input_shape=(1, *shape), onnx_output_shape=(1, *out),
                 formats={"x": Format(bits, 3), "y": Format(bits, 3)})


@pytest.mark.parametrize("mode", ["nearest", "zeros"])
@pytest.mark.parametrize("shape, scale, lanes", [((4, 3, 5), (2, 3), 2), ((3, 4, 2), (3, 1), 1),
                                                 ((2, 2, 3), (1, 2), 2)])
def test_block_bit_exact_under_stalls(shape, scale, lanes, mode):
    graph = _graph(shape, scale, mode)
    layer, folding = graph.layers[0], Folding(lanes, lanes)
    block = ops.get("upsample").block(graph, layer, folding)
    xs = np.random.default_rng(lanes).integers(-32, 32, (3, *shape))
    beats = np.concatenate([to_beats(x, lanes) for x in xs])
    want = np.concatenate([to_beats(golden.run_fixed(graph, x)["y"], lanes) for x in xs])
    stalled = run_stream_sim(block, {"i": beats}, {"o": len(want)}, stall_in=0.3, stall_out=0.4,
                             seed=len(shape) + lanes)
    np.testing.assert_array_equal(stalled.outputs["o"], want)
    assert stalled.extra == {"o": 0}
    free = run_stream_sim(ops.get("upsample").block(graph, layer, folding), {"i": beats[:len(beats) // 3]},
                          {"o": len(want) // 3})
    out = np.array(free.out_cycles["o"])
    assert out[0] - free.in_cycles["i"][0] == model.latency(graph, layer, folding) == block.latency
    assert (np.diff(out) == 1).all() and len(out) == block.cycles_per_frame
    first, last = ops.get("upsample").timing(graph, layer, folding,
                                             [_stream_timing(free.in_cycles["i"], shape, lanes)])
    per_pixel = shape[0] // lanes
    np.testing.assert_array_equal(first, out[::per_pixel] - free.in_cycles["i"][0])
    np.testing.assert_array_equal(last, out[per_pixel - 1::per_pixel] - free.in_cycles["i"][0])


def _stream_timing(cycles, shape, lanes):
    """(first, last) beat cycle of every pixel, from the cycles of the input's transfers."""
    beats = np.array(cycles) - cycles[0]
    per_pixel = shape[0] // lanes
    return beats[::per_pixel], beats[per_pixel - 1::per_pixel]


class Decoder(nn.Module):
    """ConvTranspose (stride 2), nearest Upsample, grouped ConvTranspose with output_padding, a
    stride-1 ConvTranspose, a 1-D pair (Conv1d's ConvTranspose1d and Upsample)."""

    input_shape = (1, 3, 5, 4)

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, groups=2),
            nn.ConvTranspose2d(2, 3, 3, stride=1, padding=1))

    def forward(self, x):
        return self.layers(x)


class Decoder1d(nn.Module):
    input_shape = (1, 2, 7)

    def __init__(self):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose1d(2, 3, 3, stride=2), nn.Upsample(scale_factor=3))

    def forward(self, x):
        return self.up(x)


def _export(cls, tmp_path, dynamo):
    return torch_models.export_fresh(cls, tmp_path / "m.onnx", dynamo)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("cls", [Decoder, Decoder1d])
def test_imports_and_matches_onnxruntime(tmp_path, cls, dynamo):
    path = _export(cls, tmp_path, dynamo)
    graph = frontend.load(path)
    assert "upsample" in [layer.op for layer in graph.layers]
    frames = np.random.default_rng(0).standard_normal((3, *cls.input_shape[1:]))
    torch_models.assert_matches_onnxruntime(path, graph, frames)


def test_bilinear_refused(tmp_path):
    class Bilinear(nn.Module):
        input_shape = (1, 2, 3, 3)

        def forward(self, x):
            return nn.functional.interpolate(x, scale_factor=2, mode="bilinear")

    with pytest.raises(UserError, match=r"^Resize '.*': mode 'linear' is unsupported \(only nearest\)$"):
        frontend.load(_export(Bilinear, tmp_path, False))


def test_decoder_bit_exact_in_verilator(tmp_path):
    graph = frontend.load(_export(Decoder, tmp_path, False))
    frames = np.random.default_rng(1).standard_normal((8, *Decoder.input_shape[1:]))
    q = quant.quantize(graph, frames, bits=8)
    lanes = {layer.name: math.gcd(q.in_shape(layer).c, 2) for layer in q.layers
             if layer.op == "upsample"}
    plan = {name: Folding(n, n) for name, n in lanes.items()}
    assert 2 in lanes.values()
    run_accelerator(q, plan, frames[:2], "decoder", stall=0.3)
