"""Word lengths per layer from each layer's measured sensitivity: ``--layer-bits auto``.

`choose` looks for the fastest design whose fixed-point accuracy stays within a tolerance of
the network's at one word length for all (``--bits``), by measurement, not by a rule:

1. **Uniform word lengths.** Every width from ``--bits`` down to `quant.MIN_BITS`, each measured
   (the golden model on the user's frames) and, when within the tolerance, explored (the DSE's
   frames per second on the board).
2. **Greedy descent per layer**, from ``--bits`` and from the fastest uniform width within the
   tolerance: each move lowers one weighted layer's weights and output by one or more bits,
   the move that most reduces `dse.shortfall` (how far the next faster design is from
   fitting) per accuracy lost on the combined widths, so a move counts before it is large
   enough to buy a faster design; a layer whose next width would break the tolerance is not
   lowered again. After each move the DSE explores the design anew.
3. The choice is the fastest design seen (ties: the more accurate, then the first found).

The metric is top-1 accuracy on labelled frames, or without labels top-1 agreement with the
float network on the frames. Every design it reports was measured and explored; the search
costs one golden run and one threshold pass per trial, and one exploration per move
(docs/precision.md).
"""

from typing import NamedTuple

import numpy as np

from . import dse, golden, ops, quant
from .dse import DEFAULT_CAP
from .errors import UserError


__all__ = ["Choice", "choose", "top1_score"]


class Choice(NamedTuple):
    """What `choose` found.

    Attributes
    ----------
    bits : int
        The word length of every layer not in `layer_bits` (and of the input).
    layer_bits : dict
        Layer name → bits, for the layers below `bits`.
    metric : str
        "accuracy" (on labels) or "agreement" (top-1 with the float network).
    reference_bits : int
        The asked uniform width (--bits).
    reference, score : float
        The metric at `reference_bits`, and of the choice.
    fps, reference_fps : float
        Predicted frames per second of the choice, and of the asked uniform width.
    uniform : list of dict
        {bits, score, fps} per uniform width; fps None when outside the tolerance.
    steps : list of dict
        The greedy descents' moves, in order: {start, layer, bits, score, fps}.
    """
    bits: int
    layer_bits: dict
    metric: str
    reference_bits: int
    reference: float
    score: float
    fps: float
    reference_fps: float
    uniform: list
    steps: list

    def summary(self, tolerance):
        """The choice as report.json's ``quant.precision``."""
        return {"tolerance": tolerance, **self._asdict()}


def top1_score(outputs, labels=None, reference=None):
    """Fraction of frames whose largest output is their label, or else `reference`'s largest."""
    top = np.asarray(outputs).reshape(len(outputs), -1).argmax(axis=1)
    want = (labels if labels is not None
            else np.asarray(reference).reshape(len(top), -1).argmax(axis=1))
    return float(np.mean(top == want))


def choose(graph, calibration, frames, labels, bits, tolerance, board, clock_mhz=None,
           cap=DEFAULT_CAP, seed=0, reserve=None, progress=None):
    """The fastest mixed-width quantization of the float `graph` on `board` within `tolerance`
    (a fraction: 0.01 is one point) of its `bits`-wide score on `frames` (accuracy on `labels`,
    or with None top-1 agreement with the float network), as a `Choice`. `calibration`: the
    frames formats come from; `cap`, `seed`, `clock_mhz` as for `dse.explore`; `reserve(q)`:
    the resources a quantized graph's board top takes; `progress(message)` reports each stage.

    Raises
    ------
    UserError
        If `tolerance` is negative, or the network does not fit one design at `bits`.
    """
    if not tolerance >= 0:
        raise UserError(f"--tolerance must be at least 0, got {tolerance:g}")
    say = progress or (lambda message: None)
    search = _Search(graph, calibration, frames, labels,
                     _Planner(board, clock_mhz or board.clock_mhz, cap, seed, reserve))
    reference, ref_rate = search.measure(bits, {})
    if ref_rate is None:
        raise UserError(f"--layer-bits auto plans one design: at {bits} bits the network does "
                        f"not fit {board.name} in one")
    floor = reference - tolerance - 1e-12
    say(f"--layer-bits auto: {search.metric} {100 * reference:.2f}% at {bits} bits; "
        f"searching widths down to {quant.MIN_BITS} bits within {100 * tolerance:g} points")
    uniform = [{"bits": bits, "score": reference, "fps": ref_rate}]
    for b in range(bits - 1, quant.MIN_BITS - 1, -1):
        score = search.score(b, {})
        uniform.append({"bits": b, "score": score,
                        "fps": search.measure(b, {})[1] if score >= floor else None})
    within = [u for u in uniform if u["fps"] is not None]
    fastest = max(within, key=lambda u: (u["fps"], u["score"]))
    steps, best = [], (ref_rate, reference, 0, bits, {})
    for u in within:
        best = max(best, (u["fps"], u["score"], 0, u["bits"], {}), key=_rank)
    for start in sorted({bits, fastest["bits"]}, reverse=True):
        say(f"--layer-bits auto: lowering layers from {start} bits")
        for assign, name, score, rate in search.descend(start, floor):
            steps.append({"start": start, "layer": name, "bits": assign[name], "score": score,
                          "fps": rate})
            best = max(best, (rate, score, -len(steps), start, dict(assign)), key=_rank)
            say(f"--layer-bits auto: {name} at {assign[name]} bits: {search.metric} "
                f"{100 * score:.2f}%, {rate:,.0f} frames/s")
    rate, score, _, base, assign = best
    return Choice(base, assign, search.metric, bits, reference, score, rate, ref_rate, uniform,
                  steps)


