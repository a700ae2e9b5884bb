"""hard_sigmoid: max(0, min(1, alpha·x + beta)) per element (`layers.hard_sigmoid.HardSigmoid`),
from ONNX HardSigmoid.

Folding: lanes dividing C. Cycles per frame C·H·W/lanes; latency 2. The output is in
(bits, bits - 1); the arithmetic is `golden.hard_sigmoid`.
"""

from dataclasses import dataclass

from .. import geometry, golden, resources
from . import register
from ._base import LanesOp, UnitFormat, stream_shift


@dataclass(frozen=True)
class HardSigmoidSpec:
    bits_in: int
    bits_out: int
    alpha_q: int
    beta_q: int
    shift: int


class HardSigmoidOp(UnitFormat, LanesOp):
    name = "hard_sigmoid"
    attrs = "alpha, beta"
    onnx = {"HardSigmoid": lambda attr: {"alpha": attr("alpha", 0.2), "beta": attr("beta", 0.5)}}

    def _constants(self, graph, layer):
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return golden.hard_sigmoid_constants(fmt_in, fmt_out, layer.attrs["alpha"],
                                             layer.attrs["beta"])

    def geometry(self, graph, layer, folding):
        return geometry.elementwise(graph.in_shape(layer), folding.coarse_in,
                                    geometry.HARD_SIGMOID_LATENCY)

    def timing(self, graph, layer, folding, ins):
        return stream_shift(*ins[0], geometry.HARD_SIGMOID_LATENCY)

    def spec(self, graph, layer):
        return HardSigmoidSpec(graph.formats[layer.inputs[0]].bits,
                               graph.formats[layer.output].bits, *self._constants(graph, layer))

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes = folding.coarse_in
        t.add("part:activation", 1)
        resources.constant_multipliers(t, lanes, spec.bits_in, spec.alpha_q, family)
        affine = max(spec.bits_in + spec.alpha_q.bit_length() + 1,
                     geometry.signed_bits(spec.beta_q)) + 1
        t.add("add", lanes * affine)                                        # + beta_q
        shifted = resources.round_shift(t, lanes, affine, spec.shift)
        resources.clip(t, lanes, shifted, spec.bits_out)
        t.add("reg", lanes * spec.bits_out + 2)
        t.add("handshake", 2)
        return t

    def run(self, graph, layer, xs):
        return golden.hard_sigmoid(xs[0], graph.formats[layer.inputs[0]],
                                   graph.formats[layer.output], layer.attrs["alpha"],
                                   layer.attrs["beta"])

    def run_float(self, graph, layer, xs):
        return (xs[0] * layer.attrs["alpha"] + layer.attrs["beta"]).clip(0, 1)

    def block(self, graph, layer, folding):
        from ..layers.hard_sigmoid import HardSigmoid
        fmt_in, fmt_out = graph.formats[layer.inputs[0]], graph.formats[layer.output]
        return HardSigmoid(graph.in_shape(layer), fmt_in.bits, fmt_out.bits, folding.coarse_in,
                           *self._constants(graph, layer), 1 << fmt_out.frac)


register(HardSigmoidOp())
