"""The four MLPerf Tiny reference architectures in PyTorch, written from their published
descriptions (the benchmark's training scripts, v1.0), with seeded random weights.

====== ================== =================================================================== ======
name   task, input        layers                                                              params
====== ================== =================================================================== ======
ic     image class.,      ResNet-8: conv 3×3 16 + BN + ReLU; three stacks of two 3×3 convs    78 k
       3×32×32 CIFAR-10   (16, 32 stride 2, 64 stride 2; a 1×1 stride-2 projection on the
                          shortcut of the last two), average pool 8, FC 10
ad     anomaly detection, FC autoencoder: 640-128-128-128-128-8-128-128-128-128-640, each     270 k
       640 (5 × 128 mel)  hidden layer + BN + ReLU
vww    visual wake words, MobileNetV1 ×0.25: conv 3×3 stride 2 8, 13 depthwise-separable     221 k
       3×96×96            blocks (16 … 256), average pool 3, FC 2
kws    keyword spotting,  DS-CNN: conv 10×4 stride 2 ("same") 64 + BN + ReLU, 4 × (depthwise  23 k
       1×49×10 MFCC       3×3, pointwise 64, each + BN + ReLU), average pool, FC 12
====== ================== =================================================================== ======

``NETWORKS[name]`` is the `nn.Module` class; `module(name, seed)` a seeded instance in eval mode;
`onnx_model(name, dynamo)` the ONNX model as one of PyTorch's two exporters writes it, with
`frames(name)` calibration frames for it.
"""

import pathlib
import tempfile
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from support.torch_models import seeded

__all__ = ["NETWORKS", "PUBLISHED", "frames", "module", "onnx_model"]


def _conv_bn(c_in, c_out, kernel, stride=1, padding=0, groups=1, relu=True):
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
              nn.BatchNorm2d(c_out, momentum=None)]
    return layers + [nn.ReLU()] if relu else layers


class _Stack(nn.Module):
    """One ResNet-8 stack: two 3×3 convs with BN, the shortcut an identity or a biased 1×1
    stride-2 projection, ReLU after the add."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride, 1),
                                  *_conv_bn(c_out, c_out, 3, 1, 1, relu=False))
        self.shortcut = nn.Identity() if stride == 1 else nn.Conv2d(c_in, c_out, 1, stride)

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet8(nn.Module):
    input_shape = (3, 32, 32)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*_conv_bn(3, 16, 3, 1, 1), _Stack(16, 16, 1),
                                      _Stack(16, 32, 2), _Stack(32, 64, 2), nn.AvgPool2d(8))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class AutoEncoder(nn.Module):
    input_shape = (640,)

    def __init__(self, widths=(128, 128, 128, 128, 8, 128, 128, 128, 128)):
        super().__init__()
        layers, c = [], 640
        for w in widths:
            layers += [nn.Linear(c, w), nn.BatchNorm1d(w, momentum=None), nn.ReLU()]
            c = w
        self.layers = nn.Sequential(*layers, nn.Linear(c, 640))

    def forward(self, x):
        return self.layers(x)


class MobileNetV1(nn.Module):
    """MobileNetV1 with width multiplier 0.25: channels 8 … 256."""

    input_shape = (3, 96, 96)

    #: (output channels, stride) of the 13 depthwise-separable blocks at width 1.
    BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
              (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))

    def __init__(self, alpha=0.25, classes=2):
        super().__init__()
        c = int(32 * alpha)
        layers = _conv_bn(3, c, 3, 2, 1)
        for width, stride in self.BLOCKS:
            out = int(width * alpha)
            layers += _conv_bn(c, c, 3, stride, 1, groups=c) + _conv_bn(c, out, 1)
            c = out
        self.features = nn.Sequential(*layers, nn.AvgPool2d(3))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class DSCNN(nn.Module):
    """DS-CNN on 49 frames × 10 MFCC coefficients (C=1, H=49 time, W=10)."""

    input_shape = (1, 49, 10)

    def __init__(self, width=64, blocks=4, classes=12):
        super().__init__()
        # TF "SAME" for a 10×4 kernel, stride 2 on 49×10: 25×5 out, pads top 4, bottom 5, 1, 1
        layers = [nn.ZeroPad2d((1, 1, 4, 5)), *_conv_bn(1, width, (10, 4), 2)]
        for _ in range(blocks):
            layers += _conv_bn(width, width, 3, 1, 1, groups=width) + _conv_bn(width, width, 1)
        self.features = nn.Sequential(*layers, nn.AvgPool2d((25, 5)))
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


NETWORKS = {"ic": ResNet8, "ad": AutoEncoder, "vww": MobileNetV1, "kws": DSCNN}

#: What the hls4ml/FINN MLPerf Tiny paper (Borras et al., arXiv:2206.11791) publishes for these
#: tasks on a Pynq-Z2 and an Arty A7-100T, as its abstract states it (per-task tables not stored here).
PUBLISHED = "hls4ml/FINN (arXiv:2206.11791), Pynq-Z2 and Arty A7-100T: latencies as low as 20 µs"


def module(name, seed=0):
    """A seeded `NETWORKS[name]` in eval mode, its BatchNorm layers carrying non-trivial
    statistics."""
    cls = NETWORKS[name]
    return seeded(cls, seed, cls.input_shape, batch=16, scale=1.5, shift=0.25)


def onnx_model(name, dynamo, seed=0):
    """`module(name, seed)` exported for a batch-1 input named "x" by PyTorch's dynamo exporter
    or, if not `dynamo`, its TorchScript exporter; weights inside the model."""
    net = module(name, seed)
    x = torch.randn(1, *net.input_shape, generator=torch.Generator().manual_seed(seed))
    kwargs = {"external_data": False, "verbose": False} if dynamo else {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = pathlib.Path(tmp) / f"{name}.onnx"
        torch.onnx.export(net, (x,), path, dynamo=dynamo, input_names=["x"], output_names=["y"],
                          **kwargs)
        return onnx.load(str(path))


def frames(name, count=32, seed=0):
    """`count` seeded float32 calibration frames N(0, 1) of the network's input shape."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, *NETWORKS[name].input_shape), dtype=np.float32)
