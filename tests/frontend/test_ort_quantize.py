"""onnxruntime's `quantize_static` (QDQ, its defaults: int8 activations with zero points, int8
symmetric weights, float scales; per tensor and per channel; uint8 activations): the scales that are not powers
of two and the zero points' ranges become the tensors' formats (`Format.mult`, `low`/`high`),
requantization multiplies; the golden model agrees with onnxruntime's own execution of the QDQ
graph to one LSB (golden rounds half up where onnxruntime rounds half to even, and its float32
scales differ from golden's 16-bit multipliers in the last bits), and the accelerator with
golden bit for bit in Verilator."""

import numpy as np
import onnx
import pytest

from dnnhw import frontend, golden, quant
from dnnhw.errors import UserError
from support.accel import run_accelerator

torch = pytest.importorskip("torch")
ortq = pytest.importorskip("onnxruntime.quantization")


class Residual(torch.nn.Module):
    """conv-ReLU-maxpool, conv-ReLU, the residual add, average pool, fc: every op the import
    maps with its own scale (the add requantizes both inputs)."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.c2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 3 * 3, 10)

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.nn.functional.avg_pool2d(torch.relu(self.c2(x)) + x, 2)
        return self.fc(x.flatten(1))


class GlobalPooled(torch.nn.Module):
    """conv-ReLU, conv-ReLU, global average pool (onnxruntime gives it its own output scale), fc."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(2, 8, 3, stride=2)
        self.c2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1))


