"""f-CNNx: ``dnnhw build A.onnx B.onnx ...``, several networks on one chip.

1. **Allocation** (`allocate`): each network's rate is a common factor s times its reference:
   its `--target-fps NAME=FPS` where given, else its share of what it reaches alone on the
   whole board (its `--weight NAME=W` over the sum of the weights, 1 each by default). The DSE
   plans the networks together as cheaply as reaches s times their references
   (`dse.explore_together`, else one after another with `dse.explore`), and s is the largest
   whose plans fit the board together (bisection): the targets are met first, and what is left
   raises every network's rate by the same factor. When even s = 1 does not fit, or a target is
   out of reach alone, the build ends in one line naming what cannot be met.
2. **Build** (`build_multi`): a `MultiAccelerator` (network K on streams iK, oK), each
   network's record in design/netK/, the allocation in design/multi.json, Yosys' counts, and a
   report with each network's target, predicted rate and resources.

There is no board top for several networks yet (the UART protocol has no network id): the
build is the accelerators' Verilog, verified by `dnnhw verify`, and synthesized.
"""

import json
import math
import time
from typing import NamedTuple

import numpy as np

from . import dse, frontend, golden, record, report
from .errors import UserError


__all__ = ["Allocation", "network_names", "parse_named", "allocate", "build_multi",
           "is_multi", "load_multi"]

#: Bisection on the common factor stops when its bounds are this close (ratio).
_PRECISION = 1.01


class Allocation(NamedTuple):
    """The DSE's choice for every network (in the order given)."""
    found: list             # dse.Exploration per network
    scale: float            # the common factor s over each network's reference rate
    reference: list         # each network's reference rate, frames/s
    fastest: list           # what each reaches alone on the whole board, frames/s
    resources: dict         # LUT, FF, DSP, BRAM of all of them
    limit: dict             # the budget (board × cap, less the reserve)


def network_names(paths):
    """Each network's name: its file's stem. Raises UserError when two share one."""
    names = [path.stem for path in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"two networks are named {twice[0]} (the ONNX file's stem): rename one")
    return names


def parse_named(items, names, option="--target-fps"):
    """`option`'s NAME=VALUE items (--target-fps NAME=FPS, --weight NAME=W) as {name: value}.

    Raises
    ------
    UserError
        For an item that is not NAME=VALUE with a positive VALUE, or names no network.
    """
    named = {}
    for item in items or ():
        name, _, text = str(item).rpartition("=")
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not name or not value > 0:
            raise UserError(f"{option} '{item}': give NAME=VALUE with VALUE > 0 for each of "
                            f"several networks (names: {', '.join(names)})")
        if name not in names:
            raise UserError(f"{option} '{item}': no network named {name} "
                            f"(names: {', '.join(names)})")
        named[name] = value
    return named


