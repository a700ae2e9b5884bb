"""CascadeCNN: ``dnnhw build --cascade LOW,HIGH``, one classifier quantized twice on one chip.

1. **Stages** (`stages`): the network with every layer at LOW bits (the first stage), and at
   HIGH bits (the second); both take the input at HIGH bits, so one input frame feeds both.
2. **Threshold** (`choose_threshold`): the first stage's margin (largest score less second
   largest, `golden.margins`) on the user's labelled frames; the smallest threshold whose
   cascade keeps top-1 accuracy within the tolerance of the second stage alone (without
   labels: agreement with the second stage's top-1) — the fewest frames recomputed.
3. **Split** (`split`): the DSE plans the first stage at each rate of its Pareto sweep and
   the second in what is left of the board; the cascade's cycles per frame are the slowest of
   the first stage, the output, and the frame queue's port (`rate`), whose time is the
   second stage's on the recomputed fraction p and a beat a cycle on the rest. The fastest
   split is kept.
4. **Build** (`build_cascade`): the `CascadeAccelerator`'s Verilog, each stage's record,
   Yosys' counts, and a report against the second stage alone on the whole board.

The threshold and the fraction p are measured on the user's --data; another input
distribution recomputes another fraction, which `dnnhw verify` measures on its frames.
"""

import json
import math
import time
from typing import NamedTuple

import numpy as np

from . import dse, frontend, golden, quant, record, report
from .errors import UserError
from .precision import top1_score
from .resources import fifo_resources, fork_resources, lane_converter_resources


__all__ = ["Threshold", "Split", "stages", "choose_threshold", "rate", "split", "parse_pair",
           "build_cascade", "is_cascade", "load_cascade"]

#: LUTs and flip-flops of the confidence unit, the frame gate, the merge and the decision
#: queues beside the frame and score queues (their sizes, not measured per design).
_CONTROL = {"lut": 150, "ff": 120, "dsp": 0, "bram": 0}

#: Annealing moves of the second stage's exploration for each split tried (the kept split's
#: is explored again with the DSE's default).
_SPLIT_STEPS = 200


class Threshold(NamedTuple):
    """What `choose_threshold` found on N frames.

    threshold: first-stage margins below it are recomputed (in LSBs of its output format);
    recompute: the fraction of frames that are; metric: "accuracy" or "agreement" (top-1 with
    the second stage); first, second, cascade: the metric of each stage alone and of the
    cascade; sweep: [{threshold, recompute, score}] of the thresholds tried, in order."""
    threshold: int
    recompute: float
    metric: str
    first: float
    second: float
    cascade: float
    frames: int
    sweep: list


class Split(NamedTuple):
    """The DSE's split of the board (`split`): each stage's `dse.Exploration`, the cascade's
    predicted cycles per frame (`rate`), the resources of the queues and control, and the
    splits tried, [{first_cycles, second_cycles, cycles}]."""
    first: object
    second: object
    cycles: float
    overhead: dict
    tried: list


def parse_pair(text):
    """(low, high) of ``--cascade LOW,HIGH``."""
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise UserError(f"--cascade takes two word lengths, LOW,HIGH (e.g. 4,8), not '{text}'") from None
    if not low < high:
        raise UserError(f"--cascade {text}: the first stage must be narrower than the second")
    for bits in (low, high):
        if not quant.MIN_BITS <= bits <= quant.MAX_BITS:
            raise UserError(f"--cascade {text}: {bits} bits is outside the supported "
                            f"{quant.MIN_BITS}..{quant.MAX_BITS}")
    return low, high


def stages(graph, frames, low, high):
    """(first, second): the float `graph` quantized on the calibration `frames` with every
    layer at `low` bits, and at `high`; both take the input at `high` bits.

    Raises
    ------
    UserError
        If the network is not a classifier (its output is not classes × 1 × 1, at least two),
        or its formats come from a QDQ model (a cascade quantizes it itself).
    """
    shape = graph.shapes[graph.output]
    if (shape.h, shape.w) != (1, 1) or shape.c < 2:
        raise UserError(f"--cascade needs a classifier: '{graph.name}' outputs {shape}, not "
                        "classes × 1 × 1")
    if graph.format_hints:
        raise UserError("--cascade quantizes the network twice itself: it does not take a QDQ "
                        "model's stated formats")
    ranges = quant.peaks(graph, frames)
    second = quant.quantize(graph, frames, bits=high, ranges=ranges)
    first = quant.quantize(graph, frames, bits=high, ranges=ranges,
                           layer_bits={layer.name: low for layer in graph.layers})
    return first, second


