"""Brevitas' QCDQ export (QuantizeLinear, Clip, DequantizeLinear) and its QONNX export (`Quant`
nodes, FINN's format), with power-of-two scales and with Brevitas' default float scales: the
formats they state, of as many bits as the
quantizers allow (4-bit weights, a 4-bit unsigned ReLU), are the golden model's, the same from
either export; the golden model agrees with onnxruntime's execution of the QCDQ graph to one
LSB (rounding half up where onnxruntime rounds half to even: ties differ), and the accelerator
with golden bit for bit in Verilator."""

import warnings

import numpy as np
import onnx
import pytest

from dnnhw import frontend, golden, quant
from dnnhw.errors import UserError
from dnnhw.ir import Format
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
qnn = pytest.importorskip("brevitas.nn")
from brevitas.export import export_onnx_qcdq, export_qonnx  # noqa: E402
from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8WeightPerChannelFixedPointMSE,  # noqa: E402
                            Int8WeightPerTensorFixedPoint, Int32Bias, Uint8ActPerTensorFixedPoint)


class QuantNet(torch.nn.Module):
    """8-bit input, conv (8-bit per-channel weights, 32-bit bias), 4-bit unsigned ReLU, conv
    (4-bit weights), 8-bit output; every scale a power of two."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 8, 3, padding=1, weight_quant=Int8WeightPerChannelFixedPointMSE,
                                    bias=True, bias_quant=Int32Bias, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=4,
                                  return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 4, 3, weight_quant=Int8WeightPerTensorFixedPoint,
                                     weight_bit_width=4, bias=False,
                                     output_quant=Int8ActPerTensorFixedPoint)

    def forward(self, x):
        return self.conv2(self.relu(self.conv(self.inp(x))))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    net = QuantNet()
    net.train()
    with torch.no_grad():                       # the activation quantizers' statistics
        for _ in range(3):
            net(torch.randn(4, 3, 8, 8))
    return net.eval()


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    path = tmp_path_factory.mktemp("brevitas") / "qcdq.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(net, torch.randn(1, 3, 8, 8), export_path=str(path), dynamo=False)
    graph = frontend.load(path)
    frames = np.random.default_rng(0).standard_normal((16, 3, 8, 8)).astype(np.float32)
    return path, graph, frames, quant.quantize(graph, frames, bits=8)


def test_formats_as_stated(exported):
    _, graph, _, q = exported
    first, second = graph.layers
    assert first.attrs["weight_format"][0] == 8 and second.attrs["weight_format"][0] == 4
    assert first.act == "relu"
    assert q.formats[first.output].bits == 5                # 4-bit unsigned: 0..15
    assert [q.formats[t] for t in (q.input, q.output)] == [Format(8, 5), Format(8, 7)]
    for layer, bits in zip(q.layers, (8, 4)):
        assert layer.wq.bits == bits
        assert layer.wq.frac.tolist() == list(layer.attrs["weight_format"][1])


def test_golden_within_one_lsb_of_onnxruntime(exported):
    path, graph, frames, q = exported
    frac = q.formats[q.output].frac
    theirs = np.rint(frontend.onnxruntime_outputs(path, graph, frames) * 2 ** frac)
    ours = np.rint(golden.run(q, frames) * 2 ** frac)
    differ = np.abs(theirs - ours)
    assert differ.max() <= 1
    assert 0.5 < np.mean(differ == 0) < 1       # the second conv rounds by one bit: ties abound


def test_bit_exact_in_verilator(exported):
    _, _, frames, q = exported
    run_accelerator(q, {}, frames[:2], "brevitas_qcdq", stall=0.3)


def test_qonnx_export_is_the_same_network(net, exported, tmp_path):
    _, _, frames, q = exported
    path = tmp_path / "qonnx.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, torch.randn(1, 3, 8, 8), export_path=str(path))
    graph = frontend.load(path)
    assert [layer.op for layer in graph.layers] == ["conv", "conv"]
    theirs = quant.quantize(graph, frames, bits=8)
    assert [theirs.formats[t] for t in (theirs.input, theirs.output)] == [
        q.formats[t] for t in (q.input, q.output)]
    for ours, other in zip(q.layers, theirs.layers):
        np.testing.assert_array_equal(other.wq.weight, ours.wq.weight)
    np.testing.assert_array_equal(golden.run(theirs, frames), golden.run(q, frames))


@pytest.mark.parametrize("zero, rounding, message", [
    (0.5, "ROUND", r"a fractional zero point, on an activation: unsupported"),
    (0.0, "FLOOR", r"bit width \[8.0\] and rounding_mode 'FLOOR': dnnhw reads one integer width, ROUND"),
])
def test_quant_refused(tmp_path, zero, rounding, message):
    from onnx import TensorProto, helper, numpy_helper
    consts = [numpy_helper.from_array(np.array(v, np.float32), n)
              for n, v in (("scale", 0.125), ("zero", zero), ("width", 8.0))]
    nodes = [helper.make_node("Quant", ["x", "scale", "zero", "width"], ["q"], name="quant",
                              domain="qonnx.custom_op.general", signed=1, narrow=0,
                              rounding_mode=rounding),
             helper.make_node("Relu", ["q"], ["y"])]
    shape = [1, 2, 3, 3]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              initializer=consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("qonnx.custom_op.general", 1)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with pytest.raises(UserError, match=rf": Quant 'quant'.*{message}"):
        frontend.load(path)


class FloatNet(torch.nn.Module):
    """Brevitas' default quantizers: float scales (8-bit input, per-tensor weights, an unsigned
    ReLU, 8-bit output), a float bias."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(3, 8, 3, padding=1, bias=True, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.conv2 = qnn.QuantConv2d(8, 4, 3, bias=False)
        self.out = qnn.QuantIdentity()

    def forward(self, x):
        return self.out(self.conv2(self.relu(self.conv(self.inp(x)))))


