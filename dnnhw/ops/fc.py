"""fc: a fully connected layer over its whole (C, H, W) input flattened in stream (HWC) order
(`layers.fc.FullyConnected`): the conv engine as a 1×1 convolution over one pixel of N_in = C·H·W
channels.

Folding: coarse_in | C (the channels of its input, as the stream delivers them),
coarse_out | N_out, fine = 1. Cycles per frame (N_out/co)·(N_in/ci); latency 2·N_in/ci - 1 + depth.
"""

import dataclasses
from dataclasses import dataclass

from .. import geometry, golden, resources
from ..folding import Folding
from . import register
from ._base import divisors
from ._weighted import EngineSpec, WeightedOp


@dataclass(frozen=True)
class FCSpec:
    """What a `FullyConnected` block depends on besides its folding."""
    engine: EngineSpec
    in_features: int
    out_features: int


class FCOp(WeightedOp):
    name = "fc"
    attrs = "act; input (C, H, W) flattened in stream (HWC) order"

    def foldings(self, graph, layer):
        return [Folding(ci, co) for ci in divisors(graph.in_shape(layer).c)
                for co in divisors(graph.out_shape(layer).c)]

    def check_parallelism(self, graph, layer, folding):
        totals = (graph.in_shape(layer).c, graph.out_shape(layer).c, 1)
        factors = (folding.coarse_in, folding.coarse_out, folding.fine)
        for name, factor, total in zip(("coarse_in", "coarse_out", "fine"), factors, totals):
            if total % factor:
                raise ValueError(f"'{layer.name}' (fc): {name}={factor} must divide {total}")

    def geometry(self, graph, layer, folding):
        return geometry.fc(graph.in_shape(layer).size, graph.out_shape(layer).c,
                           folding.coarse_in, folding.coarse_out, **self.engine_options(graph, layer))

    def timing(self, graph, layer, folding, ins):
        return self.engine_timing(self.geometry(graph, layer, folding).engine, ins[0][1][-1:],
                                  graph.out_shape(layer).c, folding)

    def spec(self, graph, layer):
        return FCSpec(self.engine_spec(graph, layer), graph.in_shape(layer).size,
                      graph.out_shape(layer).c)

    def features(self, spec, folding, family):
        t = resources.Features()
        g = geometry.fc(spec.in_features, spec.out_features, folding.coarse_in,
                        folding.coarse_out, leaky=spec.engine.alpha is not None,
                        scaled=spec.engine.mult_bits > 0)
        resources.engine_part(t, spec.engine, g.engine, 1, folding, family)
        return t

    def accumulate(self, graph, layer, x, weight, exact_bound=None):
        return golden.fc(x, weight, exact_bound)

    def macs(self, graph, layer):
        return int(layer.weight.size)

    def block(self, graph, layer, folding):
        from ..layers.fc import FullyConnected
        return FullyConnected.from_layer(graph, layer, folding.coarse_in, folding.coarse_out,
                                         **dataclasses.asdict(folding.impl))


register(FCOp())
