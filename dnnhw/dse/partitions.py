"""The search for a network larger than the chip: its partitions, their weights reloading, their
plans and the batch (`dnnhw.partition`, `dnnhw.schedule`).

1. **Ranges.** For every pair of cut points (`partition.cuts`) a, b, the partition of layers
   a..b-1 gets the fastest plan the threshold pass finds for it on the whole chip
   (`search._Search.fastest`). A range whose slowest plan does not fit is tried with its last
   layer's weights reloaded by the smallest factor wr that makes it fit; a range that does not
   fit even so ends the ranges from a (any longer one holds all of it).
2. **Partitions.** Dynamic programming over the cut points picks the ranges that cover the
   network in the least time per batch (`schedule.partition_time`, each partition adding one
   reconfiguration), for a batch B: the one given, 1 for the latency objective, else the
   largest power of two up to `MAX_BATCH` whose buffers the board's DRAM holds.
3. **Plans.** Each chosen partition is explored again in full (`search.explore`: annealing,
   DSPs refilled), its candidates shared through one cache.
"""

import time
from dataclasses import dataclass

from .. import model, ops, schedule
from ..geometry import LOAD_BITS
from ..errors import UserError
from ..ir import Graph
from ..partition import Partition, cuts, reload_factors, reloaded, subgraph
from .search import DEFAULT_CAP, OBJECTIVES, NoPlanFits, Exploration, _Search, budget, explore
from .space import KINDS, Space


__all__ = ["MAX_BATCH", "PartitionPlan", "PartitionedExploration", "explore_partitions", "design"]

#: The largest batch the search picks by itself (fpgaConvNet's designs run batches of 256).
MAX_BATCH = 256

#: Annealing moves per partition (a partition's space is a few layers).
_STEPS = 300


@dataclass
class PartitionPlan:
    """One partition: its layers, its sub-graph (chunk 0 when it reloads), what the DSE chose
    for it, and what it costs per run."""
    part: Partition
    graph: Graph
    found: Exploration
    cost: schedule.PartitionCost


@dataclass
class PartitionedExploration:
    """What the partitioned search chose.

    Attributes
    ----------
    partitions : list of PartitionPlan
    perf : schedule.SchedulePerf
        One batch through them.
    clock_mhz : float
    ranges : int
        Candidate partitions evaluated.
    """
    partitions: list
    perf: schedule.SchedulePerf
    objective: str
    cap: float
    seed: int
    clock_mhz: float
    ranges: int = 0
    seconds: float = 0.0


class _Ranges:
    """The candidate partitions of `graph` on `board` and what each costs (step 1)."""

    def __init__(self, graph, board, cap, logic, reserve, cache, reloading=True):
        self.graph, self.board, self.cap, self.logic = graph, board, cap, logic
        self.reserve, self.cache, self.reloading = reserve, cache, reloading
        self.positions = [0, *cuts(graph), len(graph.layers)]
        self.costs, self.refused = {}, None
        for a in self.positions[:-1]:
            for b in (p for p in self.positions if p > a):
                found = self._fit(a, b)
                if found is None:
                    break
                self.costs[a, b] = found
                if found[0].reload > 1:
                    break

    def _fit(self, a, b):
        """(Partition, PartitionCost) of layers a..b-1, reloading the last layer's weights by
        the least factor that fits, or None when none does (the first range that cannot be
        cut smaller is remembered in `refused`)."""
        factors = [1, *(reload_factors(self.graph, self.graph.layers[b - 1])
                        if self.reloading else [])]
        cost = self.evaluate(Partition(a, b))
        if cost is not None:
            return Partition(a, b), cost
        lo, hi, found = 1, len(factors) - 1, None   # more chunks never need more: bisect
        while lo <= hi:
            mid = (lo + hi) // 2
            cost = self.evaluate(Partition(a, b, factors[mid]))
            if cost is None:
                lo = mid + 1
            else:
                found, hi = (Partition(a, b, factors[mid]), cost), mid - 1
        if found is None and self.refused is None and b == min(p for p in self.positions if p > a):
            self.refused = Partition(a, b, factors[-1])
        return found

    def evaluate(self, part):
        """The `PartitionCost` of `part` with its fastest threshold plan, or None if even its
        slowest plan does not fit."""
        sub = subgraph(self.graph, part)
        space = Space(sub, self.board.family, logic=self.logic, cache=self.cache)
        search = _Search(space, budget(self.board, self.cap, self.reserve(sub)))
        targets = sorted({int(c) for cand in space.candidates.values() for c in cand.cycles})
        slowest, used = search.threshold_plan(targets[-1])
        if slowest is None or not search.fits(used):
            return None
        _, plan, _ = search.fastest(targets)
        return cost_of(sub, part, plan, model.network(sub, plan))


