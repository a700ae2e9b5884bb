"""The random stall model both simulators share (`dnnhw.sim.amaranth_sim`, `dnnhw.sim.bench`).

A producer offers its next beat on a cycle unless its port's `Stalls` holds it back, then keeps
valid up, payload unchanged, until the beat is taken. A consumer raises ready on a cycle unless its
port's `Stalls` holds it down. Each port draws from its own generator, seeded by the run's seed
and the port's name, so a port stalls on the same cycles in amaranth.sim and in cocotb, whatever
the other ports do.
"""

import random


__all__ = ["Stalls", "default_timeout"]


class Stalls:
    """Seeded random stalls of one stream port.

    Parameters
    ----------
    probability : float
        Chance that the port holds back on a cycle, in [0, 1).
    seed : int
        The run's seed.
    port : str
        The port's name.

    Calling the object draws one cycle: True when the port holds back.
    """

    def __init__(self, probability, seed, port):
        if not 0 <= probability < 1:
            raise ValueError(f"stall probability of port {port!r} must be in [0, 1), got {probability}")
        self.probability = probability
        self._rng = random.Random(f"{seed}/{port}")

    def __call__(self):
        return self._rng.random() < self.probability


def default_timeout(inputs, outputs):
    """Cycles a run may take before it fails: 200 + 20 per beat in (`inputs`: {port: beats}) and
    out (`outputs`: {port: number of beats})."""
    return 200 + 20 * (sum(map(len, inputs.values())) + sum(outputs.values()))
