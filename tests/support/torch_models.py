"""PyTorch test networks and ONNX export helpers.

``NETS`` maps a name to ``(factory, input_shape)``; a factory returns a seeded module in eval mode
whose BatchNorm layers carry non-trivial affine parameters and running statistics.
"""

from pathlib import Path

import torch
from torch import nn

__all__ = ["NETS", "ConcatNet", "DSConvNet", "KWSNet", "MLP", "PoolNet", "ResidualNet",
           "ShuffleNet", "channel_shuffle", "export", "export_external", "export_fresh",
           "assert_matches_onnxruntime"]


def _conv_bn(c_in: int, c_out: int, kernel=3, stride=1, padding=1, groups: int = 1) -> list:
    """Conv2d without bias + BatchNorm2d (cumulative running statistics: momentum=None)."""
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, momentum=None)]


class _BasicBlock(nn.Module):
    """ResNet basic block; a strided 1x1 conv + BN on the shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, stride=stride), nn.ReLU(),
                                  *_conv_bn(c_out, c_out))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out
                         else nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, 0)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def _ds_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU."""
    return nn.Sequential(*_conv_bn(c_in, c_in, 3, stride, 1, groups=c_in), nn.ReLU6(),
                         *_conv_bn(c_in, c_out, 1, 1, 0), nn.ReLU())


class ResidualNet(nn.Module):
    """Stem conv+BN+ReLU, an identity and a downsampling basic block, global pool, Linear."""

    input_shape = (1, 3, 16, 16)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*_conv_bn(3, 16), nn.ReLU(),
                                      _BasicBlock(16, 16), _BasicBlock(16, 32, stride=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class DSConvNet(nn.Module):
    """Two depthwise-separable blocks (the second strided), AvgPool2d(4), flatten, Linear."""

    input_shape = (1, 3, 16, 16)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(_ds_block(3, 16), _ds_block(16, 32, stride=2),
                                      nn.AvgPool2d(4))
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class KWSNet(nn.Module):
    """Keyword spotting: 4x10 conv stride (1, 2), a depthwise-separable block, mean over H and W,
    Linear -> 12."""

    input_shape = (1, 1, 40, 32)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*_conv_bn(1, 16, (4, 10), (1, 2), (1, 4)), nn.ReLU(),
                                      _ds_block(16, 32))
        self.fc = nn.Linear(32, 12)

    def forward(self, x):
        return self.fc(torch.mean(self.features(x), dim=(2, 3)))


class PoolNet(nn.Module):
    """Conv, MaxPool2d(3, 2, padding=1), conv, AvgPool2d(2), LeakyReLU(0.1), flatten, Linear."""

    input_shape = (1, 3, 16, 16)

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(3, 2, padding=1),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.AvgPool2d(2),
                                      nn.LeakyReLU(0.1))
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class MLP(nn.Module):
    """Linear(64, 48) + ReLU, Linear(48, 32) + Tanh, Linear(32, 10) + Sigmoid."""

    input_shape = (1, 64)

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 32), nn.Tanh(),
                                    nn.Linear(32, 10), nn.Sigmoid())

    def forward(self, x):
        return self.layers(x)


class ConcatNet(nn.Module):
    """A 3x3 and a 1x1 conv branch (each + ReLU) concatenated over channels, then a 3x3 conv."""

    input_shape = (1, 3, 12, 12)

    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
        self.head = nn.Conv2d(12, 8, 3, padding=1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x), self.b(x)], dim=1))


def channel_shuffle(x, groups: int):
    """ShuffleNet's shuffle, as torchvision writes it: (N, g·k, H, W) → (N, k·g, H, W)."""
    n, c, h, w = x.shape
    x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
    return x.view(n, c, h, w)


