"""`dnnhw build` of a network run in partitions (`dnnhw.partition`, `dse.explore_partitions`):
one ordinary build per partition, and the schedule that runs them one after another.

The build folder, written whole or not at all like any build:

    schedule.json        how to run the partitions (`schedule_json`): their order and folders,
                         the tensor each reads and writes with its shape, format, stream lanes
                         and bytes per frame, where those feature maps wait between partitions
                         (two DRAM regions used in turn, or the host), the batch, and the
                         predicted cycles and seconds of one batch
    report.json, .html   the partitioned design (`report.partitioned_summary`) with each
                         partition's synthesis and place-and-route figures, and the notes
    design/              the whole network's record (`dnnhw.record`): the quantized graph and
                         calibration frames `verify` checks the chained partitions against, every
                         layer's folding, and the partitions among the DSE's facts
    partition-K/         partition K's build folder, as `dnnhw build` writes one, for its
                         sub-graph: `verify partition-K` checks it alone; with weights
                         reloading its design/loads.npy holds the weight loads of its wr chunks
                         (wr × beats, the bus words `accel.load_words` gives), the first being
                         the chunk its record describes
"""

import json
import shutil
import time
from dataclasses import asdict, replace

import numpy as np

from . import defaults, golden, record, schedule
from .accel import load_words
from .build import accelerator, finish, link_reserve, progress, write_report
from .dse.partitions import cost_of, explore_partitions, stored_bits
from .errors import StillTooLarge, UserError
from .partition import (Partition, boundary_value, joined_channels, reloaded, shared_channels,
                        subgraph)
from .report import partitioned_summary


__all__ = ["build_partitions", "schedule_json", "is_partitioned"]


def is_partitioned(folder):
    """Whether the build folder `folder` holds a partitioned design."""
    return (folder / "schedule.json").is_file()


def build_partitions(folder, source, read, board, found, flow, notes, started):
    """Build the partitioned design `found` (a `dse.PartitionedExploration`) of the front
    `read` (`build.Front`) into `folder`; returns the report dict.

    A partition that synthesis finds too large however it is planned again is partitioned
    again itself, with what the model missed held back.

    Raises
    ------
    UserError
        If a partition's design does not fit once synthesized and cannot be split.
    """
    q, clock = read.quantized, found.clock_mhz
    frames = read.frames[:defaults.FRAMES]
    values = _values(q, frames)
    todo, plans, results, designs = list(found.partitions), [], [], []
    while todo:
        plan, k = todo.pop(0), len(plans) + 1
        progress(f"partition {k} of {k + len(todo)}: {plan.graph.name}")
        sub = folder / f"partition-{k}"
        sub.mkdir()
        sub_notes = [f"partition {k} of '{q.name}'"]
        inputs = frames if plan.part.start == 0 else _dequantized(plan.graph, values)
        try:
            saved, chosen, synthesized, pnr = accelerator(sub, source, plan.graph, inputs, board,
                                                          clock, plan.found, flow, sub_notes)
        except StillTooLarge as error:
            shutil.rmtree(sub)
            split = _split(q, plan, board, found, error)
            todo[:0] = split
            notes.append(f"synthesis found partition {k} ({plan.graph.name}) too large for "
                         f"{board.part} however planned, so it was split in {len(split)}")
            continue
        if plan.part.reload > 1:
            loads = [load_words(subgraph(q, plan.part, j), chosen.plan)
                     for j in range(plan.part.reload)]
            np.save(sub / "design" / "loads.npy", np.array(loads, dtype=np.uint64))
            last = reloaded(plan.graph).name
            sub_notes.append(f"layer '{last}' holds 1/{plan.part.reload} of its filters in "
                             f"writable memories, loaded before each of the partition's "
                             f"{plan.part.reload} runs (design/loads.npy, {len(loads[0]):,} "
                             f"bus words each): its bitstream does not depend on those weights")
        results.append(finish(sub, saved, board, chosen, synthesized, pnr, sub_notes, started))
        designs.append(json.loads((sub / "design" / "design.json").read_text()))
        plans.append(replace(plan, found=chosen, cost=cost_of(plan.graph, plan.part, chosen.plan, chosen.perf)))
    perf = schedule.schedule([p.cost for p in plans], board, clock, found.perf.batch)
    found = replace(found, partitions=plans, perf=perf)
    _write_record(folder / "design", source, read, board, found)
    (folder / "schedule.json").write_text(json.dumps(schedule_json(q, board, found, designs),
                                                     indent=2))
    result = {**partitioned_summary(q, board, found), "source": source.network,
              "quant": source.quant(),
              "notes": notes + _path_notes(board, found)}
    for part, built in zip(result["partitions"], results):
        part.update(folder=f"partition-{part['index']}", synth=built["synth"], pnr=built["pnr"])
    result["build_seconds"] = round(time.perf_counter() - started, 2)
    write_report(folder, result)
    return result


def _values(q, frames):
    """golden's fixed-point values of every tensor of `q` for each of the input `frames`."""
    return [golden.run_fixed(q, golden.quantize(golden.input_to_chw(q, f), q.formats[q.input]))
            for f in frames]


def _dequantized(sub, values):
    """Frames of the input of `sub` (a later partition's sub-graph) as float, in the
    (1, C, H, W) shape its ONNX input takes: golden's values, exact in the input's format (a
    pack's integers themselves, `partition.boundary_value`)."""
    fmt = sub.formats[sub.input]
    return np.stack([golden.dequantize(boundary_value(sub, sub.input, v), fmt)[None]
                     for v in values])