class Fire(torch.nn.Module):
    """SqueezeNet's Fire module after a stem: squeeze, 1×1 and 3×3 expands concatenated
    (onnxruntime gives the branches their own scales: the concat requantizes one), a 1×1 conv."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(2, 8, 3, stride=2)
        self.squeeze = torch.nn.Conv2d(8, 4, 1)
        self.e1, self.e3 = torch.nn.Conv2d(4, 8, 1), torch.nn.Conv2d(4, 8, 3, padding=1)
        self.head = torch.nn.Conv2d(16, 10, 1)

    def forward(self, x):
        x = torch.relu(self.squeeze(torch.relu(self.stem(x))))
        return self.head(torch.cat([torch.relu(self.e1(x)), torch.relu(self.e3(x))], 1))


class Frames(ortq.CalibrationDataReader):
    def __init__(self, name, frames):
        self.frames = iter([{name: f[None]} for f in frames])

    def get_next(self):
        return next(self.frames, None)


def quantized(module, path, frames, **options):
    """`module` exported to ONNX and quantized by onnxruntime on `frames`, at `path`."""
    torch.manual_seed(0)
    float_path = path.with_suffix(".float.onnx")
    torch.onnx.export(module.eval(), torch.from_numpy(frames[:1]), float_path, dynamo=False,
                      opset_version=17)
    name = onnx.load(float_path).graph.input[0].name
    options.setdefault("quant_format", ortq.QuantFormat.QDQ)
    ortq.quantize_static(float_path, path, Frames(name, frames), **options)
    return path


#: (network, quantize_static's options): its defaults (int8 activations), per-channel weight
#: scales, unsigned activations (uint8, zero point 0 after a ReLU); a global average pool; a
#: concat.
OPTIONS = {"per_tensor": (Residual, {}), "per_channel": (Residual, {"per_channel": True}),
           "uint8": (Residual, {"activation_type": ortq.QuantType.QUInt8}),
           "global_pool": (GlobalPooled, {}), "concat": (Fire, {})}

#: The canonical layers of each network.
OPS = {Residual: ["conv", "maxpool", "conv", "add", "avgpool", "fc"],
       GlobalPooled: ["conv", "conv", "global_avgpool", "fc"],
       Fire: ["conv", "conv", "conv", "conv", "concat", "conv"]}
_IMPORTED = {}


def import_quantized(key, tmp_path_factory):
    """(path, graph, calibration frames, quantized graph) of `OPTIONS[key]`'s network
    quantized by onnxruntime with its options, once per module."""
    if key not in _IMPORTED:
        frames = np.random.default_rng(1).standard_normal((16, 2, 12, 12)).astype(np.float32)
        network, options = OPTIONS[key]
        torch.manual_seed(0)
        path = quantized(network(), tmp_path_factory.mktemp("ort") / "q.onnx", frames, **options)
        graph = frontend.load(path)
        _IMPORTED[key] = path, graph, frames, quant.quantize(graph, frames[:4])
    return _IMPORTED[key]


@pytest.fixture(params=list(OPTIONS))
def imported(request, tmp_path_factory):
    return (*import_quantized(request.param, tmp_path_factory), OPTIONS[request.param][0])


def test_formats_as_stated(imported):
    _, graph, _, q, network = imported
    relu = q.formats[q.layers[0].output]        # int8 with zero point -128, or uint8 with 0
    assert relu.bits == 9 and (relu.min, relu.max) == (0, 255) and relu.mult != 1
    for layer in q.layers:
        if layer.wq is not None:
            assert golden.requant(q, layer)[0] is not None
            assert np.all((1 <= layer.wq.mult) & (layer.wq.mult < 2))
    assert all(f.mult != 1 for f in q.formats.values())
    assert [layer.op for layer in q.layers] == OPS[network]
    for layer in q.layers:
        if layer.op == "maxpool":                           # keeps its format
            assert q.formats[layer.output] == q.formats[layer.inputs[0]]
        if layer.op in ("global_avgpool", "concat"):        # to the format the model states
            assert q.formats[layer.output] == graph.format_hints[layer.output]
            assert any(q.formats[t] != q.formats[layer.output] for t in layer.inputs)


def test_golden_within_one_lsb_of_onnxruntime(imported):
    path, graph, frames, q, _ = imported
    scale = q.formats[q.output].scale
    theirs = np.rint(frontend.onnxruntime_outputs(path, graph, frames) / scale)
    ours = np.rint(golden.run(q, frames) / scale)
    differ = np.abs(theirs - ours)
    assert differ.max() <= 1
    # average pooling's ties (x.5) round half up here, half to even in onnxruntime
    assert np.mean(differ == 0) > (0.5 if "avgpool" in [layer.op for layer in q.layers] else 0.95)


@pytest.mark.parametrize("key", [
    "per_channel", pytest.param("global_pool", marks=pytest.mark.slow),
    pytest.param("per_tensor", marks=pytest.mark.slow),
    pytest.param("uint8", marks=pytest.mark.slow), pytest.param("concat", marks=pytest.mark.slow)])
def test_bit_exact_in_verilator(key, tmp_path_factory):
    _, _, frames, q = import_quantized(key, tmp_path_factory)
    assert any(layer.wq.per_channel for layer in q.layers if layer.wq) == (key == "per_channel")
    run_accelerator(q, {}, frames[:2], f"ort_{key}", stall=0.3)


class Gate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 4, 3)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


@pytest.mark.parametrize("options, message", [
    ({"extra_options": {"WeightSymmetric": False}},
     r"DequantizeLinear '.*' gives weights a non-zero zero point: dnnhw's weights are symmetric"),
    ({"quant_format": ortq.QuantFormat.QOperator},     # QLinearConv and friends
     r"QLinear\w+ '.*': onnxruntime's QOperator format \(integer ops\) is unsupported; quantize "
     r"with quant_format=QuantFormat.QDQ"),
    ({"activation_type": ortq.QuantType.QUInt16},      # with a zero point: 17 signed bits
     r"QuantizeLinear '.*': its uint16 integers in \[-?\d+, \d+\] \(less the zero point\) need "
     r"17 signed bits; dnnhw computes with at most 16"),
], ids=["asymmetric_weights", "qoperator_format", "uint16_zero_point"])
def test_refused_on_load(tmp_path, options, message):
    """What the frontend cannot read ends in one line saying why (and what it reads)."""
    frames = np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32)
    with pytest.raises(UserError, match=message):
        frontend.load(quantized(Gate(), tmp_path / "q.onnx", frames, **options))


def test_op_without_scaled_formats_refused(tmp_path):
    """An op that does not compute on scales other than powers of two says so, naming the
    layer."""
    frames = np.random.default_rng(1).standard_normal((4, 2, 6, 6)).astype(np.float32)
    graph = frontend.load(quantized(Gate(), tmp_path / "q.onnx", frames))
    with pytest.raises(UserError, match=r"^layer '.*' \(sigmoid\): format Q.*×.* has a scale that "
                                        r"is not a power of two"):
        quant.quantize(graph, frames)


def test_no_calibration_warning_when_the_model_states_every_format(tmp_path_factory):
    """The formats come from the model, not from calibration frames: `build` does not warn
    that synthetic frames chose them."""
    from dnnhw import build
    path, *_ = import_quantized("per_channel", tmp_path_factory)
    assert build.front(path).warning is None
    float_path = path.with_suffix(".float.onnx")
    assert build.front(float_path).warning == build.SYNTHETIC_CALIBRATION