@pytest.fixture(scope="module")
def float_scaled(tmp_path_factory):
    """(QCDQ path, its graph, frames, quantized graph, the QONNX export's quantized graph) of
    `FloatNet`."""
    tmp_path = tmp_path_factory.mktemp("brevitas_float")
    torch.manual_seed(0)
    net = FloatNet().train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, 8, 8))
    net.eval()
    paths = tmp_path / "qcdq.onnx", tmp_path / "qonnx.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_onnx_qcdq(net, torch.randn(1, 3, 8, 8), export_path=str(paths[0]), dynamo=False)
        export_qonnx(net, torch.randn(1, 3, 8, 8), export_path=str(paths[1]))
    frames = np.random.default_rng(0).standard_normal((16, 3, 8, 8)).astype(np.float32)
    graph = frontend.load(paths[0])
    return (paths[0], graph, frames, quant.quantize(graph, frames),
            quant.quantize(frontend.load(paths[1]), frames))


def test_float_scales(float_scaled):
    """Both exports of float scales give the same formats (mantissas, the unsigned ReLU as
    [0, 255] in 9 bits); golden within one LSB of onnxruntime."""
    path, graph, frames, q, other = float_scaled
    assert [q.formats[t] for t in q.formats] == [other.formats[t] for t in other.formats]
    relu = q.formats[q.layers[0].output]
    assert relu.mult != 1 and (relu.bits, relu.min, relu.max) == (9, 0, 255)
    scale = q.formats[q.output].scale
    differ = np.abs(np.rint(frontend.onnxruntime_outputs(path, graph, frames) / scale)
                    - np.rint(golden.run(q, frames) / scale))
    assert differ.max() <= 1


@pytest.mark.slow
def test_float_scales_bit_exact_in_verilator(float_scaled):
    _, _, frames, q, _ = float_scaled
    run_accelerator(q, {}, frames[:2], "brevitas_float", stall=0.3)
