"""One-layer graphs for block and model tests, quantized on random calibration frames."""

import numpy as np

from dnnhw import quant
from dnnhw.ir import Graph, Layer, Shape


def out_hw(shape, kernel, stride, pads):
    """(H_out, W_out) of a window over `shape`."""
    return ((shape.h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1,
            (shape.w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1)


def conv_graph(in_shape, c_out, kernel, stride, pads, groups=1, act=None, bits=8, seed=0,
               frames=8, **act_attrs):
    """A quantized graph of one conv layer "conv" (x → y) and its calibration frames."""
    rng = np.random.default_rng(seed)
    kh, kw = kernel
    out = Shape(c_out, *out_hw(in_shape, kernel, stride, pads))
    layer = Layer("conv", "conv", ["x"], "y",
                  attrs={"kernel": kernel, "stride": stride, "pads": pads, "groups": groups,
                         "act": act, **act_attrs},
                  weight=rng.standard_normal((c_out, in_shape.c // groups, kh, kw)) * 0.3,
                  bias=rng.standard_normal(c_out) * 0.1)
    graph = Graph("conv", "x", "y", {"x": in_shape, "y": out}, [layer], (1, *in_shape), (1, *out))
    calibration = rng.standard_normal((frames, *in_shape))
    return quant.quantize(graph, calibration, bits=bits), calibration
