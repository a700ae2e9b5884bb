"""mul: the elementwise product of two tensors of one shape, or (``broadcast``) of a feature map
and a (C, 1, 1) vector applied to every pixel: squeeze-and-excitation's channel scaling
(`layers.mul.Mul`).

Folding: lanes dividing C. Cycles per frame C·H·W/lanes, C/lanes more with ``broadcast`` (the
vector's load); latency 2. The exact product is round-shifted from frac_a + frac_b to the output
format (from calibration) and saturated. With ``broadcast`` the map waits in the FIFO before
the block until its vector is computed: a frame's worth (`interconnect`).
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, pixel_timing, resources
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class MulSpec:
    shape: tuple
    bits_a: int
    bits_b: int
    shift: int
    bits_out: int
    broadcast: bool


class MulOp(LanesOp):
    name = "mul"
    attrs = "two inputs: a map and a map of its shape, or with broadcast a (C, 1, 1) vector"

    def geometry(self, graph, layer, folding):
        return geometry.multiply(graph.in_shape(layer), folding.coarse_in,
                                 layer.attrs.get("broadcast", False))

    def timing(self, graph, layer, folding, ins):
        (first_a, last_a), (first_b, last_b) = ins
        if not layer.attrs.get("broadcast"):
            return np.maximum(first_a, first_b) + 2, np.maximum(last_a, last_b) + 2
        beats = graph.in_shape(layer).c // folding.coarse_in
        start = pixel_timing.after(np.maximum(first_a, last_b[0] + 1), beats)
        return start + 2, np.maximum(start + beats - 1, last_a) + 2

    def spec(self, graph, layer):
        fa, fb = (graph.formats[t] for t in layer.inputs)
        out = graph.formats[layer.output]
        return MulSpec(tuple(graph.in_shape(layer)), fa.bits, fb.bits, fa.frac + fb.frac - out.frac,
                       out.bits, layer.attrs.get("broadcast", False))

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes = folding.coarse_in
        c = spec.shape[0]
        resources.multipliers(t, lanes, spec.bits_a, spec.bits_b, family)
        product = spec.bits_a + spec.bits_b
        resources.round_shift(t, lanes, product, spec.shift)
        resources.saturate(t, lanes, resources.round_shift_bits(product, spec.shift), spec.bits_out)
        t.add("reg", lanes * (spec.bits_a + spec.bits_out) + 2)
        if spec.broadcast:
            resources.memory(t, c // lanes, lanes * spec.bits_b, family)
            for n in (c // lanes, c // lanes, spec.shape[1] * spec.shape[2]):
                resources.counter(t, n)
        else:
            t.add("reg", lanes * spec.bits_b)
        t.add("handshake", 3)
        return t

    def run(self, graph, layer, xs):
        fa, fb = (graph.formats[t] for t in layer.inputs)
        out = graph.formats[layer.output]
        return golden.saturate(golden.round_shift(xs[0] * xs[1], fa.frac + fb.frac - out.frac),
                               out.bits)

    def run_float(self, graph, layer, xs):
        return xs[0] * xs[1]

    def block(self, graph, layer, folding):
        from ..layers.mul import Mul
        fa, fb = (graph.formats[t] for t in layer.inputs)
        out = graph.formats[layer.output]
        return Mul(graph.in_shape(layer), folding.coarse_in, fa.bits, fa.frac, fb.bits, fb.frac,
                   out.bits, out.frac, layer.attrs.get("broadcast", False))


register(MulOp())