def _scores(graph, xs):
    return np.stack([golden.run_fixed(graph, x)[graph.output].ravel() for x in xs])


def choose_threshold(first, second, frames, labels, tolerance):
    """The `Threshold` for the float input `frames` (N, ...) and their `labels` (or None)."""
    xs = [golden.quantize(golden.input_to_chw(first, f), first.formats[first.input])
          for f in frames]
    s1, s2 = _scores(first, xs), _scores(second, xs)
    top1, top2 = s1.argmax(axis=1), s2.argmax(axis=1)
    truth = labels if labels is not None else top2
    margins = golden.margins(s1)
    reference = float(np.mean(top2 == truth))
    sweep = []
    for threshold in [0, *sorted(set(int(m) + 1 for m in margins))]:
        again = margins < threshold
        score = float(np.mean(np.where(again, top2, top1) == truth))
        sweep.append({"threshold": threshold, "recompute": float(np.mean(again)), "score": score})
        if score >= reference - tolerance - 1e-12:
            break
    chosen = sweep[-1]
    return Threshold(chosen["threshold"], chosen["recompute"],
                     "accuracy" if labels is not None else "agreement",
                     top1_score(s1, truth), reference, chosen["score"], len(xs), sweep)


def rate(first_cycles, second_cycles, recompute, frame_beats, classes):
    """The cascade's steady cycles per frame when a fraction `recompute` of the frames goes to
    the second stage: the slowest of the first stage, the output (classes + 1 beats a frame),
    and the frame queue's port (the second stage's pace on a recomputed frame, a beat a cycle
    on a dropped one), with queues deep enough to smooth the runs of recomputed frames."""
    port = recompute * max(second_cycles, frame_beats) + (1 - recompute) * frame_beats
    return max(first_cycles, classes + 1, port)