def allocate(graphs, names, board, targets, cap=dse.DEFAULT_CAP, seed=0, clock_mhz=None,
             reserve=None, weights=None, progress=lambda message: None):
    """The `Allocation` of `board` between the quantized `graphs` (named `names`) that meets
    `targets` ({name: fps}) and then raises every network's rate by the largest common factor;
    a network without a target is referred to its share of its rate alone, `weights` ({name:
    weight}, 1 where missing) over their sum.

    Raises
    ------
    UserError
        If a network does not fit the board even alone and at its slowest, a target is out of
        reach alone, or the networks do not fit together at their targets (or slowest).
    """
    clock = (clock_mhz or board.clock_mhz) * 1e6
    caches = [{} for _ in graphs]
    fastest = []
    for name, graph, cache in zip(names, graphs, caches):
        progress(f"exploring {name} alone on {board.name}")
        try:
            alone = dse.explore(graph, board, cap=cap, seed=seed, clock_mhz=clock_mhz,
                                reserve=reserve, cache=cache)
        except UserError as error:
            raise UserError(f"{name}: {error}") from None
        fastest.append(clock / alone.perf.cycles_per_frame)
    short = [f"{n} {targets[n]:,.0f} fps (alone it reaches {f:,.0f})"
             for n, f in zip(names, fastest) if targets.get(n, 0) > f]
    if short:
        raise UserError(f"out of reach on {board.name} even alone: {'; '.join(short)}")
    weight = [(weights or {}).get(n, 1.0) for n in names]
    reference = [targets.get(n, f * w / sum(weight)) for n, f, w in zip(names, fastest, weight)]

    def plans(scale):
        """Every network's plan at `scale` × its reference, and their resources in all; (None,
        None) when they do not fit. First all at once (`dse.explore_together`), then one after
        another in the order given and the reverse, each planned (`dse.explore`, its repair
        step included) in what the ones before it left."""
        rates = [scale * r for r in reference]
        found = dse.explore_together(graphs, board, rates, cap, clock_mhz, reserve, caches)
        for order in (range(len(graphs)), reversed(range(len(graphs)))):
            if found is not None:
                break
            found, placed = [None] * len(graphs), dict(reserve or {})
            try:
                for k in order:
                    found[k] = dse.explore(graphs[k], board, cap=cap, seed=seed,
                                           clock_mhz=clock_mhz, target_fps=rates[k],
                                           reserve=placed, cache=caches[k])
                    placed = {r: placed.get(r, 0) + found[k].resources[r] for r in dse.KINDS}
            except UserError:
                found = None
        if found is None:
            return None, None
        return found, np.sum([[f.resources[r] for r in dse.KINDS] for f in found], axis=0)

    low = 1.0 if targets else 1e-9          # 1e-9: every network at its slowest
    best = (low, *plans(low))
    if best[1] is None:
        raise UserError(_does_not_fit(names, graphs, board, [low * r for r in reference],
                                      targets, cap, clock_mhz, reserve, caches))
    high = min(f / r for f, r in zip(fastest, reference))
    progress(f"allocating {board.name} between {len(graphs)} networks")
    scale = high
    while high / low > _PRECISION:
        found, used = plans(scale)
        if found is not None:
            low, best = scale, (scale, found, used)
        else:
            high = scale
        scale = math.sqrt(low * high)
    scale, found, used = best
    limit = dse.budget(board, cap, reserve)
    return Allocation(found, scale, reference, fastest, dict(zip(dse.KINDS, map(int, used))),
                      dict(zip(dse.KINDS, map(int, limit))))


def _does_not_fit(names, graphs, board, rates, targets, cap, clock_mhz, reserve, caches):
    """The one line that says the networks do not fit `board` together at `rates`: each one's
    cheapest plan alone, and the resources their sum is over by."""
    at = "at their targets" if targets else "even at their slowest"
    alone = []
    for name, graph, rate, cache in zip(names, graphs, rates, caches):
        try:
            alone.append(dse.explore(graph, board, cap=cap, clock_mhz=clock_mhz, target_fps=rate,
                                     reserve=reserve, cache=cache))
        except UserError as error:
            return f"{name}: {error}"
    limit = alone[0].limit
    used = {k: sum(f.resources[k] for f in alone) for k in dse.KINDS}
    over = [f"{k.upper()} {used[k]:,} of {limit[k]:,}" for k in dse.KINDS if used[k] > limit[k]]
    each = "; ".join(f"{n} {f.resources['dsp']:,} DSP, {f.resources['lut']:,} LUT, "
                     f"{f.resources['bram']:,} BRAM" for n, f in zip(names, alone))
    together = ", ".join(over) or "each resource within the budget, but no plans found share it"
    return (f"{', '.join(names)} do not fit {board.name} together {at}: the cheapest plan of "
            f"each alone needs {each}; together {together}; lower a target or choose a larger "
            "board")


# -- the build -----------------------------------------------------------------------------------


def is_multi(folder):
    """Whether the build folder `folder` holds several networks."""
    return (folder / "design" / "multi.json").is_file()


def load_multi(folder):
    """(report, design, multi.json, [quantized graph per network]) of a multi-network build."""
    design = folder / "design"
    facts = json.loads((design / "multi.json").read_text())
    return (json.loads((folder / "report.json").read_text()),
            json.loads((design / "design.json").read_text()), facts,
            [record.read_graph(design / f"net{k}") for k in range(len(facts["networks"]))])


