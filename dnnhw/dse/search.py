"""The search: folding per layer for the best design within a board's budget.

1. **Threshold pass** (constructive). For a target of T cycles per frame, every layer takes its
   cheapest folding that runs in ≤ T cycles (cost = resources weighted by the budget, the
   weights raised for a resource the plan overuses). Layers only share the budget, so the
   smallest T whose plan fits — found by bisection over the layers' distinct cycle counts — is
   the fastest design this pass can build; relieving the bottleneck is lowering T. Logic starts
   dearer than DSPs and block RAM (`_PRICE`), so multipliers move to LUTs only when DSPs run out.
   A plan the prices cannot fit is repaired by steepest descent on its excess over the budget.
2. **Simulated annealing** from that plan, seeded (so deterministic): random changes of one
   layer's folding (the bottleneck's half of the time), kept when they fit the budget and
   improve the objective, or by chance that falls with the temperature.
3. The **Pareto front** of frames per second against resources comes from the threshold pass
   over a sweep of T.

Objectives: ``throughput`` (fewest cycles per frame, then fewest resources), ``latency`` (the
fewest batch-1 cycles, `model.network`), and a target frame rate with least resources.
"""

import math
import random
import time
from dataclasses import dataclass, field

import numpy as np

from .. import model
from ..errors import UserError
from .space import KINDS, Space


__all__ = ["OBJECTIVES", "Exploration", "NoPlanFits", "explore", "shortfall", "budget",
           "DEFAULT_CAP"]

OBJECTIVES = ("throughput", "latency")

#: Fraction of each of the board's resources a design may use.
from ..defaults import CAP as DEFAULT_CAP

_WEIGHT_ROUNDS = 12
_PARETO_POINTS = 40

#: Starting price of each resource per unit of its budget, in `KINDS` order: logic is dearer, so
#: that multipliers go to DSP blocks first and to LUTs only when the DSPs run out.
_PRICE = np.array([8.0, 8.0, 1.0, 1.0])


@dataclass
class Exploration:
    """What the search chose, and why.

    Attributes
    ----------
    plan : dict
        Layer name → `Folding`.
    perf : model.NetworkPerf
        Its cycles per frame, bottleneck and batch-1 latency.
    resources, limit : dict
        LUT, FF, DSP, BRAM the design uses, and the budget (board × cap) it had.
    binding : str
        What stops a faster design: a resource ("dsp", "bram", "lut", "ff") or
        "layer NAME at its fastest folding".
    pareto : list of dict
        Designs of the threshold sweep: {cycles_per_frame, lut, ff, dsp, bram, pareto}.
    evaluated : int
        Plans whose resources were evaluated.
    """
    plan: dict
    perf: model.NetworkPerf
    resources: dict
    limit: dict
    binding: str
    objective: str
    cap: float
    seed: int
    pareto: list = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0


class NoPlanFits(UserError):
    """The graph's slowest design exceeds the budget (`used`, `limit`: LUT, FF, DSP, BRAM)."""

    def __init__(self, message, used, limit):
        super().__init__(message)
        self.used, self.limit = used, limit


