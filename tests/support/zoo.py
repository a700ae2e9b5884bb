"""The networks of the end-to-end acceptance: ONNX models and calibration frames.

Every function returns ``(onnx.ModelProto, frames)``: the model (input "x", batch 1, static
shapes) and float32 calibration frames of shape (N, ...input shape without batch...). Both are
deterministic: PyTorch weights come from ``torch.manual_seed``, BatchNorm layers carry non-trivial
scales, shifts and running statistics (so folding BatchNorm into the convolutions is exercised),
hand-built weights and every frame from seeded NumPy generators.

========== ============ ================================================================ ===========
name       input        layers                                                           source
========== ============ ================================================================ ===========
lenet      1×28×28      conv 5×5 1→8, ReLU, maxpool 2, conv 5×5 8→16, ReLU, maxpool 2,    TorchScript
                        flatten, FC 256→10
vgg_cifar  3×32×32      conv 3×3 + BN + ReLU blocks 8-8-pool-16-16-pool-32-32-pool, FC 10 dynamo
kws_dscnn  1×40×32      DS-CNN: conv 4×10 stride 1×2 (TF "SAME" pads) 1→16 + BN + ReLU,   TorchScript
                        3 × (depthwise 3×3 + BN + ReLU, pointwise 1×1 + BN + ReLU),
                        mean over H and W, FC 16→12
residual   3×16×16      ResNet: stem conv 3→8, identity block 8, block 8→16 stride 2 with dynamo
                        a 1×1 projection shortcut, identity block 16, global pool, FC 10
bundle64   3×64×64      3 × (depthwise 3×3, pointwise 1×1, ReLU, maxpool 2): 3→8→16→16,  onnx.helper
                        global average pool, FC 16→10
mlp        64           Gemm 64→128, ReLU, Gemm 128→64, ReLU, Gemm 64→10                  onnx.helper
digits     1×8×8        examples/digits/digits.onnx and its calibration frames           bundled
lstm_kws   40×1×16      2 stacked LSTMs (16→32→32, batch first), last step, FC 32→12      TorchScript
========== ============ ================================================================ ===========

lstm_kws reads 40 frames of 16 MFCC coefficients, one time step after another (input (1, 40, 16)).

kws_dscnn takes the MFCC matrix as C=1, H=40 (frames, time), W=32 (coefficients): its first
kernel is 4 (time) × 10 (coefficients), stride 1 in time and 2 over the coefficients.
"""

import pathlib
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from support.torch_models import seeded

__all__ = ["NETWORKS", "lenet", "vgg_cifar", "kws_dscnn", "residual", "bundle64", "mlp", "digits",
           "lstm_kws"]

#: Calibration frames each network comes with (digits brings its own 128).
FRAMES = 32

#: ONNX IR version of the hand-built models: onnxruntime 1.31 reads up to 11; opset 17 needs 8.
IR_VERSION = 9

DIGITS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "digits"


# -- PyTorch --------------------------------------------------------------------------------------


def _conv_bn_relu(c_in, c_out, kernel=3, stride=1, padding=1, groups=1):
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, momentum=None), nn.ReLU()]


