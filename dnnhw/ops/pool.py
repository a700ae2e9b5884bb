"""maxpool, avgpool: pooling through a sliding window (`layers.pool.Pool`).

Folding: lanes dividing C. Cycles per frame H_pad·W_pad·C/lanes; latency the window's + 1 (max)
or + 3 (average). The output keeps the input's format. Average pooling divides exactly as
`golden.average` does (a reciprocal constant per divisor, then a round shift).
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, pixel_timing, resources
from . import register
from ._base import KeepsFormat, LanesOp


@dataclass(frozen=True)
class PoolSpec:
    """What a `Pool` block depends on besides its lanes; `reciprocals`, `shifts` and
    `out_positions` (H_out, W_out) for average pooling."""
    kind: str
    shape: tuple
    kernel: tuple
    stride: tuple
    pads: tuple
    bits: int
    reciprocals: tuple = ()
    shifts: tuple = ()
    out_positions: tuple = ()


class PoolOp(KeepsFormat, LanesOp):
    def __init__(self, kind):
        self.kind = kind
        self.name = f"{kind}pool"
        self.attrs = "kernel, stride, pads" + (", count_include_pad" if kind == "avg" else "")

    def geometry(self, graph, layer, folding):
        a = layer.attrs
        return geometry.pool(graph.in_shape(layer), a["kernel"], a["stride"], a["pads"],
                             folding.coarse_in, self.kind)

    def timing(self, graph, layer, folding, ins):
        g, shape = self.geometry(graph, layer, folding), graph.in_shape(layer)
        first, last = pixel_timing.window_timing(g.window, shape.h, shape.w, *ins[0])
        return first + g.stages, last + g.stages

    def window(self, graph, layer, folding):
        return self.geometry(graph, layer, folding).window, False

    def spec(self, graph, layer):
        a, shape = layer.attrs, graph.in_shape(layer)
        common = (self.kind, tuple(shape), tuple(a["kernel"]), tuple(a["stride"]),
                  tuple(a["pads"]), graph.formats[layer.inputs[0]].bits)
        if self.kind == "max":
            return PoolSpec(*common)
        divisors = golden.avg_divisors(shape, self._average_attrs(a))
        reciprocals = sorted({golden.avg_multiplier(int(n)) for n in set(divisors.flat)})
        return PoolSpec(*common, tuple(m for m, _ in reciprocals),
                        tuple(sorted({k for _, k in reciprocals})), divisors.shape)

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes, bits = folding.coarse_in, spec.bits
        walk = geometry.window(spec.shape, spec.kernel, spec.stride, spec.pads, lanes)
        positions = spec.kernel[0] * spec.kernel[1]
        resources.window_part(t, walk, bits, family)
        t.add("part:reduce", 1)
        t.add("handshake", 2)
        if self.kind == "max":
            t.add("cmp", lanes * (positions - 1) * bits)
            resources.mux(t, lanes * (positions - 1) * bits, 2, family)
            t.add("reg", lanes * bits + 1)
            return t
        sum_bits = bits + resources.counter_bits(positions)
        t.add("add_tree", lanes * (positions - 1) * sum_bits)
        t.add("reg", lanes * sum_bits + 1)
        resources.average_scale_part(t, sum_bits, bits, lanes, spec.reciprocals, spec.shifts,
                                     walk.groups, spec.out_positions, family)
        return t

    @staticmethod
    def _average_attrs(attrs):
        return {"kernel": tuple(attrs["kernel"]), "stride": tuple(attrs["stride"]),
                "pads": tuple(attrs["pads"]),
                "count_include_pad": attrs.get("count_include_pad", False)}

    def run(self, graph, layer, xs):
        a = layer.attrs
        if self.kind == "max":
            fmt_in = graph.formats[layer.inputs[0]]
            return golden.window_view(xs[0], a["kernel"], a["stride"], a["pads"],
                                      fmt_in.min).max(axis=(3, 4))
        sums = golden.window_view(xs[0], a["kernel"], a["stride"], a["pads"], 0).sum(axis=(3, 4))
        return golden.average(sums, golden.avg_divisors(graph.in_shape(layer), a),
                              graph.formats[layer.output].bits)

    def run_float(self, graph, layer, xs):
        a = layer.attrs
        if self.kind == "max":
            return golden.window_view(xs[0], a["kernel"], a["stride"], a["pads"],
                                      -np.inf).max(axis=(3, 4))
        sums = golden.window_view(xs[0], a["kernel"], a["stride"], a["pads"], 0).sum(axis=(3, 4))
        return sums / golden.avg_divisors(graph.in_shape(layer), a)

    def block(self, graph, layer, folding):
        from ..layers.pool import Pool
        a = layer.attrs
        return Pool(graph.in_shape(layer), a["kernel"], a["stride"], a["pads"],
                    graph.formats[layer.inputs[0]].bits, folding.coarse_in, kind=self.kind,
                    count_include_pad=a.get("count_include_pad", False))


register(PoolOp("max"))
register(PoolOp("avg"))
