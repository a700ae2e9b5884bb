"""slice: channels `start` to `stop` - 1 of a tensor (`layers.slice.Slice`).

An ONNX Split or Slice over channels, and the part of a shuffled tensor one holds
(`frontend.canonical`); a partition whose input packs several tensors (`dnnhw.partition`)
takes each back out with a slice. Folding: lanes dividing C, `start` and `stop`. Cycles per
frame C·H·W/lanes (every input beat); latency 1. The values pass unchanged: the output's format is the input's, or the
layer's ``format`` attribute where it has one (a packed input carries each tensor's values as
integers).
"""

from dataclasses import dataclass
from math import gcd

from .. import geometry, resources
from ..ir import Format
from . import register
from ._base import LanesOp


@dataclass(frozen=True)
class SliceSpec:
    """Input channels, the range kept, bits in and out."""
    channels: int
    start: int
    stop: int
    bits_in: int
    bits_out: int


class SliceOp(LanesOp):
    name = "slice"
    attrs = "start, stop (channels), format (optional: the output's `Format` fields)"
    scaled_formats = True

    def _channels(self, graph, layer):
        a = layer.attrs
        return [gcd(graph.shapes[layer.inputs[0]].c, a["start"], a["stop"])]

    def geometry(self, graph, layer, folding):
        return geometry.slice_(graph.in_shape(layer), folding.coarse_in)

    def timing(self, graph, layer, folding, ins):
        (first, last), = ins
        a, lanes = layer.attrs, folding.coarse_in
        dropped_after = (graph.in_shape(layer).c - a["stop"]) // lanes
        return first + a["start"] // lanes + 1, last - dropped_after + 1

    def output_format(self, graph, layer, bits, measured):
        if "format" in layer.attrs:
            return Format(*layer.attrs["format"])
        return graph.formats[layer.inputs[0]]

    def spec(self, graph, layer):
        a = layer.attrs
        return SliceSpec(graph.in_shape(layer).c, a["start"], a["stop"],
                         graph.formats[layer.inputs[0]].bits, graph.formats[layer.output].bits)

    def features(self, spec, folding, family):
        t = resources.Features()
        resources.counter(t, spec.channels // folding.coarse_in)
        t.add("cmp_const", 2 * resources.counter_bits(spec.channels // folding.coarse_in))
        t.add("reg", folding.coarse_in * spec.bits_out + 1)
        t.add("handshake", 2)
        return t

    def run(self, graph, layer, xs):
        return xs[0][layer.attrs["start"]:layer.attrs["stop"]]

    def run_float(self, graph, layer, xs):
        kept = xs[0][layer.attrs["start"]:layer.attrs["stop"]]
        if "format" in layer.attrs:         # the packed integers of a tensor of that format
            return kept * 2.0 ** -layer.attrs["format"][1]
        return kept

    def block(self, graph, layer, folding):
        from ..layers.slice import Slice
        a = layer.attrs
        return Slice(graph.in_shape(layer), a["start"], a["stop"], folding.coarse_in,
                     graph.formats[layer.inputs[0]].bits, graph.formats[layer.output].bits)


register(SliceOp())
