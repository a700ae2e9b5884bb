"""add: the elementwise sum of two tensors of one shape (`layers.add.Add`).

Folding: lanes dividing C. Cycles per frame C·H·W/lanes; latency 1. Both inputs are aligned to
the larger frac, added exactly, round-shifted to the output format and saturated.
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, resources
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class AddSpec:
    """Bits and left shift to the common frac of each input, the round shift to the output,
    the output's bits."""
    bits_a: int
    align_a: int
    bits_b: int
    align_b: int
    shift: int
    bits_out: int


class AddOp(LanesOp):
    name = "add"
    attrs = "two inputs, same shape"

    def geometry(self, graph, layer, folding):
        return geometry.elementwise(graph.in_shape(layer), folding.coarse_in, 1)

    def timing(self, graph, layer, folding, ins):
        (first_a, last_a), (first_b, last_b) = ins
        return np.maximum(first_a, first_b) + 1, np.maximum(last_a, last_b) + 1

    def spec(self, graph, layer):
        fa, fb = (graph.formats[t] for t in layer.inputs)
        fmt_out = graph.formats[layer.output]
        top = max(fa.frac, fb.frac)
        return AddSpec(fa.bits, top - fa.frac, fb.bits, top - fb.frac, top - fmt_out.frac,
                       fmt_out.bits)

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes = folding.coarse_in
        t.add("part:add", 1)
        total = max(spec.bits_a + spec.align_a, spec.bits_b + spec.align_b) + 1
        # one adder: the shifted input's low bits pass, the rounding constant joins the sum
        t.add("add", lanes * (total - max(spec.align_a, spec.align_b)))
        resources.saturate(t, lanes, resources.round_shift_bits(total, spec.shift), spec.bits_out)
        t.add("reg", lanes * spec.bits_out + 1)
        t.add("handshake", 3)
        return t

    def run(self, graph, layer, xs):
        fmt_out = graph.formats[layer.output]
        fracs = [graph.formats[t].frac for t in layer.inputs]
        top = max(fracs)
        total = sum(v << (top - f) for v, f in zip(xs, fracs))
        return golden.saturate(golden.round_shift(total, top - fmt_out.frac), fmt_out.bits)

    def run_float(self, graph, layer, xs):
        return xs[0] + xs[1]

    def block(self, graph, layer, folding):
        from ..layers.add import Add
        fa, fb = (graph.formats[t] for t in layer.inputs)
        out = graph.formats[layer.output]
        return Add(graph.in_shape(layer), folding.coarse_in, fa.bits, fa.frac, fb.bits, fb.frac,
                   out.bits, out.frac)


register(AddOp())
