"""The design space of one graph on one device family: every layer's foldings with their cycles
per frame and resources, and the resources of a whole plan.

Plain arithmetic over `dnnhw.model` and `dnnhw.resources` (no Amaranth), cached per layer so a
search evaluates a plan in microseconds.
"""

from dataclasses import dataclass

import numpy as np

from .. import interconnect, model, ops
from ..resources import (Resources, fifo_resources, fork_resources, lane_converter_resources,
                         layer_resources, pairs_fit_one_dsp, weight_memory_kind)


__all__ = ["KINDS", "Candidates", "Space"]

#: The resources a budget limits, in `Resources` field order.
KINDS = ("lut", "ff", "dsp", "bram")


@dataclass(frozen=True)
class Candidates:
    """One layer's foldings (with every choice of logic multipliers, `_logic_variants`, of
    paired multipliers where a packed pair fits one DSP, and of weight ROMs in block RAM where
    that changes anything, not with paired multipliers), sorted by cycles per frame, fastest
    last.

    Attributes
    ----------
    foldings : list of Folding
    cycles : ndarray of int, shape (n,)
    resources : ndarray of int, shape (n, 4)
        LUT, FF, DSP, BRAM of each folding.
    """
    foldings: list
    cycles: np.ndarray
    resources: np.ndarray


class Space:
    """`graph`'s design space on `family`.

    Parameters
    ----------
    graph : ir.Graph
        A quantized graph.
    family : str
        "xc7", "ecp5" or "ice40".
    logic : bool
        Also consider building some multipliers from logic (LUTs) instead of DSPs.
    cache : dict, optional
        Candidates computed before, shared by the spaces of sub-graphs of one graph (the
        partitions the DSE tries): a layer's candidates depend only on the layer, its input and
        output, which a sub-graph keeps (keyed by name and output shape, which weights
        reloading changes).
    """

    def __init__(self, graph, family, logic=True, cache=None):
        self.graph, self.family = graph, family
        self.layers = graph.layers
        self._by_name = {layer.name: layer for layer in graph.layers}
        self.candidates, self._index, self._others = {}, {}, {}
        cache = {} if cache is None else cache
        for layer in self.layers:
            key = (layer.name, graph.out_shape(layer), family, logic)
            if key not in cache:
                cand = _candidates(graph, layer, family, logic)
                cache[key] = cand, {f: j for j, f in enumerate(cand.foldings)}
            self.candidates[layer.name], self._index[layer.name] = cache[key]
        self._edge_cache = {}

    def index(self, name, folding):
        """Position of `folding` in layer `name`'s candidates."""
        return self._index[name][folding]

    def layer_cost(self, name, folding):
        """(cycles per frame, LUT/FF/DSP/BRAM array) of layer `name` under `folding`, which need
        not be one of its candidates (e.g. a count of logic multipliers they do not offer)."""
        j = self._index[name].get(folding)
        if j is not None:
            cand = self.candidates[name]
            return cand.cycles[j], cand.resources[j]
        if (name, folding) not in self._others:
            layer = self._by_name[name]
            self._others[name, folding] = (
                model.cycles_per_frame(self.graph, layer, folding),
                _vector(layer_resources(self.graph, layer, folding, self.family)))
        return self._others[name, folding]

    def cycles(self, plan):
        """(cycles per frame, bottleneck layer name) of `plan` (the first slowest in graph order)."""
        best, worst = -1, None
        for layer in self.layers:
            c = self.layer_cost(layer.name, plan[layer.name])[0]
            if c > best:
                best, worst = int(c), layer.name
        return best, worst

    def edge_vector(self, plan):
        """LUT, FF, DSP, BRAM of the lane converters, forks and branch FIFOs `plan` needs."""
        total = np.zeros(4, dtype=np.int64)
        by_tensor = {}
        for edge in interconnect.edges(self.graph, plan):
            by_tensor.setdefault(edge.tensor, []).append(edge)
        for tensor, links in by_tensor.items():
            bits, channels = self.graph.formats[tensor].bits, self.graph.shapes[tensor].c
            key = (bits, channels, tuple((e.lanes_from, e.lanes_to, e.fifo_depth) for e in links))
            if key not in self._edge_cache:
                self._edge_cache[key] = _vector(self._tensor_links(bits, channels, links))
            total += self._edge_cache[key]
        return total

    def _tensor_links(self, bits, channels, links):
        total = Resources()
        if len(links) > 1:
            total = total + fork_resources(bits, links[0].lanes_from, len(links), self.family)
        for edge in links:
            if edge.lanes_from != edge.lanes_to:
                total = total + lane_converter_resources(channels, bits, edge.lanes_from,
                                                         edge.lanes_to, self.family)
            if edge.fifo_depth:
                total = total + fifo_resources(bits, edge.fifo_lanes, edge.fifo_depth,
                                               self.family)
        return total

    def resources(self, plan):
        """LUT, FF, DSP, BRAM of the whole accelerator under `plan`, as an int array."""
        total = self.edge_vector(plan)
        for layer in self.layers:
            total = total + self.layer_cost(layer.name, plan[layer.name])[1]
        return total


def _candidates(graph, layer, family, logic):
    """`layer`'s `Candidates`; a reloaded chunk's (`partition.subgraph`) all writable."""
    foldings = model.foldings(graph, layer)
    if layer.attrs.get("reload"):
        foldings = [f.with_impl(writable=True) for f in foldings]
    if pairs_fit_one_dsp(graph, layer, family):
        foldings += [f.with_impl(paired=True) for f in foldings
                     if f.coarse_out // f.coarse_group % 2 == 0]
    if logic:
        foldings = [v for f in foldings for v in _logic_variants(layer, f)]
    foldings, resources = _with_block_weights(graph, layer, foldings, family)
    cycles = np.array([model.cycles_per_frame(graph, layer, f) for f in foldings])
    order = np.lexsort((resources.sum(axis=1), -cycles))
    return Candidates([foldings[k] for k in order], cycles[order], resources[order])


def _logic_variants(layer, folding):
    """`folding` with 0, 1, 2, 4, … and a quarter, half, three quarters and all of its
    multipliers built from logic (conv and fc layers; others have no multipliers)."""
    if not ops.get(layer.op).weighted or folding.impl.paired:
        return [folding]
    m = folding.multipliers
    counts = {0, m, m // 4, m // 2, 3 * m // 4} | {1 << k for k in range(m.bit_length()) if 1 << k < m}
    return [folding.with_impl(logic_multipliers=k) for k in sorted(counts)]


def _with_block_weights(graph, layer, foldings, family):
    """`foldings`, and for conv and fc layers each also with its weight ROMs in block RAM when
    that costs differently; with their resources as an (n, 4) array."""
    out, vectors = [], []
    for folding in foldings:
        plain = _vector(layer_resources(graph, layer, folding, family))
        out.append(folding)
        vectors.append(plain)
        # paired ROMs stay in LUTs (the model misprices their BRAM); ROMs already in block RAM
        # cost the same either way
        if (ops.get(layer.op).weighted and not folding.impl.paired
                and weight_memory_kind(graph, layer, folding, family) != "block"):
            block = folding.with_impl(block_weights=True)
            vector = _vector(layer_resources(graph, layer, block, family))
            if np.any(vector != plain):
                out.append(block)
                vectors.append(vector)
    return out, np.array(vectors)


def _vector(resources):
    return np.array([getattr(resources, kind) for kind in KINDS], dtype=np.int64)
