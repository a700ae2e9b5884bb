"""Brevitas' QCDQ export (QuantizeLinear, Clip, DequantizeLinear) with power-of-two scales: the
formats it states, of as many bits as its Clips allow (4-bit weights, a 4-bit unsigned ReLU),
are the golden model's; the golden model agrees with onnxruntime's execution of the QCDQ graph
to one LSB (rounding half up where onnxruntime rounds half to even: ties differ), and the
accelerator with golden bit for bit in Verilator."""

import warnings

import numpy as np
import pytest

from dnnhw import frontend, golden, quant
from dnnhw.ir import Format
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
qnn = pytest.importorskip("brevitas.nn")
from brevitas.export import export_onnx_qcdq  # noqa: E402
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
def exported(tmp_path_factory):
    torch.manual_seed(0)
    net = QuantNet()
    net.train()
    with torch.no_grad():                       # the activation quantizers' statistics
        for _ in range(3):
            net(torch.randn(4, 3, 8, 8))
    net.eval()
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
