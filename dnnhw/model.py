"""The performance model: rate and latency of every layer and of the network, for a plan.

Plain Python over the graph IR and the op registry (no Amaranth), so that the DSE can evaluate
thousands of foldings per second. A layer's cycles per frame and latency are its op's geometry
(`Op.geometry`, `dnnhw.geometry`): the same records its block reads to set its
`cycles_per_frame` and `latency` attributes, which are exact against cocotb + Verilator
measurements with both streams unstalled (`tests/test_model.py`). The network's batch-1
latency follows one frame pixel by pixel through the ops' `timing` and the interconnect's
converters and FIFOs (`dnnhw.interconnect`).
"""

from dataclasses import dataclass, field


from . import ops, pixel_timing
from .folding import Folding
from .interconnect import edges


__all__ = ["Folding", "LayerPerf", "NetworkPerf", "foldings", "check",
           "in_lanes", "out_lanes", "cycles_per_frame", "latency", "network", "lead"]


def foldings(graph, layer):
    """Every valid folding of `layer`, sorted by (coarse_in, coarse_out, fine) (`Op.foldings`).

    Raises
    ------
    ValueError
        For an unknown op.
    """
    return ops.get(layer.op).foldings(graph, layer)


def check(graph, layer, folding):
    """Raise ValueError unless `folding` is valid for `layer` (`ops.check`)."""
    ops.check(graph, layer, folding)


def in_lanes(layer, folding):
    """Channels per input beat: `coarse_in` (the lanes for layers without weights)."""
    return ops.get(layer.op).in_lanes(folding)


def out_lanes(layer, folding):
    """Channels per output beat: `coarse_out` (the lanes for layers without weights); an
    LSTM's hidden states leave one per beat."""
    return ops.get(layer.op).out_lanes(folding)


def cycles_per_frame(graph, layer, folding):
    """Cycles between frames with both streams unstalled (the layer's initiation interval).

    Raises
    ------
    ValueError
        For an invalid folding (`check`) or an unknown op.
    """
    return ops.geometry(graph, layer, folding).cycles_per_frame


def latency(graph, layer, folding):
    """Cycles from the first input beat's transfer to the first output beat's, unstalled.

    Raises
    ------
    ValueError
        For an invalid folding (`check`) or an unknown op.
    """
    return ops.geometry(graph, layer, folding).latency


@dataclass(frozen=True)
class LayerPerf:
    """One layer's folding, cycles per frame and latency."""
    folding: Folding
    cycles_per_frame: int
    latency: int


@dataclass(frozen=True)
class NetworkPerf:
    """The network's rate and batch-1 latency (`network`).

    Attributes
    ----------
    cycles_per_frame : int
        The slowest layer's cycles per frame: the initiation interval of frames back to back.
    bottleneck : str
        That layer's name (the first in graph order on a tie).
    latency : int
        Batch 1: cycles from the first input beat's transfer to the last output beat's, with
        the pipeline empty, the input offered every cycle and the output always ready.
    first_output : int
        Cycles from the first input beat to the first output beat, likewise.
    layers : dict
        Layer name → `LayerPerf`.
    edges : list of Edge
    """
    cycles_per_frame: int
    bottleneck: str
    latency: int
    first_output: int
    layers: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)


def network(graph, plan):
    """The rate and batch-1 latency of `graph` with the foldings of `plan` (layer name →
    `Folding`; a layer missing from it takes ``Folding()``).

    cycles_per_frame = max over layers of `cycles_per_frame` (a pipeline runs at its slowest
    stage; lane converters, forks and FIFOs are never slower than the layers beside them).
    The latency follows one frame through the pipeline pixel by pixel (`_timing`): each layer
    starts a pixel when the input it needs has arrived *and* it has finished the previous one,
    so a layer behind a slow producer waits for that producer's rows, not just its own latency.

    Raises
    ------
    ValueError
        For an invalid folding or an unknown op.
    """
    perf = {}
    for layer in graph.layers:
        folding = plan.get(layer.name, Folding())
        perf[layer.name] = LayerPerf(folding, cycles_per_frame(graph, layer, folding),
                                     latency(graph, layer, folding))
    bottleneck = max(graph.layers, key=lambda l: perf[l.name].cycles_per_frame).name
    links = edges(graph, plan)
    first, last = _timing(graph, perf, links)
    return NetworkPerf(perf[bottleneck].cycles_per_frame, bottleneck, int(last), int(first),
                       perf, links)


def lead(graph, plan):
    """Cycles an idle accelerator of `graph` under `plan` takes from its first input beat being
    offered to taking it: the padding its first layers' sliding windows walk ahead of the
    first input pixel, a position per C/lanes beats (0 without padding). `NetworkPerf.latency`
    counts from the taking; frames back to back hide the walk behind the frame before."""
    walks = [ops.get(layer.op).window(graph, layer, plan.get(layer.name, Folding()))
             for layer in graph.consumers(graph.input)]
    return max([(w.pads[0] * w.cols + w.pads[1]) * w.groups for w, _ in filter(None, walks)],
               default=0)


def _timing(graph, perf, links):
    """(first output beat, last output beat) of one frame, from the first input beat."""
    fold = {name: p.folding for name, p in perf.items()}
    _, (first, last) = pixel_timing.arrivals(graph, fold, links)
    return first[0], last[-1]