class _ShuffleUnit(nn.Module):
    """ShuffleNetV2's unit (torchvision's InvertedResidual): stride 1 splits the channels in two
    halves, keeps one and passes the other through 1x1, depthwise 3x3, 1x1; stride 2 runs both
    branches on the whole input. The halves are concatenated, then shuffled."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride, half = stride, c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(*_conv_bn(c_in, c_in, 3, stride, 1, groups=c_in),
                                         *_conv_bn(c_in, half, 1, 1, 0), nn.ReLU())
        c_branch = c_in if stride > 1 else half
        self.branch2 = nn.Sequential(*_conv_bn(c_branch, half, 1, 1, 0), nn.ReLU(),
                                     *_conv_bn(half, half, 3, stride, 1, groups=half),
                                     *_conv_bn(half, half, 1, 1, 0), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNet(nn.Module):
    """A small ShuffleNetV2: stem conv, a downsampling and two basic units, 1x1 conv, mean over
    H and W, Linear."""

    input_shape = (1, 3, 12, 12)

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, 8), nn.ReLU())
        self.stage = nn.Sequential(_ShuffleUnit(8, 16, 2), _ShuffleUnit(16, 16, 1),
                                   _ShuffleUnit(16, 16, 1))
        self.head = nn.Sequential(*_conv_bn(16, 24, 1, 1, 0), nn.ReLU())
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        return self.fc(self.head(self.stage(self.stem(x))).mean([2, 3]))


def seeded(cls, seed, input_shape, batch=8, scale=2.0, shift=0.5):
    """A seeded ``cls()`` in eval mode whose BatchNorm layers have random affine parameters and
    running statistics: the average over four random batches of `input_shape` (no batch axis),
    drawn as ``scale * N(0, 1) + shift``."""
    torch.manual_seed(seed)
    net = cls()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.normal_(m.bias, 0.0, 0.1)
        net.train()
        for _ in range(4):
            net(scale * torch.randn(batch, *input_shape) + shift)
    return net.eval()


def _factory(cls: type[nn.Module], seed: int):
    """A function building a seeded ``cls`` in eval mode, with non-trivial BatchNorm state."""

    def make() -> nn.Module:
        return seeded(cls, seed, cls.input_shape[1:])

    make.__name__ = make.__qualname__ = cls.__name__
    make.__doc__ = f"A seeded {cls.__name__} in eval mode."
    return make


NETS = {
    name: (_factory(cls, seed), cls.input_shape)
    for seed, (name, cls) in enumerate([
        ("residual", ResidualNet), ("dsconv", DSConvNet), ("kws", KWSNet),
        ("pool", PoolNet), ("mlp", MLP), ("concat", ConcatNet), ("shuffle", ShuffleNet),
    ])
}
"""name -> (factory, input_shape)."""


def _export(module: nn.Module, input_shape, path: str | Path, dynamo: bool,
            opset: int | None, **kwargs) -> Path:
    """The body shared by ``export`` and ``export_external``."""
    path = Path(path)
    module.eval()
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(module, (x,), path, dynamo=dynamo, input_names=["x"], output_names=["y"],
                      opset_version=opset, **kwargs)
    return path


def export(module: nn.Module, input_shape, path: str | Path, dynamo: bool,
           opset: int | None = None) -> Path:
    """Export ``module`` (put in eval mode) for a batch-1 input of ``input_shape`` to ``path``.

    Input "x", output "y", static shapes, all weights inside the one file. ``opset=None`` takes
    the exporter's default, 20 for both exporters in torch 2.13. The dynamo exporter only builds
    opset >= 18: below that it runs the ONNX version converter, which fails for most of ``NETS``
    and then silently leaves the model at opset 18, so ``dynamo=True`` with ``opset < 18`` is
    refused here. The TorchScript exporter (``dynamo=False``) writes opsets 11..21 as asked.
    """
    if dynamo and opset is not None and opset < 18:
        raise ValueError(f"the dynamo exporter cannot write opset {opset} (< 18) reliably")
    kwargs = {"external_data": False, "verbose": False} if dynamo else {}
    return _export(module, input_shape, path, dynamo, opset, **kwargs)


def export_external(module: nn.Module, input_shape, path: str | Path) -> Path:
    """As ``export(..., dynamo=True)``, but weights go to ``<path.name>.data`` beside ``path``.

    torch 2.13 (through onnx_ir) moves only initializers of 256 bytes or more into the .data
    file; smaller ones (biases, tiny kernels) stay inline. Returns ``path``, the .onnx file.
    """
    return _export(module, input_shape, path, True, None, external_data=True, verbose=False)


def export_fresh(cls, path, dynamo=False) -> Path:
    """``cls()`` built after ``torch.manual_seed(0)``, exported (warnings silenced) for its
    ``input_shape`` to ``path``, as `export` does."""
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export(cls().eval(), cls.input_shape, path, dynamo)


def assert_matches_onnxruntime(path, graph, frames, atol=1e-5, rel_rms=0.01):
    """The golden model of `graph` (loaded from `path`) against onnxruntime on `frames`: in
    float within `atol`, at 16 bits (calibrated on the frames) within `rel_rms`."""
    import numpy as np

    from dnnhw import frontend, golden, quant

    reference = frontend.onnxruntime_outputs(path, graph, frames)
    np.testing.assert_allclose(golden.run(graph, frames, fixed=False), reference, atol=atol)
    error = golden.float_error(reference, golden.run(quant.quantize(graph, frames, bits=16), frames))
    assert error["rel_rms"] < rel_rms, error
