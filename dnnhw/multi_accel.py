"""Several networks on one chip (f-CNNx): an accelerator per network, side by side.

Each network keeps its own input and output stream (`i0`/`o0`, `i1`/`o1`, ...): the
accelerators share the device's resources, not their data paths, so each runs at its own rate
and none waits on another.
"""

from amaranth.hdl import Module
from amaranth.lib import wiring

from .accel import Accelerator


__all__ = ["MultiAccelerator"]


class MultiAccelerator(wiring.Component):
    """Quantized graphs, each with its plan, as one component of independent streams.

    Parameters
    ----------
    networks : list of (ir.Graph, plan)
        A quantized graph and its plan (layer name → Folding) per network; none may have
        writable layers (weights reloading).

    Members
    -------
    iK : In(...), oK : Out(...)
        Network K's input and output streams, as its `Accelerator`'s `i` and `o`.

    Attributes
    ----------
    accels : tuple of Accelerator
        Network K's accelerator is ``accels[K]``: its shapes, lanes, bits and predicted `perf`.
    """

    def __init__(self, networks):
        if not networks:
            raise ValueError("MultiAccelerator: no networks")
        self.accels = tuple(Accelerator(graph, plan) for graph, plan in networks)
        members = {}
        for k, accel in enumerate(self.accels):
            if "w" in accel.signature.members:
                raise ValueError(f"MultiAccelerator: network {k} has writable layers")
            members[f"i{k}"] = accel.signature.members["i"]
            members[f"o{k}"] = accel.signature.members["o"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for k, accel in enumerate(self.accels):
            m.submodules[f"net{k}"] = accel
            wiring.connect(m, wiring.flipped(getattr(self, f"i{k}")), accel.i)
            wiring.connect(m, accel.o, wiring.flipped(getattr(self, f"o{k}")))
        return m
