"""conv: a 2-D convolution with bias, requantization and a fused activation (`layers.conv.Conv`).

Folding: coarse_in | C_in/g, coarse_out | C_out/g, fine | kh·kw; or, for a grouped convolution,
coarse_group | g groups side by side with coarse_in = coarse_group·C_in/g and coarse_out =
coarse_group·C_out/g (a depthwise layer: coarse_in = coarse_out = coarse_group channels a beat).
Rate and latency are `geometry.ConvGeometry`'s: max(window, H_out·W_out·max(C_in/ci,
(C_out/co)·(C_in/(g/cg)/ci)·(kh·kw/f))) cycles per frame, window + FIFO + engine latency.
"""

import dataclasses
from dataclasses import dataclass

from .. import geometry, golden, pixel_timing, resources
from ..folding import Folding
from . import register
from ._base import divisors
from ._weighted import EngineSpec, WeightedOp


@dataclass(frozen=True)
class ConvSpec:
    """What a `Conv` block depends on besides its folding."""
    engine: EngineSpec
    shape: tuple
    out_channels: int
    groups: int
    kernel: tuple
    stride: tuple
    pads: tuple

    def geometry(self, folding):
        return geometry.conv(self.shape, self.out_channels, self.groups, self.kernel, self.stride,
                             self.pads, folding.coarse_in, folding.coarse_out, folding.fine,
                             leaky=self.engine.alpha is not None,
                             coarse_group=folding.coarse_group, scaled=self.engine.mult_bits > 0)


class ConvOp(WeightedOp):
    name = "conv"
    grouped = True
    attrs = "kernel (kh, kw), stride (sh, sw), pads (top, left, bottom, right), groups, act"

    def _dims(self, graph, layer):
        """(C_in/g, C_out/g, kh·kw)."""
        g = layer.attrs.get("groups", 1)
        kh, kw = layer.attrs["kernel"]
        return graph.in_shape(layer).c // g, graph.out_shape(layer).c // g, kh * kw

    def foldings(self, graph, layer):
        cin_g, cout_g, positions = self._dims(graph, layer)
        grouped = [Folding(cg * cin_g, cg * cout_g, f, coarse_group=cg)
                   for cg in divisors(layer.attrs.get("groups", 1))[1:]
                   for f in divisors(positions)]
        plain = [Folding(ci, co, f) for ci in divisors(cin_g) for co in divisors(cout_g)
                 for f in divisors(positions)]
        return sorted(plain + grouped, key=lambda f: (f.coarse_in, f.coarse_out, f.fine))

    def check_parallelism(self, graph, layer, folding):
        cin_g, cout_g, positions = self._dims(graph, layer)
        cg, groups = folding.coarse_group, layer.attrs.get("groups", 1)
        if cg != 1:
            if groups % cg or (folding.coarse_in, folding.coarse_out) != (cg * cin_g, cg * cout_g):
                raise ValueError(f"'{layer.name}' (conv): coarse_group={cg} must divide the "
                                 f"{groups} groups, with coarse_in={cg * cin_g} and "
                                 f"coarse_out={cg * cout_g} (whole groups), got {folding}")
            cin_g, cout_g = folding.coarse_in, folding.coarse_out
        factors = (folding.coarse_in, folding.coarse_out, folding.fine)
        for name, factor, total in zip(("coarse_in", "coarse_out", "fine"), factors,
                                       (cin_g, cout_g, positions)):
            if total % factor:
                raise ValueError(f"'{layer.name}' (conv): {name}={factor} must divide {total}")

    def geometry(self, graph, layer, folding):
        a = layer.attrs
        return geometry.conv(graph.in_shape(layer), graph.out_shape(layer).c, a.get("groups", 1),
                             a["kernel"], a["stride"], a["pads"], folding.coarse_in,
                             folding.coarse_out, folding.fine, coarse_group=folding.coarse_group,
                             **self.engine_options(graph, layer))

    def timing(self, graph, layer, folding, ins):
        g = self.geometry(graph, layer, folding)
        first, last = ins[0]
        if g.window is not None:
            shape = graph.in_shape(layer)
            _, last = pixel_timing.window_timing(g.window, shape.h, shape.w, first, last)
            last = last + g.fifo_latency
        return self.engine_timing(g.engine, last, graph.out_shape(layer).c, folding)

    def window(self, graph, layer, folding):
        g = self.geometry(graph, layer, folding)
        if g.window is None:
            return None
        return g.window, g.pixels * g.engine.cycles_per_pixel > g.window.cycles_per_frame

    def spec(self, graph, layer):
        a = layer.attrs
        return ConvSpec(self.engine_spec(graph, layer), tuple(graph.in_shape(layer)),
                        graph.out_shape(layer).c, a.get("groups", 1), tuple(a["kernel"]),
                        tuple(a["stride"]), tuple(a["pads"]))

    def features(self, spec, folding, family):
        t = resources.Features()
        g = spec.geometry(folding)
        positions = spec.kernel[0] * spec.kernel[1]
        if g.window is not None:
            resources.window_part(t, g.window, spec.engine.in_bits, family)
            if g.queue_depth:
                resources.fifo_part(t, positions * folding.coarse_in * spec.engine.in_bits,
                                    g.queue_depth, family)
        resources.engine_part(t, spec.engine, g.engine, positions, folding, family)
        return t

    def accumulate(self, graph, layer, x, weight, exact_bound=None):
        return golden.conv(x, weight, layer.attrs, exact_bound)

    def macs(self, graph, layer):
        _, cin_g, kh, kw = layer.weight.shape
        return graph.out_shape(layer).size * cin_g * kh * kw

    def block(self, graph, layer, folding):
        from ..layers.conv import Conv
        return Conv.from_layer(graph, layer, folding.coarse_in, folding.coarse_out, folding.fine,
                               coarse_group=folding.coarse_group,
                               **dataclasses.asdict(folding.impl))


register(ConvOp())
