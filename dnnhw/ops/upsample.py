"""upsample: each pixel to a block of sh × sw pixels (`layers.upsample.Upsample`): copies of it
(mode "nearest": ONNX Resize/Upsample with nearest interpolation at integer scales), or the
pixel at the block's top left and zeros elsewhere (mode "zeros": a transposed convolution's
zero insertion, which the convolution after it completes).

Folding: lanes dividing C. Cycles per frame H·sh·W·sw·C/lanes (every output beat); latency
W·C/lanes + 1 (the first input row). The values pass unchanged: the output keeps the input's
format.
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, resources
from . import register
from ._base import KeepsFormat, LanesOp


@dataclass(frozen=True)
class UpsampleSpec:
    shape: tuple
    scale: tuple
    bits: int
    zeros: bool


def _blocks(x, scale, zeros):
    """(C, H, W) `x` upsampled by `scale`, as copies or as zero insertion."""
    sh, sw = scale
    if not zeros:
        return np.repeat(np.repeat(x, sh, axis=1), sw, axis=2)
    out = np.zeros((x.shape[0], x.shape[1] * sh, x.shape[2] * sw), x.dtype)
    out[:, ::sh, ::sw] = x
    return out


class UpsampleOp(KeepsFormat, LanesOp):
    name = "upsample"
    attrs = "scale ((sh, sw) integers), mode (\"nearest\" or \"zeros\")"

    def geometry(self, graph, layer, folding):
        return geometry.upsample(graph.in_shape(layer), layer.attrs["scale"], folding.coarse_in)

    def timing(self, graph, layer, folding, ins):
        first, last = ins[0]
        c, h, w = graph.in_shape(layer)
        sh, sw = layer.attrs["scale"]
        beats = c // folding.coarse_in
        row_in = last.reshape(h, w)[:, -1]           # an input row's last beat: its bank full
        out_first = np.empty((h * sh, w * sw), dtype=np.int64)
        end = np.iinfo(np.int64).min // 4
        for r in range(h * sh):
            start = max(row_in[r // sh] + 2, end + 1)
            out_first[r] = start + np.arange(w * sw) * beats
            end = start + w * sw * beats - 1
        out_first = out_first.ravel()
        return out_first, out_first + beats - 1

    def spec(self, graph, layer):
        return UpsampleSpec(tuple(graph.in_shape(layer)), tuple(layer.attrs["scale"]),
                            graph.formats[layer.inputs[0]].bits, layer.attrs["mode"] == "zeros")

    def features(self, spec, folding, family):
        t = resources.Features()
        (c, _, w), (sh, sw), lanes = spec.shape, spec.scale, folding.coarse_in
        beats = c // lanes
        resources.memory(t, 2 * w * beats, lanes * spec.bits, family)
        for n in (w * beats, beats, sw, w, sh):
            resources.counter(t, n)
        t.add("add", 2 * resources.counter_bits(2 * w * beats))     # bank + offset, both ports
        t.add("reg", 3)                                             # valid, zero, banks
        if spec.zeros:
            t.add("mux", lanes * spec.bits)
        t.add("handshake", 2)
        return t

    def run(self, graph, layer, xs):
        return _blocks(xs[0], layer.attrs["scale"], layer.attrs["mode"] == "zeros")

    def run_float(self, graph, layer, xs):
        return _blocks(xs[0], layer.attrs["scale"], layer.attrs["mode"] == "zeros")

    def block(self, graph, layer, folding):
        from ..layers.upsample import Upsample
        return Upsample(graph.in_shape(layer), layer.attrs["scale"], folding.coarse_in,
                        graph.formats[layer.inputs[0]].bits, layer.attrs["mode"] == "zeros")


register(UpsampleOp())