def _split(q, plan, board, found, error):
    """The partitions that replace `plan` when synthesis finds it too large however planned
    (`error`, a `StillTooLarge`): its sub-graph partitioned again with what the model missed
    held back. Raises `error` when it cannot be split."""
    held = error.reserve

    def reserve(sub):
        link = link_reserve(sub, board) or {}
        return {k: max(held.get(k, 0), link.get(k, 0)) for k in {*held, *link}}

    try:
        again = explore_partitions(plan.graph, board, objective=found.objective, cap=found.cap,
                                   seed=found.seed, clock_mhz=found.clock_mhz,
                                   batch=found.perf.batch, reserve=reserve, reloading=False)
    except UserError:
        raise error from None
    if len(again.partitions) < 2:
        raise error
    out = []
    for p in again.partitions:
        part = Partition(plan.part.start + p.part.start, plan.part.start + p.part.stop,
                         p.part.reload)
        sub = subgraph(q, part)
        out.append(replace(p, part=part, graph=sub, cost=cost_of(sub, part, p.found.plan, p.found.perf)))
    return out


def schedule_json(q, board, found, designs):
    """schedule.json's dict: the order of the partitions, their streams (each from its build's
    design.json), the feature-map buffers and the predicted batch."""
    perf, route = found.perf, found.perf.path
    in_dram = route is not None and route.name == "DRAM"
    streams = [_streams(d, plan.part.reload, shared_channels(q, plan.part), in_dram)
               for d, plan in zip(designs, found.partitions)]
    buffer = perf.batch * max(max(s["bytes_per_frame"].values()) for s in streams)
    parts = []
    for k, (plan, stream, spent) in enumerate(zip(found.partitions, streams, perf.partitions)):
        size = stream["bytes_per_frame"]
        regions = ({"input": {"offset": k % 2 * buffer, "bytes": perf.batch * size["i"]},
                    "output": {"offset": (k + 1) % 2 * buffer, "bytes": perf.batch * size["o"]}}
                   if in_dram else {"input": "host", "output": "host"})
        parts.append({"index": k + 1, "folder": f"partition-{k + 1}",
                      "layers": [layer.name for layer in plan.graph.layers],
                      "reload": plan.part.reload, **stream, "memory": regions,
                      "predicted": {"cycles_per_frame": plan.cost.cycles_per_frame,
                                    "latency_cycles": plan.cost.latency,
                                    "batch_cycles": spent.cycles, "slowdown": spent.slowdown}})
    return {"network": q.name, "board": board.name, "clock_mhz": found.clock_mhz,
            "batch": perf.batch, "path": None if route is None else asdict(route),
            "buffers": ({"count": 2, "bytes": buffer} if in_dram else None),
            "reconfiguration_s": board.reconfiguration_s,
            "predicted": {"batch_s": perf.batch_s, "fps": perf.fps,
                          "shares": perf.shares(found.clock_mhz)},
            "partitions": parts}


def _streams(design, reload, shared, in_dram):
    """The input and output streams of a partition's build (its design.json): tensor shapes
    (the whole output of a reloading partition, and one chunk's: its first `shared` channels
    the same in every chunk, `partition.shared_channels`), formats, lanes, and bytes per
    frame as stored (in stream order, each element in whole bytes, as the host link carries
    it; in DRAM each frame padded to a 64-bit word, `memory.layout`)."""
    def one(port, shape):
        lanes, bits = design["ports"][port]["lanes"], design["ports"][port]["bits"]
        size = int(np.prod(shape)) * stored_bits(bits) // 8
        return lanes, bits, -(-size // 8) * 8 if in_dram else size

    c = design["output_shape"][0]
    shape_out = [joined_channels(c, shared, reload), *design["output_shape"][1:]]
    (li, bi, si), (lo, bo, so) = one("i", design["input_shape"]), one("o", shape_out)
    chunk = ({"chunk_output_shape": design["output_shape"], "shared_channels": shared}
             if reload > 1 else {})
    return {"input_shape": design["input_shape"], "output_shape": shape_out, **chunk,
            "lanes": {"i": li, "o": lo}, "bits": {"i": bi, "o": bo},
            "bytes_per_frame": {"i": si, "o": so}}


def _write_record(design, source, read, board, found):
    """design/: the whole network's record, every layer's folding and the partitions."""
    design.mkdir()
    plan = {name: f for p in found.partitions for name, f in p.found.plan.items()}
    search = {"objective": found.objective, "cap": found.cap, "seed": found.seed,
              "batch": found.perf.batch,
              "partitions": [[p.part.start, p.part.stop, p.part.reload] for p in found.partitions]}
    record.write(design, record.Record(source.network, source.bits, source.calibration,
                                       source.float_error, read.quantized, read.frames,
                                       board.name, found.clock_mhz, search, plan,
                                       source.layer_bits, source.precision))


def _path_notes(board, found):
    """What the report must say about where the feature maps travel."""
    route = found.perf.path
    if route is None or len(found.partitions) == 1:
        return []
    if route.name == "DRAM":
        return [f"feature maps wait in {board.name}'s DRAM between partitions "
                f"({board.memory.kind}, survives reconfiguration); loading a bitstream takes "
                f"{board.reconfiguration_s * 1e3:g} ms ({board.reconfiguration_source})"]
    why = ("its DRAM controller lives in the fabric and a reconfiguration loses the contents"
           if board.memory is not None else "it has no DRAM")
    return [f"{board.name} runs the partitions one after another with the host keeping the "
            f"feature maps between them, since {why}: every boundary tensor crosses the host "
            f"link ({route.bits_per_cycle * found.clock_mhz * 1e6 / 8 / 1e3:,.0f} KB/s each way), "
            f"and loading a bitstream takes {board.reconfiguration_s:g} s "
            f"({board.reconfiguration_source}). A single bitstream with the weights in on-board "
            "DRAM (weights reloading) would avoid both; dnnhw does not build one yet"]