def _rank(candidate):
    """Order of `choose`'s candidates: faster, then more accurate, then found earlier."""
    return candidate[:3]


class _Planner:
    """The DSE's answers for quantized graphs on one board."""

    def __init__(self, board, clock_mhz, cap, seed, reserve):
        self.board, self.clock_mhz, self.cap, self.seed = board, clock_mhz, cap, seed
        self.reserve = reserve or (lambda q: None)

    def cycles(self, q):
        """Cycles per frame of the design `dse.explore` chooses, None when none fits."""
        try:
            found = dse.explore(q, self.board, cap=self.cap, seed=self.seed,
                                clock_mhz=self.clock_mhz, reserve=self.reserve(q))
        except UserError:
            return None
        return found.perf.cycles_per_frame

    def shortfall(self, q, cycles):
        return dse.shortfall(q, self.board, cycles, cap=self.cap, reserve=self.reserve(q))


class _Search:
    """Quantizations of one float graph, their scores and their designs, each measured once."""

    def __init__(self, graph, calibration, frames, labels, planner):
        self.graph, self.calibration, self.frames = graph, calibration, frames
        self.labels, self.planner = labels, planner
        self.metric = "accuracy" if labels is not None else "agreement"
        self.reference = None if labels is not None else golden.run(graph, frames, fixed=False)
        self.ranges = quant.peaks(graph, calibration)
        self.weighted = [layer.name for layer in graph.layers if ops.get(layer.op).weighted]
        self._scores, self._cycles = {}, {}

    def quantized(self, bits, assign):
        return quant.quantize(self.graph, self.calibration, bits=bits, layer_bits=assign,
                              ranges=self.ranges)

    def score(self, bits, assign):
        key = (bits, tuple(sorted(assign.items())))
        if key not in self._scores:
            out = golden.run(self.quantized(bits, assign), self.frames)
            self._scores[key] = top1_score(out, self.labels, self.reference)
        return self._scores[key]

    def cycles(self, bits, assign):
        key = (bits, tuple(sorted(assign.items())))
        if key not in self._cycles:
            self._cycles[key] = self.planner.cycles(self.quantized(bits, assign))
        return self._cycles[key]

    def measure(self, bits, assign):
        """(score, predicted frames/s or None when no single design fits)."""
        cycles = self.cycles(bits, assign)
        rate = None if cycles is None else self.planner.clock_mhz * 1e6 / cycles
        return self.score(bits, assign), rate

    def descend(self, bits, floor):
        """Greedy descent from uniform `bits` (module docstring, step 2): yields each step's
        assignment, the layer it lowered, its score and frames/s."""
        assign, lowest = {}, {name: quant.MIN_BITS for name in self.weighted}
        score, _ = self.measure(bits, assign)
        cycles = self.cycles(bits, assign)
        gap = self.planner.shortfall(self.quantized(bits, assign), cycles)
        slack = 0.5 / len(self.frames)
        while gap < np.inf:
            moves = []
            for name in self.weighted:
                for b in range(assign.get(name, bits) - 1, lowest[name] - 1, -1):
                    trial = {**assign, name: b}
                    trial_score = self.score(bits, trial)
                    if trial_score < floor:
                        lowest[name] = b + 1
                        break
                    saving = gap - self.planner.shortfall(self.quantized(bits, trial), cycles)
                    if saving > 0:
                        loss = max(score - trial_score, 0) + slack
                        moves.append((saving / loss, name, trial, trial_score))
            if not moves:
                return
            _, name, assign, score = max(moves, key=lambda move: move[0])
            new = self.cycles(bits, assign)
            if new is None:
                return
            cycles = min(cycles, new)
            gap = self.planner.shortfall(self.quantized(bits, assign), cycles)
            yield assign, name, score, self.planner.clock_mhz * 1e6 / new
