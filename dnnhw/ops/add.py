"""add: the elementwise sum of two tensors of one shape (`layers.add.Add`).

Folding: lanes dividing C. Cycles per frame C·H·W/lanes; latency 1 (2 with multipliers). Both
inputs are aligned to the larger frac (or multiplied by their scale ratios), added exactly,
round-shifted to the output format and saturated (`golden.add_constants`).
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, resources
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class AddSpec:
    """Bits and multiplier (`golden.add_constants`) of each input, the round shift to the
    output, the output's bits and range."""
    bits_a: int
    mult_a: int
    bits_b: int
    mult_b: int
    shift: int
    bits_out: int
    bounds: tuple

    @property
    def latency(self):
        return 1 if all(r & (r - 1) == 0 for r in (self.mult_a, self.mult_b)) else 2


class AddOp(LanesOp):
    name = "add"
    attrs = "two inputs, same shape"
    scaled_formats = True

    def geometry(self, graph, layer, folding):
        return geometry.elementwise(graph.in_shape(layer), folding.coarse_in,
                                    self.spec(graph, layer).latency)

    def timing(self, graph, layer, folding, ins):
        (first_a, last_a), (first_b, last_b) = ins
        cycles = self.spec(graph, layer).latency
        return np.maximum(first_a, first_b) + cycles, np.maximum(last_a, last_b) + cycles

    def spec(self, graph, layer):
        fa, fb = (graph.formats[t] for t in layer.inputs)
        fmt_out = graph.formats[layer.output]
        (ra, rb), shift = golden.add_constants((fa, fb), fmt_out)
        return AddSpec(fa.bits, ra, fb.bits, rb, shift, fmt_out.bits, (fmt_out.min, fmt_out.max))

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes = folding.coarse_in
        t.add("part:add", 1)
        terms = []
        for bits, r in ((spec.bits_a, spec.mult_a), (spec.bits_b, spec.mult_b)):
            if spec.latency > 1:
                resources.constant_multipliers(t, lanes, bits, r, family)
            terms.append((bits + r.bit_length() - 1, r.bit_length() - 1 if r & (r - 1) == 0 else 0))
        total = max(bits for bits, _ in terms) + 1
        # one adder: a shifted input's low bits pass, the rounding constant joins the sum
        t.add("add", lanes * (total - max(low for _, low in terms)))
        resources.saturate(t, lanes, resources.round_shift_bits(total, spec.shift), spec.bits_out)
        t.add("reg", lanes * spec.bits_out + 1)
        t.add("handshake", 3)
        return t

    def run(self, graph, layer, xs):
        fmt_out = graph.formats[layer.output]
        mults, shift = golden.add_constants([graph.formats[t] for t in layer.inputs], fmt_out)
        total = sum(v * r for v, r in zip(xs, mults))
        return golden.saturate(golden.round_shift(total, shift), fmt_out)

    def run_float(self, graph, layer, xs):
        return xs[0] + xs[1]

    def block(self, graph, layer, folding):
        from ..layers.add import Add
        fa, fb = (graph.formats[t] for t in layer.inputs)
        return Add.from_formats(graph.in_shape(layer), folding.coarse_in, fa, fb,
                                graph.formats[layer.output])


register(AddOp())