def stored_bits(bits):
    """Bits an element of `bits` takes in memory and on the host link: whole bytes."""
    return -(-bits // 8) * 8


def cost_of(sub, part, plan, perf):
    """The `schedule.PartitionCost` of `part` (its sub-graph `sub`, chunk 0) under `plan`, of
    performance `perf` (`model.network`); feature maps count as stored, in whole bytes per
    element, and a reloaded layer's weights as its load's bus words (`geometry.WeightLoad`)."""
    tensor_in, tensor_out = sub.input, sub.output
    bits = {t: sub.shapes[t].size * stored_bits(sub.formats[t].bits)
            for t in (tensor_in, tensor_out)}
    weights = 0
    if part.reload > 1:
        last = reloaded(sub)
        weights = ops.get(last.op).weight_load(sub, last, plan[last.name]).beats * LOAD_BITS
    return schedule.PartitionCost(perf.cycles_per_frame, perf.latency, bits[tensor_in],
                                  bits[tensor_out], weights, part.reload)


def _choose(ranges, board, clock_mhz, batch):
    """The ranges covering the graph in the least time per batch of `batch` (step 2), as a
    list of (Partition, PartitionCost), or None when no cover exists."""
    route = schedule.path(board, clock_mhz, 2)
    hz = clock_mhz * 1e6
    best = {0: (0.0, [])}
    for b in ranges.positions[1:]:
        for a in ranges.positions:
            if a >= b or a not in best or (a, b) not in ranges.costs:
                continue
            part, cost = ranges.costs[a, b]
            seconds = (best[a][0] + schedule.partition_time(cost, batch, route).cycles / hz
                       + board.reconfiguration_s)
            if b not in best or seconds < best[b][0]:
                best[b] = (seconds, best[a][1] + [(part, cost)])
    covers = [best[b][1]] if (b := len(ranges.graph.layers)) in best else []
    if (0, b) in ranges.costs:
        covers.append([ranges.costs[0, b]])     # one partition: no reconfiguration at all
    covers = [c for c in covers if len(c) > 1 or c[0][0].reload == 1 or board.memory is not None]
    if not covers:
        return None
    return min(covers, key=lambda cover: schedule.schedule([c for _, c in cover], board,
                                                           clock_mhz, batch).batch_s)


def explore_partitions(graph, board, objective="throughput", cap=DEFAULT_CAP, seed=0,
                       clock_mhz=None, batch=None, logic_multipliers=True, reserve=None,
                       cache=None, reloading=True):
    """Partitions, weights reloading, plans and batch for the quantized `graph` on `board`.

    Parameters
    ----------
    objective : str
        "throughput" (frames per second at the batch) or "latency" (one frame, batch 1).
    batch : int, optional
        Frames per batch (default: 1 for latency, else the largest the DRAM holds, up to
        `MAX_BATCH`).
    reserve : callable, optional
        Sub-graph → resources taken off the budget for the board top around its accelerator.
    cache : dict, optional
        Layer candidates shared with other explorations (`Space`).
    reloading : bool
        Let a partition's last layer reload its weights (`build` cannot build that yet).

    Raises
    ------
    UserError
        If a layer does not fit even alone with its weights reloaded (naming it), the board
        cannot run several partitions, or no batch's buffers fit its DRAM.
    """
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective '{objective}' (known: {', '.join(OBJECTIVES)})")
    if batch is not None and batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}")
    start = time.perf_counter()
    clock = clock_mhz or board.clock_mhz
    cache = {} if cache is None else cache
    ranges = _Ranges(graph, board, cap, logic_multipliers, reserve or (lambda sub: None), cache,
                     reloading)
    if board.reconfiguration_s is None:
        raise UserError(f"network '{graph.name}' does not fit {board.name} in one design, and "
                        f"dnnhw has no figure for loading {board.name}'s bitstream, so it cannot "
                        "run it in partitions")
    chosen, batch = _batch_and_cover(ranges, graph, board, clock, objective, batch)
    plans = []
    for part, _ in chosen:
        sub = subgraph(graph, part)
        found = explore(sub, board, objective=objective, cap=cap, seed=seed, clock_mhz=clock,
                        steps=_STEPS, logic_multipliers=logic_multipliers,
                        reserve=ranges.reserve(sub), cache=cache)
        plans.append(PartitionPlan(part, sub, found, cost_of(sub, part, found.plan, found.perf)))
    perf = schedule.schedule([p.cost for p in plans], board, clock, batch)
    return PartitionedExploration(plans, perf, objective, cap, seed, clock, len(ranges.costs),
                                  time.perf_counter() - start)


