"""concat: tensors of one height and width joined over channels (`layers.concat.Concat`).

Folding: lanes dividing every input's C. Cycles per frame H·W·ΣC_i/lanes; latency 1. The output
takes the coarsest of the inputs' formats (or, of scaled inputs, the format the model states);
each input is round-shifted to it, multiplied by its scale ratio first where the scales are not
powers of two (`golden.concat_constants`), and saturated.

With the attribute ``pack`` the inputs' integers pass unchanged, each keeping its own format
inside a tensor of the widest input's bits and frac 0: a partition writes several tensors in
one (`dnnhw.partition`), which the next takes apart with `slice`.
"""

from dataclasses import dataclass

import numpy as np

from .. import geometry, golden, resources
from ..ir import Format
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class ConcatSpec:
    """(bits, multiplier, round shift to the output) per input, the output's bits, the most
    channels of an input."""
    inputs: tuple
    bits_out: int
    channels: int


class ConcatOp(LanesOp):
    name = "concat"
    attrs = "inputs concatenated over channels; pack (keep each input's integers)"
    scaled_formats = True

    def geometry(self, graph, layer, folding):
        return geometry.concat([graph.shapes[t] for t in layer.inputs], folding.coarse_in)

    def timing(self, graph, layer, folding, ins):
        return ins[0][0] + 1, np.max([last for _, last in ins], axis=0) + 1

    def output_format(self, graph, layer, bits, measured):
        fmts = [graph.formats[t] for t in layer.inputs]
        if layer.attrs.get("pack"):
            return Format(max(f.bits for f in fmts), 0)
        if all(f == fmts[0] for f in fmts):
            return fmts[0]
        stated = graph.format_hints.get(layer.output)
        if any(f.scaled for f in fmts) and stated is not None:
            return stated
        return Format(max(f.bits for f in fmts), min(f.frac for f in fmts))

    def _formats_in(self, graph, layer):
        """The inputs' formats as the block sees them: packing keeps the integers (frac 0)."""
        fmts = [graph.formats[t] for t in layer.inputs]
        return [Format(f.bits, 0) for f in fmts] if layer.attrs.get("pack") else fmts

    def spec(self, graph, layer):
        fmt_out = graph.formats[layer.output]
        fmts = self._formats_in(graph, layer)
        constants = golden.concat_constants(fmts, fmt_out)
        return ConcatSpec(tuple((f.bits, r, s) for f, (r, s) in zip(fmts, constants)),
                          fmt_out.bits, max(graph.shapes[t].c for t in layer.inputs))

    def features(self, spec, folding, family):
        t = resources.Features()
        lanes = folding.coarse_in
        t.add("part:concat", 1)
        resources.counter(t, len(spec.inputs))
        resources.counter(t, spec.channels // lanes)
        for bits, mult, shift in spec.inputs:
            if mult != 1:
                resources.constant_multipliers(t, lanes, bits, mult, family)
                bits += mult.bit_length()
            resources.saturate(t, lanes, resources.round_shift(t, lanes, bits, shift),
                               spec.bits_out)
        resources.mux(t, lanes * spec.bits_out, len(spec.inputs), family)
        t.add("reg", lanes * spec.bits_out + 1)
        t.add("handshake", len(spec.inputs) + 1)
        return t

    def run(self, graph, layer, xs):
        fmt_out = graph.formats[layer.output]
        constants = golden.concat_constants(self._formats_in(graph, layer), fmt_out)
        parts = [golden.round_shift(v * r, s) for v, (r, s) in zip(xs, constants)]
        return golden.saturate(np.concatenate(parts, axis=0), fmt_out)

    def run_float(self, graph, layer, xs):
        if layer.attrs.get("pack"):     # each tensor as the integers of its format
            xs = [x * 2.0 ** graph.formats[t].frac for x, t in zip(xs, layer.inputs)]
        return np.concatenate(xs, axis=0)

    def block(self, graph, layer, folding):
        from ..layers.concat import Concat
        return Concat([graph.shapes[t] for t in layer.inputs], folding.coarse_in,
                      self._formats_in(graph, layer), graph.formats[layer.output])


register(ConcatOp())
