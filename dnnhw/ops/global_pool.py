"""global_avgpool: the mean of every channel over H×W (`layers.global_pool.GlobalAveragePool`).

Folding: lanes dividing C. Cycles per frame H·W·C/lanes; latency (H·W - 1)·C/lanes + 3. The
output (C, 1, 1) keeps the input's format, or takes the one a quantized model states for it
(the reciprocal multiplier then includes the ratio of the scales).
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, resources
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class GlobalPoolSpec:
    shape: tuple
    bits: int
    reciprocal: int
    shift: int
    out_bits: int


class GlobalAveragePoolOp(LanesOp):
    name = "global_avgpool"
    scaled_formats = True

    def output_format(self, graph, layer, bits, measured):
        """The input's format, or a scaled input's average in the format the model states."""
        fmt_in, stated = graph.formats[layer.inputs[0]], graph.format_hints.get(layer.output)
        return stated if fmt_in.scaled and stated is not None else fmt_in

    def _ratio(self, graph, layer):
        return graph.formats[layer.inputs[0]].scale / graph.formats[layer.output].scale

    def geometry(self, graph, layer, folding):
        return geometry.global_pool(graph.in_shape(layer), folding.coarse_in)

    def timing(self, graph, layer, folding, ins):
        first, last = ins[0]
        return first[-1:] + 3, last[-1:] + 3

    def spec(self, graph, layer):
        shape = graph.in_shape(layer)
        m, k = golden.avg_multiplier(shape.h * shape.w, self._ratio(graph, layer))
        return GlobalPoolSpec(tuple(shape), graph.formats[layer.inputs[0]].bits, m, k,
                              graph.formats[layer.output].bits)

    def features(self, spec, folding, family):
        t = resources.Features()
        (c, h, w), bits, lanes = spec.shape, spec.bits, folding.coarse_in
        sum_bits = bits + resources.counter_bits(h * w)
        t.add("part:channel_sum", 1)
        resources.delay_line(t, lanes * sum_bits, c // lanes, family)
        resources.counter(t, c // lanes)
        resources.counter(t, h * w)
        t.add("add", lanes * sum_bits)      # beat + (0 or the sum): the choice joins the adder
        t.add("reg", lanes * sum_bits + 1)
        t.add("handshake", 2)
        resources.average_scale_part(t, sum_bits, spec.out_bits, lanes, (spec.reciprocal,),
                                     (spec.shift,), 1, (1, 1), family)
        return t

    def run(self, graph, layer, xs):
        x = xs[0]
        n = x.shape[1] * x.shape[2]
        return golden.average(x.sum(axis=(1, 2), keepdims=True), np.full((1, 1), n),
                              graph.formats[layer.output], self._ratio(graph, layer))

    def run_float(self, graph, layer, xs):
        return xs[0].mean(axis=(1, 2), keepdims=True)

    def block(self, graph, layer, folding):
        from ..layers.global_pool import GlobalAveragePool
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return GlobalAveragePool(graph.in_shape(layer), fmt_in.bits, folding.coarse_in,
                                 fmt_out.bits, self._ratio(graph, layer),
                                 (fmt_out.min, fmt_out.max))


register(GlobalAveragePoolOp())