def build_multi(folder, networks, board, targets, weights, bits, calibration, clock, synth, cap,
                seed):
    """Build the ONNX files `networks` together for `board` into `folder` (`dnnhw.build.build`'s
    staging folder); returns the report dict. `targets`, `weights`: --target-fps NAME=FPS and
    --weight NAME=W items.

    Raises
    ------
    UserError
        For a network dnnhw cannot read or build, targets that cannot be met, or a design
        larger than the device.
    """
    from amaranth.back import verilog

    from .build import TOP, front, progress, write_report
    from .multi_accel import MultiAccelerator
    from .toolchain.yosys import FAMILIES, synthesize

    started = time.perf_counter()
    names = network_names(networks)
    wanted = parse_named(targets, names)
    shares = parse_named(weights, names, "--weight")
    reads = [front(path, bits, calibration) for path in networks]
    graphs = [read.quantized for read in reads]
    chosen = allocate(graphs, names, board, wanted, cap, seed, clock, weights=shares,
                      progress=progress)

    progress("generating Verilog")
    accel = MultiAccelerator([(g, f.plan) for g, f in zip(graphs, chosen.found)])
    (folder / "rtl").mkdir()
    (folder / "rtl" / f"{TOP}.v").write_text(verilog.convert(accel, name=TOP, emit_src=False))
    design = folder / "design"
    summaries, ports, shapes = [], {}, []
    for k, (name, path, read, graph, found, sub) in enumerate(zip(
            names, networks, reads, graphs, chosen.found, accel.accels)):
        (design / f"net{k}").mkdir(parents=True)
        sample = read.frames[:64]
        error = golden.float_error(frontend.onnxruntime_outputs(path, read.graph, sample),
                                   golden.run(graph, sample))
        search = {key: v for key, v in vars(found).items()
                  if key not in ("plan", "perf", "resources")}
        record.write(design / f"net{k}", record.Record(
            str(path), bits, str(calibration) if calibration else None, error, graph,
            read.frames, board.name, clock, search, found.plan))
        ports[f"i{k}"] = {"lanes": sub.input_lanes, "bits": graph.formats[graph.input].bits}
        ports[f"o{k}"] = {"lanes": sub.output_lanes, "bits": graph.formats[graph.output].bits}
        shapes.append({"input_shape": list(graph.shapes[graph.input]),
                       "output_shape": list(graph.shapes[graph.output]),
                       "predicted": {"cycles_per_frame": found.perf.cycles_per_frame,
                                     "latency_cycles": found.perf.latency}})
        summary = report.design_summary(graph, board, found, clock)
        summaries.append({"name": name, "source": str(path), "target_fps": wanted.get(name),
                          "fastest_alone_fps": chosen.fastest[k],
                          "met": name not in wanted or summary["predicted"]["fps"] >= wanted[name],
                          "float_error": error, **summary})
    (design / "design.json").write_text(json.dumps(
        {"top": TOP, "ports": ports, "networks": shapes}, indent=2))
    facts = {"networks": names, "targets": wanted, "weights": shares, "scale": chosen.scale,
             "reference_fps": chosen.reference, "resources": chosen.resources,
             "limit": chosen.limit}
    (design / "multi.json").write_text(json.dumps(facts, indent=2))

    notes = [r.warning for r in reads if r.warning is not None]
    notes.append("no board top for several networks yet (the UART protocol has no network "
                 "id): rtl/ holds the accelerators, network K on streams iK and oK")
    synthesized = None
    if synth:
        progress(f"synthesizing with Yosys for {board.family} (minutes for large designs)")
        counts, _ = synthesize(accel, board.family, name=TOP, workdir=folder / "synth")
        synthesized = {"tool": f"yosys ({FAMILIES[board.family]}, accelerators only)", **counts}
        over = [k for k in dse.KINDS if counts[k] > board.resources[k]]
        if over:
            raise UserError(f"the synthesized networks do not fit {board.part}: they need "
                            + ", ".join(f"{counts[k]:,} {k.upper()} of {board.resources[k]:,}"
                                        for k in over) + " (a lower --cap leaves more room)")
    else:
        notes.append("synthesis not run (--no-synth)")
    result = {
        "multi": facts, "network": " + ".join(names), "board": board.name,
        "device": board.part, "family": board.family, "clock_mhz": clock,
        "predicted": {"resources": chosen.resources}, "budget": board.resources,
        "networks": summaries, "synth": synthesized, "pnr": None, "notes": notes,
        "build_seconds": round(time.perf_counter() - started, 2)}
    write_report(folder, result)
    return result
