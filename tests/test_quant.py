"""Format choice: calibration, per-channel weights, per-layer bits, QDQ hints, input files."""

import numpy as np
import pytest

from dnnhw import golden, quant
from dnnhw.errors import UserError
from dnnhw.ir import Format, Graph, Layer, Shape


def conv_graph(weight, bias=None, act=None):
    c_out, c_in = weight.shape[:2]
    layer = Layer("conv", "conv", ["x"], "y",
                  attrs={"kernel": weight.shape[2:], "stride": (1, 1), "pads": (0, 0, 0, 0),
                         "groups": 1, "act": act},
                  weight=weight, bias=np.zeros(c_out) if bias is None else bias)
    return Graph("g", "x", "y", {"x": Shape(c_in, 3, 3), "y": Shape(c_out, 1, 1)}, [layer],
                 (1, c_in, 3, 3), (1, c_out, 1, 1))


@pytest.mark.parametrize("peak, bits, frac", [
    (1.0, 8, 6), (0.99, 8, 7), (127 / 128, 8, 7), (3.0, 8, 5), (100.0, 8, 0), (300.0, 8, -2),
    (1e-3, 8, 16), (0.0, 8, 7), (1.0, 16, 14),
])
def test_frac_for(peak, bits, frac):
    assert quant.frac_for(peak, bits) == frac
    if peak:
        assert round(peak * 2 ** frac) <= (1 << (bits - 1)) - 1          # fits after rounding
        assert round(peak * 2 ** (frac + 1)) > (1 << (bits - 1)) - 1     # and no finer frac does


def test_activation_formats_from_calibration():
    weight = np.ones((2, 1, 3, 3)) * 0.25
    graph = conv_graph(weight)
    frames = np.full((3, 1, 3, 3), 0.5)
    frames[1] = -1.5
    q = quant.quantize(graph, frames, bits=8)
    assert q.formats["x"] == Format(8, quant.frac_for(1.5, 8))
    assert q.formats["y"] == Format(8, quant.frac_for(9 * 0.25 * 1.5, 8))


def test_per_channel_weight_formats_reduce_error():
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((4, 3, 3, 3)) * np.array([4.0, 1.0, 0.1, 0.01]).reshape(4, 1, 1, 1)
    graph = conv_graph(weight)
    frames = rng.standard_normal((4, 3, 3, 3))
    per_channel = quant.quantize(graph, frames, per_channel=True).layers[0].wq
    per_layer = quant.quantize(graph, frames, per_channel=False).layers[0].wq
    assert per_channel.per_channel and not per_layer.per_channel
    def error(wq):
        return np.abs(wq.weight * 2.0 ** -wq.frac.reshape(-1, 1, 1, 1) - weight).max(axis=(1, 2, 3))
    assert np.all(error(per_channel) <= error(per_layer))
    assert error(per_channel)[3] < error(per_layer)[3] / 100


def test_bias_at_accumulator_scale_and_acc_bits():
    weight = np.full((1, 2, 1, 1), 0.5)
    graph = conv_graph(weight, bias=np.array([1.25]))
    q = quant.quantize(graph, np.ones((1, 2, 3, 3)), bits=8)
    wq = q.layers[0].wq
    assert wq.bias[0] == 1.25 * 2 ** (q.formats["x"].frac + wq.frac[0])
    worst = 2 * 128 * 128 + abs(int(wq.bias[0]))
    assert (1 << (wq.acc_bits - 1)) > worst >= (1 << (wq.acc_bits - 3))


def test_layer_bits():
    graph = conv_graph(np.ones((2, 1, 3, 3)))
    q = quant.quantize(graph, np.ones((1, 1, 3, 3)), bits=8, layer_bits={"conv": 12})
    assert q.formats["y"].bits == 12 and q.layers[0].wq.bits == 12 and q.formats["x"].bits == 8


def test_format_hints_win():
    graph = conv_graph(np.ones((2, 1, 3, 3)))
    graph.format_hints["y"] = Format(8, 1)
    assert quant.quantize(graph, np.ones((1, 1, 3, 3))).formats["y"] == Format(8, 1)


def test_quantize_leaves_float_graph_alone():
    graph = conv_graph(np.ones((2, 1, 3, 3)))
    quant.quantize(graph, np.ones((1, 1, 3, 3)))
    assert not graph.quantized and graph.layers[0].wq is None


@pytest.mark.parametrize("shape", [(5, 1, 3, 3), (1, 1, 3, 3), (1, 3, 3)])
def test_load_frames_shapes(tmp_path, shape):
    path = tmp_path / "frames.npy"
    np.save(path, np.zeros(shape, np.float32))
    frames = quant.load_frames(conv_graph(np.ones((2, 1, 3, 3))), path)
    assert frames.shape[1:] == (1, 3, 3)


@pytest.mark.parametrize("content", [np.zeros((5, 2, 3, 3)), np.array(["a", "b"])])
def test_load_frames_rejects(tmp_path, content):
    path = tmp_path / "frames.npy"
    np.save(path, content)
    with pytest.raises(UserError, match="frames.npy"):
        quant.load_frames(conv_graph(np.ones((2, 1, 3, 3))), path)


def test_synthetic_frames_deterministic():
    graph = conv_graph(np.ones((2, 1, 3, 3)))
    a, b = quant.synthetic_frames(graph), quant.synthetic_frames(graph)
    assert a.shape == (32, 1, 3, 3) and np.array_equal(a, b)


def test_fixed_path_uses_formats():
    """End to end on one conv: dequantized golden output within a few LSBs of float."""
    rng = np.random.default_rng(2)
    graph = conv_graph(rng.standard_normal((3, 2, 3, 3)) * 0.3, bias=rng.standard_normal(3) * 0.1,
                       act="relu")
    frames = rng.standard_normal((8, 2, 3, 3))
    q = quant.quantize(graph, frames, bits=12)
    lsb = 2.0 ** -q.formats["y"].frac
    assert np.abs(golden.run(q, frames) - golden.run(graph, frames, fixed=False)).max() < 4 * lsb