def _overhead(first, second, family, queue_frames, score_frames, lanes):
    """Predicted resources of the cascade's own blocks: the frame queue, the score queue,
    the forks and the output-side lane converters, and `_CONTROL`."""
    bits_in, classes = first.formats[first.input].bits, first.shapes[first.output].c
    size = first.shapes[first.input].size
    parts = [fifo_resources(bits_in, lanes[0], queue_frames * size // lanes[0], family),
             fifo_resources(first.formats[first.output].bits, 1, score_frames * classes, family),
             fork_resources(bits_in, lanes[0], 2, family)]
    for graph, out_lanes in ((first, lanes[1]), (second, lanes[2])):
        if out_lanes > 1:
            parts.append(lane_converter_resources(classes, graph.formats[graph.output].bits,
                                                  out_lanes, 1, family))
    total = sum(parts[1:], parts[0]).as_dict()
    return {k: total[k] + _CONTROL[k] for k in dse.KINDS}


def _sizes(first_perf, second_perf):
    """(queue_frames, score_frames) of a `CascadeAccelerator` of stages with these perfs."""
    from .cascade_accel import SLACK_FRAMES

    queue = math.ceil(first_perf.latency / first_perf.cycles_per_frame) + 1 + SLACK_FRAMES
    return queue, queue + math.ceil(second_perf.latency / second_perf.cycles_per_frame) + 1


def _plus(*parts):
    return {k: sum((p or {}).get(k, 0) for p in parts) for k in dse.KINDS}


def split(first, second, board, recompute, clock_mhz=None, cap=dse.DEFAULT_CAP, seed=0,
          reserve=None, progress=lambda message: None):
    """The `Split` of `board` between the stages with the fastest cascade (fewest resources
    on a tie).

    Raises
    ------
    UserError
        If no split fits both stages (saying what the first stage alone takes).
    """
    from .model import in_lanes, out_lanes

    clock = (clock_mhz or board.clock_mhz) * 1e6
    classes = first.shapes[first.output].c
    guess = {k: 0 for k in dse.KINDS}
    alone = dse.explore(first, board, cap=cap, seed=seed, reserve=reserve)
    targets = sorted({alone.perf.cycles_per_frame}
                     | {p["cycles_per_frame"] for p in alone.pareto
                        if p["cycles_per_frame"] >= alone.perf.cycles_per_frame})
    caches, tried, best = ({}, {}), [], None
    progress(f"splitting {board.name} between the stages ({len(targets)} rates of the first)")
    for target in targets:
        if best is not None and target >= best[0]:
            break
        try:
            one = dse.explore(first, board, cap=cap, seed=seed, reserve=_plus(reserve, guess),
                              target_fps=clock / target * (1 - 1e-9), cache=caches[0])
            two = dse.explore(second, board, cap=cap, seed=seed, steps=_SPLIT_STEPS,
                              reserve=_plus(reserve, guess, one.resources), cache=caches[1])
        except UserError:
            continue
        lanes = (in_lanes(first.layers[0], one.plan[first.layers[0].name]),
                 _out_lanes(first, one.plan, out_lanes), _out_lanes(second, two.plan, out_lanes))
        guess = _overhead(first, second, board.family, *_sizes(one.perf, two.perf), lanes)
        frame_beats = first.shapes[first.input].size // lanes[0]
        cycles = rate(one.perf.cycles_per_frame, two.perf.cycles_per_frame, recompute,
                      frame_beats, classes)
        tried.append({"first_cycles": one.perf.cycles_per_frame,
                      "second_cycles": two.perf.cycles_per_frame, "cycles": round(cycles, 2)})
        if best is None or cycles < best[0]:
            best = (cycles, one, guess)
    if best is None:
        raise UserError(f"no split of {board.name} holds both stages: the first alone takes "
                        + ", ".join(f"{v:,} {k.upper()}" for k, v in alone.resources.items())
                        + f" of {', '.join(f'{v:,}' for v in alone.limit.values())}")
    cycles, one, overhead = best
    two = dse.explore(second, board, cap=cap, seed=seed,
                      reserve=_plus(reserve, overhead, one.resources), cache=caches[1])
    lanes_in = in_lanes(first.layers[0], one.plan[first.layers[0].name])
    cycles = rate(one.perf.cycles_per_frame, two.perf.cycles_per_frame, recompute,
                  first.shapes[first.input].size // lanes_in, classes)
    return Split(one, two, cycles, overhead, tried)


def _out_lanes(graph, plan, out_lanes):
    last = graph.producer(graph.output)
    return out_lanes(last, plan[last.name])


# -- the build -----------------------------------------------------------------------------------


def is_cascade(folder):
    """Whether the build folder `folder` holds a cascade."""
    return (folder / "design" / "cascade.json").is_file()


def load_cascade(folder):
    """(report, design, cascade.json, first graph, second graph) of a cascade build folder."""
    design = folder / "design"
    return (json.loads((folder / "report.json").read_text()),
            json.loads((design / "design.json").read_text()),
            json.loads((design / "cascade.json").read_text()),
            record.read_graph(design / "first"), record.read_graph(design / "second"))


def build_cascade(folder, network, board, pair, calibration, data, labels, tolerance, clock,
                  clock_note, synth, cap, seed):
    """Build the cascade of `network` at `pair` = (low, high) bits for `board` into `folder`
    (`dnnhw.build.build`'s staging folder); returns the report dict.

    Raises
    ------
    UserError
        Without --data, for a network that is not a classifier, or when the stages cannot share
        the board.
    """
    from amaranth.back import verilog

    from .build import TOP, Flow, front, implement, link_reserve, progress, write_report
    from .cascade_accel import CascadeAccelerator

    started = time.perf_counter()
    if board.host_link == "axi-stream":
        raise UserError(f"--cascade: no AXI4-Stream top for a cascade yet, so not for "
                        f"{board.name}; build it for a board with a UART link")
    if data is None:
        raise UserError("--cascade needs --data (and --labels): the frames its threshold is "
                        "chosen on")
    low, high = pair
    read = front(network, high, calibration)
    first, second = stages(read.graph, read.frames, low, high)
    frames = quant.load_frames(read.graph, data)
    truth = quant.load_labels(labels, len(frames)) if labels else None
    progress(f"choosing the threshold on {len(frames)} frames")
    chosen = choose_threshold(first, second, frames, truth, tolerance)
    reserve = link_reserve(second, board)
    progress(f"exploring the second stage alone on {board.name}")
    single = dse.explore(second, board, cap=cap, seed=seed, clock_mhz=clock, reserve=reserve)
    parts = split(first, second, board, chosen.recompute, clock, cap, seed, reserve, progress)

    progress("generating Verilog")
    accel = CascadeAccelerator(first, parts.first.plan, second, parts.second.plan,
                               chosen.threshold)
    (folder / "rtl").mkdir()
    (folder / "rtl" / f"{TOP}.v").write_text(verilog.convert(accel, name=TOP, emit_src=False))
    sample = read.frames[:64]
    reference = frontend.onnxruntime_outputs(network, read.graph, sample)
    design = folder / "design"
    for name, graph, found, bits in (("first", first, parts.first, low),
                                     ("second", second, parts.second, high)):
        (design / name).mkdir(parents=True)
        search = {k: v for k, v in vars(found).items() if k not in ("plan", "perf", "resources")}
        error = golden.float_error(reference, golden.run(graph, sample))
        record.write(design / name, record.Record(
            str(network), bits, str(calibration) if calibration else None, error, graph,
            read.frames, board.name, clock, search, found.plan))
    np.save(design / "frames.npy", read.frames, allow_pickle=False)
    predicted = {"cycles_per_frame": round(parts.cycles, 2), "latency_cycles": accel.latency,
                 "latency_recomputed_cycles": accel.latency_recomputed}
    (design / "design.json").write_text(json.dumps({
        "top": TOP, "ports": {"i": {"lanes": accel.input_lanes,
                                    "bits": first.formats[first.input].bits},
                              "o": {"lanes": 1, "bits": accel.output_bits}},
        "input_shape": list(first.shapes[first.input]),
        "output_shape": [accel.classes + 1, 1, 1], "predicted": predicted}, indent=2))
    facts = {"low_bits": low, "high_bits": high, "threshold": chosen.threshold,
             "recompute": chosen.recompute, "classes": accel.classes,
             "formats": [str(g.formats[g.output]) for g in (first, second)],
             "queue_frames": accel.queue_frames, "score_frames": accel.score_frames,
             "frame_beats": accel.frame_beats, "tolerance": tolerance,
             "metric": chosen.metric, "frames": chosen.frames,
             "accuracy": {"first": chosen.first, "second": chosen.second,
                          "cascade": chosen.cascade},
             "sweep": chosen.sweep, "splits": parts.tried}
    (design / "cascade.json").write_text(json.dumps(facts, indent=2))

    notes = list(second.notes) + [read.warning] * (read.warning is not None)
    notes += [clock_note] * (clock_note is not None)
    if chosen.recompute == 0:
        notes.append(f"no frame is recomputed: the {low}-bit network alone keeps the accuracy "
                     f"within the tolerance on these frames, and `build --bits {low}` gives it "
                     "the whole board")
    notes.append(f"the threshold and the recomputed fraction were measured on the {len(frames)} "
                 f"frames of {data}; other inputs recompute another fraction (dnnhw verify "
                 "measures it on its frames)")
    synthesized, pnr, used = implement(accel, board, folder, Flow(synth), notes, clock)
    over = [k for k in dse.KINDS if used and used[k] > board.resources[k]]
    if over:
        raise UserError(f"the synthesized cascade does not fit {board.part}: it needs "
                        + ", ".join(f"{used[k]:,} {k.upper()} of {board.resources[k]:,}"
                                    for k in over) + " (a lower --cap leaves more room)")
    if pnr is not None and pnr.get("clock_mhz"):
        clock = pnr["clock_mhz"]                # timing closure lowered the clock
    fps = clock * 1e6 / parts.cycles
    result = {
        "cascade": facts, "network": read.graph.name, "board": board.name, "device": board.part,
        "family": board.family, "clock_mhz": clock, "source": str(network),
        "predicted": {**predicted, "fps": fps, "latency_us": accel.latency / clock,
                      "latency_recomputed_us": accel.latency_recomputed / clock,
                      "resources": _plus(parts.first.resources, parts.second.resources,
                                         parts.overhead)},
        "budget": board.resources,
        "single": {"bits": high, "fps": clock * 1e6 / single.perf.cycles_per_frame,
                   "cycles_per_frame": single.perf.cycles_per_frame,
                   "resources": single.resources, "binding": single.binding},
        "stages": [report.design_summary(g, board, found, clock)
                   for g, found in ((first, parts.first), (second, parts.second))],
        "synth": synthesized, "pnr": pnr, "notes": notes,
        "build_seconds": round(time.perf_counter() - started, 2)}
    write_report(folder, result)
    return result