class _Search:
    def __init__(self, space, limit):
        self.space, self.limit = space, limit
        self.evaluated = 0

    def resources(self, plan):
        self.evaluated += 1
        return self.space.resources(plan)

    def fits(self, used):
        return bool(np.all(used <= self.limit))

    def threshold_plan(self, target):
        """The cheapest plan whose every layer runs in ≤ `target` cycles, as (plan, used), or
        (None, name of a layer that cannot).

        Each layer takes its cheapest candidate at the current prices; while the plan does not
        fit, each resource's price is multiplied by its use over its budget to a power that
        halves every round (a resource in short supply gets dearer, one left over cheaper), so
        that the layers trade DSPs, logic and memory among them until the plan fits."""
        weights = _PRICE / np.maximum(self.limit, 1)
        plan = used = closest = None
        for round_ in range(_WEIGHT_ROUNDS):
            plan, slow = self.cheapest(target, weights)
            if plan is None:
                return None, slow
            used = self.resources(plan)
            if self.fits(used):
                return plan, used
            if closest is None or self.excess(used) < self.excess(closest[1]):
                closest = (plan, used)
            ratio = np.maximum(used, 1) / np.maximum(self.limit, 1)
            weights = weights * ratio ** (2.0 / (1 + round_))
        return self.repair(*closest, target)

    def cheapest(self, target, weights):
        """(plan, None): each layer's cheapest candidate within `target` cycles at the prices
        `weights` (per unit of each resource, in `KINDS` order); (None, name of a layer that
        cannot) when one is slower than `target` at its fastest."""
        plan = {}
        for layer in self.space.layers:
            cand = self.space.candidates[layer.name]
            first = int(np.searchsorted(-cand.cycles, -target, side="left"))
            if first == len(cand.foldings):
                return None, layer.name
            cheapest = int(np.argmin(cand.resources[first:] @ weights))
            plan[layer.name] = cand.foldings[first + cheapest]
        return plan, None

    def excess(self, used):
        """How far `used` is over the budget: Σ max(0, used - limit) / limit."""
        return float(np.sum(np.maximum(used - self.limit, 0) / np.maximum(self.limit, 1)))

    def repair(self, plan, used, target):
        """Steepest descent on `excess` from a plan over budget: each step changes the one layer
        whose change (to a candidate still within `target` cycles) reduces it most, resources
        used breaking ties; (plan, used) when nothing improves any more. A step is judged on the
        whole plan's resources, lane converters and FIFOs included, which the layer's own
        figures leave out: one that does not improve them ends the descent."""
        plan = dict(plan)
        while not self.fits(used):
            now = (self.excess(used), float(np.sum(used / np.maximum(self.limit, 1))))
            best = (*now, None, None)
            for layer in self.space.layers:
                cand = self.space.candidates[layer.name]
                first = int(np.searchsorted(-cand.cycles, -target, side="left"))
                here = cand.resources[self.space.index(layer.name, plan[layer.name])]
                trial = used - here + cand.resources[first:]
                excess = np.sum(np.maximum(trial - self.limit, 0) / np.maximum(self.limit, 1), axis=1)
                size = np.sum(trial / np.maximum(self.limit, 1), axis=1)
                k = int(np.lexsort((size, excess))[0])
                if (excess[k], size[k]) < best[:2]:
                    best = (float(excess[k]), float(size[k]), layer.name, cand.foldings[first + k])
            if best[2] is None:
                break
            trial_plan = {**plan, best[2]: best[3]}
            trial = self.resources(trial_plan)
            if (self.excess(trial), float(np.sum(trial / np.maximum(self.limit, 1)))) >= now:
                break
            plan, used = trial_plan, trial
        return plan, used

    def fastest(self, targets):
        """Bisection over sorted `targets` (cycle counts) for the smallest that fits."""
        lo, hi, best = 0, len(targets) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            plan, used = self.threshold_plan(targets[mid])
            if plan is not None and self.fits(used):
                best, hi = (targets[mid], plan, used), mid - 1
            else:
                lo = mid + 1
        return best

    def binding(self, targets, target):
        """What keeps the next faster target out of reach."""
        faster = [t for t in targets if t < target]
        if not faster:
            name = self.space.cycles(self.threshold_plan(target)[0])[1]
            return f"layer {name} at its fastest folding"
        plan, used = self.threshold_plan(faster[-1])
        if plan is None:
            return f"layer {used} at its fastest folding"
        return KINDS[int(np.argmax(used / np.maximum(self.limit, 1)))]


def budget(board, cap, reserve=None):
    """LUT, FF, DSP, BRAM a design may take on `board`: `cap` of each, less `reserve`."""
    reserve = reserve or {}
    return np.array([math.floor(cap * board.resources[k]) - reserve.get(k, 0) for k in KINDS],
                    dtype=np.int64)


