"""The streaming accelerator of a quantized graph: one block per layer, wired as the graph says.

`Accelerator(graph, plan)` instantiates each layer's block from `dnnhw.layers` with the plan's
folding, puts a `LaneConverter` on every edge whose producer and consumer differ in lanes, and
a `Fork` on every tensor read by several layers, with a `StreamFIFO` on each branch deep enough
that the branches cannot deadlock: the connections `model.edges` lists.
"""

import itertools

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import golden, model
from .layers.activation import Activation
from .layers.add import Add
from .layers.common import pixel_layout
from .layers.concat import Concat
from .layers.conv import Conv
from .layers.fc import FullyConnected
from .layers.fifo import StreamFIFO
from .layers.fork import Fork
from .layers.global_pool import GlobalAveragePool
from .layers.lanes import LaneConverter
from .layers.lstm import LSTMCell
from .layers.pool import Pool


__all__ = ["Accelerator", "build_block"]


def build_block(graph, layer, folding):
    """The block computing `layer` of the quantized `graph` with `folding` (a `model.Folding`)."""
    ci, co, fine = folding.coarse_in, folding.coarse_out, folding.fine
    shape, out = graph.in_shape(layer), graph.formats[layer.output]
    fmt_in, a = graph.formats[layer.inputs[0]], layer.attrs
    if layer.op == "conv":
        return Conv.from_layer(graph, layer, ci, co, fine, folding.logic_multipliers,
                               folding.block_weights, folding.paired)
    if layer.op == "fc":
        return FullyConnected.from_layer(graph, layer, ci, co, folding.logic_multipliers,
                                         folding.block_weights, folding.paired)
    if layer.op in ("maxpool", "avgpool"):
        return Pool(shape, a["kernel"], a["stride"], a["pads"], fmt_in.bits, ci,
                    kind=layer.op[:3], count_include_pad=a.get("count_include_pad", False))
    if layer.op == "global_avgpool":
        return GlobalAveragePool(shape, fmt_in.bits, ci)
    if layer.op == "add":
        fa, fb = (graph.formats[t] for t in layer.inputs)
        return Add(shape, ci, fa.bits, fa.frac, fb.bits, fb.frac, out.bits, out.frac)
    if layer.op == "concat":
        return Concat([graph.shapes[t] for t in layer.inputs], ci,
                      [graph.formats[t] for t in layer.inputs], out)
    if layer.op == "clamp":
        lo, hi = golden.clamp_bounds(a["lo"], a["hi"], out)
        return Activation(shape, fmt_in.bits, out.bits, ci, "clamp", lo=lo, hi=hi)
    if layer.op == "leaky_relu":
        return Activation(shape, fmt_in.bits, out.bits, ci, "leaky_relu",
                          alpha_q=golden.leaky_alpha(a["alpha"]))
    if layer.op == "lstm":
        return LSTMCell.from_layer(graph, layer, ci, co)
    if layer.op in model.ACTIVATION_LATENCY:
        return Activation(shape, fmt_in.bits, out.bits, ci, layer.op, frac_in=fmt_in.frac,
                          frac_out=out.frac)
    raise NotImplementedError(layer.op)


class Accelerator(wiring.Component):
    """The whole network as one stream component.

    Parameters
    ----------
    graph : ir.Graph
        A quantized graph.
    plan : dict of layer name → model.Folding, optional
        Folding per layer; a layer missing from it gets `model.Folding()`.

    Members
    -------
    i : In(stream.Signature(pixel_layout(input bits, input lanes)))
        Input frames in stream order; `input_lanes` channels per beat.
    o : Out(stream.Signature(pixel_layout(output bits, output lanes)))
        Output frames; `output_lanes` channels per beat.
    """

    def __init__(self, graph, plan=None):
        self.graph = graph
        self.plan = {layer.name: (plan or {}).get(layer.name, model.Folding()) for layer in graph.layers}
        self.blocks = {layer.name: build_block(graph, layer, self.plan[layer.name])
                       for layer in graph.layers}
        self.perf = model.network(graph, self.plan)
        first = graph.consumers(graph.input)[0]
        self.input_lanes = model.in_lanes(first, self.plan[first.name])
        last = graph.producer(graph.output)
        self.output_lanes = model.out_lanes(last, self.plan[last.name])
        fmt_in, fmt_out = graph.formats[graph.input], graph.formats[graph.output]
        super().__init__({"i": In(stream.Signature(pixel_layout(fmt_in.bits, self.input_lanes))),
                          "o": Out(stream.Signature(pixel_layout(fmt_out.bits, self.output_lanes)))})

    def elaborate(self, platform):
        m = Module()
        graph = self.graph
        for index, block in enumerate(self.blocks.values()):
            m.submodules[f"layer{index}"] = block
        names = itertools.count()
        links = {}
        for edge in self.perf.edges:
            links.setdefault(edge.tensor, []).append(edge)
        for tensor, readers in links.items():
            source = (wiring.flipped(self.i) if tensor == graph.input
                      else self.blocks[graph.producer(tensor).name].o)
            if len(readers) > 1:
                fork = Fork(graph.formats[tensor].bits, readers[0].lanes_from, len(readers))
                m.submodules[f"fork{next(names)}"] = fork
                wiring.connect(m, source, fork.i)
                branches = [getattr(fork, f"o{k}") for k in range(len(readers))]
            else:
                branches = [source]
            for edge, branch in zip(readers, branches):
                out = self._adapt(m, names, branch, edge)
                sink = (wiring.flipped(self.o) if edge.reader is None
                        else getattr(self.blocks[edge.reader], edge.port))
                wiring.connect(m, out, sink)
        return m

    def _adapt(self, m, names, source, edge):
        """`source` queued and converted to the reader's lanes, as `edge` says: the FIFO on the
        wider side of the converter."""
        bits = self.graph.formats[edge.tensor].bits

        def queue(source):
            if not edge.fifo_depth:
                return source
            fifo = StreamFIFO(bits, edge.fifo_lanes, edge.fifo_depth)
            m.submodules[f"fifo{next(names)}"] = fifo
            wiring.connect(m, source, fifo.i)
            return fifo.o

        if edge.lanes_from > edge.lanes_to:
            source = queue(source)
        if edge.lanes_from != edge.lanes_to:
            converter = LaneConverter(self.graph.shapes[edge.tensor].c, bits, edge.lanes_from,
                                      edge.lanes_to)
            m.submodules[f"lanes{next(names)}"] = converter
            wiring.connect(m, source, converter.i)
            source = converter.o
        if edge.lanes_from <= edge.lanes_to:
            source = queue(source)
        return source