def _batch_and_cover(ranges, graph, board, clock, objective, batch):
    """(the chosen ranges, the batch): `batch` as given, 1 for latency, else the largest power
    of two up to `MAX_BATCH` whose buffers fit the board's DRAM."""
    fixed = batch or (1 if objective == "latency" else None)
    trials = [fixed] if fixed else [MAX_BATCH >> k for k in range(MAX_BATCH.bit_length())]
    for b in trials:
        chosen = _choose(ranges, board, clock, b)
        if chosen is None:
            raise UserError(_no_cover(ranges, graph, board))
        memory = schedule.path(board, clock, len(chosen))
        if memory is None or memory.name != "DRAM" or board.memory is None:
            return chosen, b
        need = schedule.dram_bytes([c for _, c in chosen], b)
        if need <= board.memory.bytes:
            return chosen, b
    raise UserError(f"network '{graph.name}' in {len(chosen)} partitions needs {need:,} bytes "
                    f"of DRAM at batch {trials[-1]}; {board.name} has {board.memory.bytes:,}")


def _no_cover(ranges, graph, board):
    """The message for a graph no partitions cover: which smallest partition does not fit, by
    how much."""
    part = ranges.refused
    if part is None:                    # the whole network fits, reloading, in one partition
        part = ranges.costs[0, len(graph.layers)][0]
        return (f"it would fit only with layer '{graph.layers[-1].name}' reloading its weights "
                f"in {part.reload} chunks, and {board.name} has no memory to reload them from")
    names = [layer.name for layer in graph.layers[part.start:part.stop]]
    sub = subgraph(graph, part)
    space = Space(sub, board.family, logic=ranges.logic, cache=ranges.cache)
    limit = budget(board, ranges.cap, ranges.reserve(sub))
    targets = sorted({int(c) for cand in space.candidates.values() for c in cand.cycles})
    _, used = _Search(space, limit).threshold_plan(targets[-1])
    over = "; ".join(f"{int(u):,} {k.upper()} of {int(l):,}" for k, u, l in zip(KINDS, used, limit)
                     if u > l)
    what = (f"layer '{names[0]}' ({graph.layers[part.start].op})" if len(names) == 1 else
            f"layers {', '.join(names)} (which cannot be cut apart)")
    whose = "its" if len(names) == 1 else "the last one's"
    reload = f" with {whose} weights reloaded in {part.reload} chunks" if part.reload > 1 else ""
    unbuilt = ("" if ranges.reloading else
               f" (dnnhw builds weights reloading only for boards whose weights stream from "
               f"DRAM over AXI, such as pynq-z1 and zc706, not through {board.name}'s host link;"
               " `dnnhw explore` plans it)")
    return (f"network '{graph.name}': {what} do{'es' if len(names) == 1 else ''} not fit "
            f"{board.name} even alone, fully folded{reload}{unbuilt}: {over} at "
            f"{ranges.cap:.0%} of the board; fewer bits (--bits) or a larger board would help")


def design(graph, board, objective="throughput", cap=DEFAULT_CAP, seed=0, target_fps=None,
           clock_mhz=None, batch=None, reserve=None, reloading=True):
    """The DSE's design for the quantized `graph` on `board`: one accelerator
    (`search.Exploration`) when its slowest plan fits the chip, else partitions
    (`PartitionedExploration`, `explore_partitions`). `reserve`: sub-graph → resources its
    board top takes; `reloading` as for `explore_partitions`.

    Raises
    ------
    UserError
        As `explore` and `explore_partitions` do, and for `target_fps` with a network that
        does not fit in one design.
    """
    reserve = reserve or (lambda sub: None)
    cache = {}
    try:
        return explore(graph, board, objective=objective, cap=cap, seed=seed,
                       target_fps=target_fps, clock_mhz=clock_mhz, reserve=reserve(graph),
                       cache=cache)
    except NoPlanFits as error:
        if target_fps is not None:
            raise UserError(f"{error}; --target-fps plans one design only, and this network "
                            "needs partitions (leave it out to explore them)") from None
        whole = str(error)
    try:
        return explore_partitions(graph, board, objective=objective, cap=cap, seed=seed,
                                  clock_mhz=clock_mhz, batch=batch, reserve=reserve, cache=cache,
                                  reloading=reloading)
    except UserError as error:
        raise UserError(f"{whole}; in partitions: {error}") from None