def explore(graph, board, objective="throughput", cap=DEFAULT_CAP, seed=0, target_fps=None,
            clock_mhz=None, steps=2000, logic_multipliers=True, reserve=None, cache=None):
    """Choose a folding per layer of the quantized `graph` for `board`.

    Parameters
    ----------
    objective : str
        "throughput" or "latency" (ignored with `target_fps`).
    cap : float
        Fraction of each of the board's resources the design may use.
    target_fps : float, optional
        Find the cheapest design that reaches this frame rate instead.
    clock_mhz : float, optional
        The clock for `target_fps` (default the board's).
    steps : int
        Annealing moves (the latency objective evaluates the network timing at each).
    logic_multipliers : bool
        Let layers build some multipliers from logic (LUTs) when DSPs run out.
    reserve : dict, optional
        Resources taken off the budget for what surrounds the accelerator (the board top).
    cache : dict, optional
        Layer candidates to share with other explorations of sub-graphs (`Space`).

    Raises
    ------
    NoPlanFits
        If even the slowest design does not fit (saying by how much and which boards it would
        fit).
    UserError
        If `target_fps` is out of reach (saying what is reachable).
    """
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective '{objective}' (known: {', '.join(OBJECTIVES)})")
    if not 0 < cap <= 1:
        raise UserError(f"the utilisation cap must be in (0, 1], got {cap}")
    start = time.perf_counter()
    space = Space(graph, board.family, logic=logic_multipliers, cache=cache)
    limit = budget(board, cap, reserve)
    search = _Search(space, limit)
    targets = sorted({int(c) for cand in space.candidates.values() for c in cand.cycles})
    slowest, used = search.threshold_plan(targets[-1])
    if not search.fits(used):
        raise NoPlanFits(_does_not_fit(graph, board, cap, used, limit), used, limit)
    clock = (clock_mhz or board.clock_mhz) * 1e6
    if target_fps is not None:
        target = math.floor(clock / target_fps)
        plan, used = search.threshold_plan(target)
        if plan is None or not search.fits(used):
            best = search.fastest(targets)[0]
            raise UserError(f"{target_fps:g} frames/s needs ≤ {target} cycles per frame; the "
                            f"fastest design that fits {board.name} runs {best} cycles "
                            f"({clock / best:.1f} frames/s)")
        binding = f"target {target_fps:g} frames/s"
    else:
        target, plan, used = search.fastest(targets)
        binding = search.binding(targets, target)
        rng = random.Random(seed)
        plan = _anneal(search, plan, objective, rng, steps, graph)
        plan, used = _fill_dsps(search, plan)
    pareto = _pareto(search, [t for t in targets if t >= target])
    return Exploration(plan, model.network(graph, plan), dict(zip(KINDS, map(int, used))),
                       dict(zip(KINDS, map(int, limit))), binding, objective, cap, seed, pareto,
                       search.evaluated, time.perf_counter() - start)


def explore_together(graphs, board, rates, cap=DEFAULT_CAP, clock_mhz=None, reserve=None,
                     caches=None, logic_multipliers=True):
    """The cheapest plans of several quantized `graphs` that reach their frame `rates` together
    within one budget on `board`, as an `Exploration` each (its `limit` the shared budget); None
    when a graph cannot reach its rate or no plans found fit together.

    `_Search.threshold_plan`'s price loop over every graph's layers at once: one price per
    resource for all of them, raised where their sum is over the budget, so that the graphs
    trade DSPs, logic and memory among them (no repair step). `caches`: a `Space` cache per
    graph, to share between calls."""
    start = time.perf_counter()
    clock = (clock_mhz or board.clock_mhz) * 1e6
    limit = budget(board, cap, reserve)
    searches = [_Search(Space(g, board.family, logic=logic_multipliers, cache=c), limit)
                for g, c in zip(graphs, caches or [None] * len(graphs))]
    targets = [math.floor(clock / rate) for rate in rates]
    weights = _PRICE / np.maximum(limit, 1)
    for round_ in range(_WEIGHT_ROUNDS):
        plans = [search.cheapest(target, weights)[0] for search, target in zip(searches, targets)]
        if any(plan is None for plan in plans):
            return None
        used = [search.resources(plan) for search, plan in zip(searches, plans)]
        total = np.sum(used, axis=0)
        if np.all(total <= limit):
            seconds = time.perf_counter() - start
            return [Exploration(plan, model.network(g, plan), dict(zip(KINDS, map(int, u))),
                                dict(zip(KINDS, map(int, limit))), f"target {rate:g} frames/s",
                                "throughput", cap, 0, [], search.evaluated, seconds)
                    for g, plan, u, rate, search in zip(graphs, plans, used, rates, searches)]
        weights = weights * (np.maximum(total, 1) / np.maximum(limit, 1)) ** (2.0 / (1 + round_))
    return None


def shortfall(graph, board, cycles, cap=DEFAULT_CAP, reserve=None, logic_multipliers=True):
    """How far the next faster design than `cycles` per frame is from fitting `board`: the
    excess over the budget (Σ over resources of the overuse over the limit) of the cheapest
    plan the threshold pass builds for the largest candidate cycle count below `cycles`; 0 when
    it fits, inf when no layer folding is faster. Lowering a layer's word length lowers it
    continuously, long before a faster design fits (`dnnhw.precision`)."""
    space = Space(graph, board.family, logic=logic_multipliers)
    search = _Search(space, budget(board, cap, reserve))
    faster = [int(c) for cand in space.candidates.values() for c in cand.cycles if c < cycles]
    if not faster:
        return np.inf
    plan, used = search.threshold_plan(max(faster))
    return np.inf if plan is None else search.excess(used)