class LeNet(nn.Module):
    input_shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class VGGCifar(nn.Module):
    input_shape = (3, 32, 32)

    def __init__(self, widths=(8, 16, 32)):
        super().__init__()
        layers, c = [], 3
        for w in widths:
            layers += [*_conv_bn_relu(c, w), *_conv_bn_relu(w, w), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class DSCNN(nn.Module):
    """DS-CNN (Zhang et al., "Hello Edge", 2017) for keyword spotting on 40×32 MFCCs."""

    input_shape = (1, 40, 32)

    def __init__(self, width=16, blocks=3, classes=12):
        super().__init__()
        # TF "SAME" for a 4×10 kernel, stride (1, 2) on 40×32: pads top 1, bottom 2, left/right 4
        layers = [nn.ZeroPad2d((4, 4, 1, 2)), *_conv_bn_relu(1, width, (4, 10), (1, 2), 0)]
        for _ in range(blocks):
            layers += [*_conv_bn_relu(width, width, 3, 1, 1, groups=width),
                       *_conv_bn_relu(width, width, 1, 1, 0)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(torch.mean(self.features(x), dim=(2, 3)))


class _BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn_relu(c_in, c_out, 3, stride, 1),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(c_out, momentum=None))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False), nn.BatchNorm2d(c_out, momentum=None)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    input_shape = (3, 16, 16)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*_conv_bn_relu(3, 8), _BasicBlock(8, 8),
                                      _BasicBlock(8, 16, stride=2), _BasicBlock(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def _seeded(cls, seed):
    """A seeded `cls` in eval mode with non-trivial BatchNorm state (`torch_models.seeded`)."""
    return seeded(cls, seed, cls.input_shape, batch=16, scale=1.5, shift=0.25)


def _export(net, dynamo):
    """`net` exported for a batch-1 input (input "x", output "y", weights inside the model)."""
    x = torch.randn(1, *net.input_shape, generator=torch.Generator().manual_seed(0))
    kwargs = {"external_data": False, "verbose": False} if dynamo else {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the exporters' notes on constant folding and such
        path = pathlib.Path(tmp) / "net.onnx"
        torch.onnx.export(net, (x,), path, dynamo=dynamo, input_names=["x"], output_names=["y"],
                          **kwargs)
        return onnx.load(str(path))


def _frames(shape, seed, low=None):
    """FRAMES seeded float32 frames: N(0, 1), or uniform on [0, 1) when `low` is 0."""
    rng = np.random.default_rng(seed)
    if low == 0:
        return rng.random((FRAMES, *shape), dtype=np.float32)
    return rng.standard_normal((FRAMES, *shape), dtype=np.float32)


def lenet():
    """LeNet-5-like on 1×28×28 images in [0, 1) (TorchScript exporter)."""
    return _export(_seeded(LeNet, 10), dynamo=False), _frames(LeNet.input_shape, 10, low=0)


def vgg_cifar():
    """VGG-style CIFAR net, conv 3×3 + BN + ReLU, 8-8-pool-16-16-pool-32-32-pool, FC 10
    (dynamo exporter)."""
    return _export(_seeded(VGGCifar, 11), dynamo=True), _frames(VGGCifar.input_shape, 11)


def kws_dscnn():
    """DS-CNN keyword spotting on 40×32 MFCCs, C=1 H=40 W=32 (TorchScript exporter)."""
    return _export(_seeded(DSCNN, 12), dynamo=False), _frames(DSCNN.input_shape, 12)


def residual():
    """Small ResNet on 3×16×16: identity shortcuts and one 1×1 projection (dynamo exporter)."""
    return _export(_seeded(ResNet, 13), dynamo=True), _frames(ResNet.input_shape, 13)


# -- onnx.helper ----------------------------------------------------------------------------------


class _Graph:
    """Nodes and seeded He-normal initializers of one hand-built opset-17 graph."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.initializers = [], []

    def const(self, array, name):
        self.initializers.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def node(self, op, inputs, name, out=None, **attrs):
        """A node named `name`; its output is `out`, else also `name`."""
        self.nodes.append(helper.make_node(op, inputs, [out or name], name=name, **attrs))
        return out or name

    def params(self, name, shape, fan_in):
        w = self.const(self.rng.normal(0.0, np.sqrt(2.0 / fan_in), shape), f"{name}.weight")
        b = self.const(self.rng.normal(0.0, 0.1, shape[0]), f"{name}.bias")
        return w, b

    def conv(self, x, name, c_in, c_out, k, groups=1):
        w, b = self.params(name, (c_out, c_in // groups, k, k), c_in // groups * k * k)
        p = k // 2
        return self.node("Conv", [x, w, b], name, kernel_shape=[k, k], pads=[p, p, p, p],
                         group=groups)

    def gemm(self, x, name, n_in, n_out, out=None):
        w, b = self.params(name, (n_out, n_in), n_in)
        return self.node("Gemm", [x, w, b], name, out=out, transB=1)

    def model(self, name, x_shape, y_shape):
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                  producer_name="dnnhw-zoo", ir_version=IR_VERSION)
        onnx.checker.check_model(model, full_check=True)
        return model


def bundle64():
    """3 × (depthwise 3×3, pointwise 1×1, ReLU, maxpool 2) on 3×64×64 (channels 3→8→16→16),
    global average pool, FC 10 (onnx.helper, opset 17)."""
    g, t, c = _Graph(14), "x", 3
    for k, width in enumerate((8, 16, 16)):
        t = g.conv(t, f"dw{k}", c, c, 3, groups=c)
        t = g.conv(t, f"pw{k}", c, width, 1)
        t = g.node("Relu", [t], f"relu{k}")
        t = g.node("MaxPool", [t], f"pool{k}", kernel_shape=[2, 2], strides=[2, 2])
        c = width
    t = g.node("GlobalAveragePool", [t], "gap")
    t = g.node("Flatten", [t], "flatten", axis=1)
    g.gemm(t, "fc", c, 10, out="y")
    return g.model("bundle64", [1, 3, 64, 64], [1, 10]), _frames((3, 64, 64), 14)


def mlp():
    """Gemm 64→128, ReLU, Gemm 128→64, ReLU, Gemm 64→10 (onnx.helper, opset 17)."""
    g, t = _Graph(15), "x"
    for k, (n_in, n_out) in enumerate(((64, 128), (128, 64))):
        t = g.node("Relu", [g.gemm(t, f"fc{k}", n_in, n_out)], f"relu{k}")
    g.gemm(t, "fc2", 64, 10, out="y")
    return g.model("mlp", [1, 64], [1, 10]), _frames((64,), 15)


def digits():
    """The bundled example: examples/digits/digits.onnx and its 128 calibration frames."""
    return (onnx.load(str(DIGITS / "digits.onnx")),
            np.load(DIGITS / "digits_calib.npy").astype(np.float32))


class _LSTMKWS(nn.Module):
    input_shape = (40, 16)

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(16, 32, num_layers=2, batch_first=True)
        self.fc = nn.Linear(32, 12)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def lstm_kws():
    """Two stacked LSTMs over 40 steps of 16 features, the last step into FC 32→12 (TorchScript)."""
    return _export(_seeded(_LSTMKWS, 8), dynamo=False), _frames((40, 16), 8)


NETWORKS = {f.__name__: f for f in (lenet, vgg_cifar, kws_dscnn, residual, bundle64, mlp, digits,
                                    lstm_kws)}
"""name -> function returning (onnx.ModelProto, calibration frames)."""