def _energy(search, plan, used, objective, graph):
    """The annealing's objective (lower is better): log of the cycles (throughput) or of the
    batch-1 latency, plus a small term for the resources used (at `_PRICE`) so that ties go to
    the cheaper design, and to DSPs rather than logic."""
    usage = float(np.sum(_PRICE * used / np.maximum(search.limit, 1)))
    if objective == "latency":
        return math.log(model.network(graph, plan).latency) + 1e-3 * usage
    return math.log(search.space.cycles(plan)[0]) + 1e-3 * usage


def _anneal(search, plan, objective, rng, steps, graph):
    """Simulated annealing from `plan`; returns the best plan seen."""
    space, names = search.space, [layer.name for layer in search.space.layers]
    steps = steps if objective == "throughput" else max(steps // 10, 50)
    current = dict(plan)
    energy = _energy(search, current, search.resources(current), objective, graph)
    best, best_energy = dict(current), energy
    for step in range(steps):
        temperature = 0.05 * (1e-3 ** (step / max(steps - 1, 1)))
        name = space.cycles(current)[1] if rng.random() < 0.5 else rng.choice(names)
        cand = space.candidates[name]
        here = space.index(name, current[name])
        there = min(max(here + rng.randint(-3, 3), 0), len(cand.foldings) - 1)
        if there == here:
            continue
        trial = {**current, name: cand.foldings[there]}
        used = search.resources(trial)
        if not search.fits(used):
            continue
        e = _energy(search, trial, used, objective, graph)
        if e <= energy or rng.random() < math.exp((energy - e) / temperature):
            current, energy = trial, e
            if e < best_energy:
                best, best_energy = dict(trial), e
    return best


def _fill_dsps(search, plan):
    """`plan` with as many of its logic multipliers moved back to DSP blocks as the budget's
    DSPs left over allow, layer by layer in graph order: the same cycles for fewer LUTs. (The
    candidates offer only a few counts of logic multipliers per folding, `space._logic_variants`;
    this picks the exact count.) Returns (plan, used)."""
    plan = dict(plan)
    for layer in search.space.layers:
        folding = plan[layer.name]
        lo, hi = 0, folding.impl.logic_multipliers  # the fewest that fit lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            trial = {**plan, layer.name: folding.with_impl(logic_multipliers=mid)}
            if search.fits(search.resources(trial)):
                hi = mid
            else:
                lo = mid + 1
        plan[layer.name] = folding.with_impl(logic_multipliers=hi)
    return plan, search.resources(plan)


def _pareto(search, targets):
    """Threshold plans over a geometric sweep of `targets`, marked where no other point is both
    faster and no larger in every resource."""
    picks = sorted({targets[round(k)] for k in np.geomspace(1, len(targets), _PARETO_POINTS) - 1})
    points = []
    for target in picks:
        plan, used = search.threshold_plan(target)
        if plan is None or not search.fits(used):
            continue
        point = {"cycles_per_frame": search.space.cycles(plan)[0], **dict(zip(KINDS, map(int, used)))}
        if point not in points:
            points.append(point)
    for p in points:
        p["pareto"] = not any(q is not p and q["cycles_per_frame"] <= p["cycles_per_frame"]
                              and all(q[k] <= p[k] for k in KINDS)
                              and (q["cycles_per_frame"], *(q[k] for k in KINDS))
                              != (p["cycles_per_frame"], *(p[k] for k in KINDS))
                              for q in points)
    return points


def _does_not_fit(graph, board, cap, used, limit):
    """The message for a graph whose slowest design exceeds the budget."""
    from ..boards import BOARDS

    over = [f"{int(u)} {k.upper()} of {int(l)} ({cap:.0%} of {board.resources[k]})"
            for k, u, l in zip(KINDS, used, limit) if u > l]
    need = dict(zip(KINDS, used))
    fits = [b.name for b in BOARDS.values() if b.family == board.family
            and all(need[k] <= cap * b.resources[k] for k in KINDS)]
    hint = (f"; it would fit {', '.join(fits)}" if fits else
            "; no board of this family holds it: fewer bits (--bits) shrink its weight memories")
    return (f"network '{graph.name}' does not fit {board.name} even fully folded: it needs "
            f"{'; '.join(over)}{hint}")
