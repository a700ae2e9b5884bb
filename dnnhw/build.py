"""`dnnhw build`: ONNX → quantized graph → DSE plan → accelerator Verilog → Yosys → report.

The build folder (DESIGN.md, "Command line and reports") is written whole or not at all: every
file goes to a temporary folder beside the destination, which replaces the destination only once
the build has succeeded. Its layout:

    report.json, report.html     the report (DESIGN.md's schema, plus `dse`, `notes`, `verify`)
    pareto.png                   frames/s against DSPs of the designs the DSE swept
    rtl/dnnhw_accel.v            the accelerator: stream in `i`, stream out `o`
    design/graph.pkl             the quantized graph golden runs (the specification of rtl/)
    design/design.json           ports of rtl/ and the plan, for `dnnhw verify`
    design/frames.npy            the calibration frames, the default verification inputs
    synth/                       Yosys' log and cell counts of the accelerator (Xilinx and DSE-only
                                 boards, unless --no-synth)
    board/                       the board top. UART link: for ECP5/iCE40 the build with the
                                 bitstream, nextpnr's report and logs (unless --no-synth); for
                                 Xilinx the Vivado build plan. AXI4-Stream link (Zynq boards):
                                 dnnhw_axis_top.v, the accelerator behind AXI4-Stream ports
"""

import json
import math
import os
import pathlib
import pickle
import shutil
import sys
import tempfile
import time

import numpy as np

from . import dse, frontend, golden, ops, quant, report
from .errors import DoesNotFit, UserError
from .ir import params
from .ops import macs


__all__ = ["build", "progress", "TOP", "AXIS_TOP", "write_report", "load_design"]

#: The accelerator's Verilog module name.
TOP = "dnnhw_accel"

#: The Verilog module name of the AXI4-Stream top (`dnnhw.link.axis.AxiStreamTop`).
AXIS_TOP = "dnnhw_axis_top"

#: Frames of the calibration set the fixed-point error is measured on.
_ERROR_FRAMES = 64


def progress(message):
    """One line on stderr when it is a terminal (quiet in CI and in pipes)."""
    if sys.stderr.isatty():
        print(f"dnnhw: {message}", file=sys.stderr, flush=True)


def build(network, board, out=None, objective="throughput", bits=8, calibration=None,
          clock_mhz=None, synth=True, cap=dse.DEFAULT_CAP, seed=0):
    """Build `network` (an ONNX path) for `board` (a `boards.Board`) into `out`; returns the
    folder and the report dict.

    Raises
    ------
    UserError
        For a bad ONNX file, an unsupported op, a design that cannot fit, bad options or an
        output folder that cannot be written; nothing is left behind.
    """
    network = pathlib.Path(network)
    out = pathlib.Path(out or pathlib.Path("build") / f"{network.stem}-{board.name}")
    clock = clock_mhz or board.clock_mhz
    if clock <= 0:
        raise UserError(f"--clock must be positive, got {clock:g}")
    staging = _staging_folder(out)
    try:
        result = _build(network, board, staging, objective, bits, calibration, clock, synth, cap,
                        seed)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out, result


def _staging_folder(out):
    """A fresh temporary folder in `out`'s parent (so the final move is a rename)."""
    parent = out.resolve().parent
    if out.exists() and not out.is_dir():
        raise UserError(f"cannot write the build to '{out}': it exists and is not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        return staging
    except OSError as error:
        raise UserError(f"cannot write the build to '{out}': {error.strerror or error}") from None


def _replace(staging, out):
    """Move `staging` to `out`, replacing a previous build there."""
    old = None
    if out.exists():
        old = staging.with_name(staging.name + "-old")
        os.rename(out, old)
    os.rename(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _build(network, board, folder, objective, bits, calibration, clock, synth, cap, seed):
    started = time.perf_counter()
    graph = frontend.load(network)
    notes = list(graph.notes)
    if calibration:
        frames = quant.load_frames(graph, calibration)
    else:
        frames = quant.synthetic_frames(graph)
        notes.append("no --calibration data: formats come from synthetic N(0,1) inputs, which "
                     "may not match the network's real inputs")
    q = quant.quantize(graph, frames, bits=bits)
    sample = frames[:_ERROR_FRAMES]
    error = golden.float_error(frontend.onnxruntime_outputs(network, graph, sample),
                               golden.run(q, sample))

    reserve, used = link_reserve(q, board) or {}, None
    for attempt in range(_REPLANS + 1):
        progress(f"exploring foldings for {board.name}")
        try:
            found = dse.explore(q, board, objective=objective, cap=cap, seed=seed,
                                clock_mhz=clock, reserve=reserve)
        except UserError:
            if used is None:
                raise
            raise UserError(_still_too_large(board, used, attempt)) from None
        accel = _write_design(folder, q, found.plan, frames)
        try:
            synthesized, pnr, used = _implement(accel, board, folder, synth, notes)
            too_large = used is not None and bool(_over(board, used))
        except DoesNotFit as error:
            synthesized, pnr, used, too_large = None, None, error.used, True
        if not too_large:
            break
        if attempt == _REPLANS:
            raise UserError(_still_too_large(board, used, _REPLANS + 1))
        reserve, note = _hold_back(board, found, reserve, used)
        notes.append(note)
        progress(note)
        for part in ("rtl", "design", "synth", "board"):
            shutil.rmtree(folder / part, ignore_errors=True)

    result = _report(network, board, q, found, clock, bits, error, synthesized, pnr, notes)
    result["build_seconds"] = round(time.perf_counter() - started, 2)
    result["dse"]["pareto"] = [{**p, "fps": clock * 1e6 / p["cycles_per_frame"]}
                               for p in found.pareto]
    report.pareto_plot(result["dse"]["pareto"], {**found.resources, "fps": result["predicted"]["fps"]},
                       folder / "pareto.png", title=f"{q.name} on {board.name}")
    write_report(folder, result)
    return result


#: Block RAM bits per unit of `bram` per family (DESIGN.md's units).
_BRAM_BITS = {"xc7": 18432, "ecp5": 18432, "ice40": 4096}


def link_reserve(q, board):
    """Resources the UART board top (`dnnhw.link.top`) takes beside the accelerator: a rough,
    measured-once allowance for the UART and protocol logic (about 700 LUTs and 500 flip-flops
    on iCE40 for the tests' designs), and block RAM for its one-frame request buffer. None for
    boards without a UART top."""
    if board.platform is None or board.host_link != "uart":
        return None
    frame_bits = q.shapes[q.input].size * q.formats[q.input].bits
    return {"lut": 800, "ff": 600, "dsp": 0, "bram": -(-frame_bits // _BRAM_BITS[board.family])}


#: How many times a build plans again when synthesis finds the design larger than the device.
_REPLANS = 2


def _write_design(folder, q, plan, frames):
    """rtl/ and design/ of the accelerator for `plan`; returns the `Accelerator`."""
    from amaranth.back import verilog
    from .accel import Accelerator

    progress("generating Verilog")
    accel = Accelerator(q, plan)
    (folder / "rtl").mkdir()
    (folder / "rtl" / f"{TOP}.v").write_text(verilog.convert(accel, name=TOP, emit_src=False))
    design = folder / "design"
    design.mkdir()
    with open(design / "graph.pkl", "wb") as f:
        pickle.dump(q, f)
    np.save(design / "frames.npy", frames)
    (design / "design.json").write_text(json.dumps(_design_json(q, accel), indent=2))
    return accel


def _hold_back(board, found, reserve, used):
    """(reserve, note) for planning again after synthesis found the design too large: every
    resource the model under-predicted is held back by as much as it missed (its model error
    on this design), and a placement failure with no resource over holds back 5 % more LUTs."""
    predicted = {k: found.resources[k] + reserve.get(k, 0) for k in dse.KINDS}
    missed = {k: max(used[k] - predicted[k], 0) for k in dse.KINDS}
    if not _over(board, used):
        missed["lut"] += math.ceil(0.05 * board.resources["lut"])
    over = ", ".join(f"{used[k]:,} {k.upper()} of {board.resources[k]:,} (predicted "
                     f"{predicted[k]:,})" for k in _over(board, used))
    held = ", ".join(f"{v:,} {k.upper()}" for k, v in missed.items() if v)
    note = (f"synthesis found the design too large for {board.part}"
            f"{': ' + over if over else ' (no room to place it)'}; planned again holding back "
            f"{held} more")
    return {k: reserve.get(k, 0) + missed[k] for k in dse.KINDS}, note


def _over(board, used):
    """The resources of which `used` (Yosys' counts) takes more than `board` has."""
    return [k for k in dse.KINDS if used[k] > board.resources[k]]


def _still_too_large(board, used, plans):
    over = "; ".join(f"{used[k]:,} {k.upper()} of {board.resources[k]:,}"
                     for k in _over(board, used))
    need = over or (f"{used['lut']:,} LUTs and {used['ff']:,} flip-flops, more than nextpnr "
                    "could place")
    times = "once" if plans == 1 else f"{plans} times"
    return (f"the synthesized design does not fit {board.part}: it needs {need}; planned "
            f"{times}, holding back what synthesis found the model had missed, and no plan fits "
            "(a lower --cap leaves more room)")


def _implement(accel, board, folder, synth, notes):
    """Synthesis, and the board flow where the board has a UART top: (synth, pnr, used): the
    Yosys counts and nextpnr's figures (dicts or None), and what the design takes of the device
    by those counts (the board top's; or the accelerator's plus `link_reserve`), None when not
    synthesized.

    Open-flow boards (ECP5, iCE40) synthesize, place and route the board top to a bitstream in
    board/; Xilinx boards get the accelerator's Yosys counts and the Vivado plan in board/;
    boards with an AXI4-Stream link (DSE-only Zynq targets) get the Yosys counts and the
    AXI4-Stream top's Verilog in board/.

    Raises
    ------
    DoesNotFit
        If nextpnr cannot place the board top (it is larger than the device, or too full)."""
    from .toolchain.board import board_flow
    from .toolchain.yosys import FAMILIES, synthesize

    top = board.platform is not None and board.host_link == "uart"
    if board.host_link == "axi-stream":
        notes.append(_axis_top(accel, board, folder / "board"))
    if not synth:
        notes.append("synthesis, place and route not run (--no-synth)")
        if top and not board.open_flow:
            notes.extend(board_flow(accel, board, folder / "board", progress)[2])
        return None, None, None
    if top and board.open_flow:
        synthesized, pnr, more = board_flow(accel, board, folder / "board", progress)
        notes.extend(more)
        return synthesized, pnr, synthesized
    progress(f"synthesizing with Yosys for {board.family} (minutes for large designs)")
    resources, _ = synthesize(accel, board.family, name=TOP, workdir=folder / "synth")
    synthesized = {"tool": f"yosys ({FAMILIES[board.family]}, accelerator only)", **resources}
    link = link_reserve(accel.graph, board) or {}
    used = {k: resources[k] + link.get(k, 0) for k in resources}
    if top and not _over(board, used):
        notes.extend(board_flow(accel, board, folder / "board", progress)[2])
    return synthesized, None, used


def _axis_top(accel, board, folder):
    """Writes board/`AXIS_TOP`.v, the accelerator behind AXI4-Stream ports; returns the note
    that says so."""
    from amaranth.back import verilog
    from .link.axis import AxiStreamTop

    progress("generating the AXI4-Stream top")
    top = AxiStreamTop(accel)
    folder.mkdir(exist_ok=True)
    (folder / f"{AXIS_TOP}.v").write_text(verilog.convert(top, name=AXIS_TOP, emit_src=False))
    return (f"AXI4-Stream top for {board.name}: board/{AXIS_TOP}.v (self-contained), module "
            f"{AXIS_TOP}: s_axis_tdata {len(top.s_axis_tdata)} bits ({accel.input_lanes} × "
            f"{top.bits_in}-bit lanes, {top.in_beats} beats a frame), m_axis_tdata "
            f"{len(top.m_axis_tdata)} bits ({accel.output_lanes} × {top.bits_out}-bit lanes, "
            f"{top.out_beats} beats a frame, TLAST on the last), frame_error, clk, rst (active "
            "high); no place and route (no Amaranth platform)")


def _design_json(q, accel):
    fi, fo = q.formats[q.input], q.formats[q.output]
    return {
        "top": TOP,
        "ports": {"i": {"lanes": accel.input_lanes, "bits": fi.bits},
                  "o": {"lanes": accel.output_lanes, "bits": fo.bits}},
        "input_shape": list(q.shapes[q.input]), "output_shape": list(q.shapes[q.output]),
        "plan": {name: [f.coarse_in, f.coarse_out, f.fine] for name, f in accel.plan.items()},
        "predicted": {"cycles_per_frame": accel.perf.cycles_per_frame,
                      "latency_cycles": accel.perf.latency},
    }


def _report(network, board, q, found, clock, bits, error, synthesized, pnr, notes):
    from .resources import layer_resources

    perf = found.perf
    total_macs = sum(macs(q, layer) for layer in q.layers)
    fps = clock * 1e6 / perf.cycles_per_frame
    layers = []
    for layer in q.layers:
        f, lp = found.plan[layer.name], perf.layers[layer.name]
        layers.append({
            "name": layer.name, "op": layer.op,
            "in_shape": list(q.in_shape(layer)), "out_shape": list(q.out_shape(layer)),
            "macs": macs(q, layer), "coarse_in": f.coarse_in, "coarse_out": f.coarse_out,
            "fine": f.fine, "cycles_per_frame": lp.cycles_per_frame, "latency_cycles": lp.latency,
            "resources": layer_resources(q, layer, f, board.family).as_dict(),
        })
        if ops.get(layer.op).weighted:      # how its multipliers and weights are built
            layers[-1].update(logic_multipliers=f.impl.logic_multipliers, paired=f.impl.paired,
                              block_weights=f.impl.block_weights)
    return {
        "network": q.name, "board": board.name, "device": board.part, "family": board.family,
        "clock_mhz": clock, "objective": found.objective, "source": str(network),
        "macs_per_frame": total_macs, "params": sum(params(layer) for layer in q.layers),
        "predicted": {
            "cycles_per_frame": perf.cycles_per_frame, "fps": fps,
            "latency_cycles": perf.latency, "latency_us": perf.latency / clock,
            "gops": 2 * total_macs * fps / 1e9, "bottleneck": perf.bottleneck,
            "resources": found.resources,
        },
        "budget": board.resources,
        "dse": {"cap": found.cap, "limit": found.limit, "binding": found.binding,
                "seed": found.seed, "evaluated": found.evaluated,
                "seconds": round(found.seconds, 3)},
        "synth": synthesized, "pnr": pnr,
        "quant": {"bits_w": bits, "bits_a": bits, "float_error": error},
        "layers": layers,
        "notes": notes,
    }


def write_report(folder, result):
    """report.json and report.html in `folder`, each replaced in one rename."""
    folder = pathlib.Path(folder)
    for name, write in (("report.json", lambda p: p.write_text(json.dumps(result, indent=2))),
                        ("report.html", lambda p: report.write_html(result, p))):
        partial = folder / f".{name}.partial"
        write(partial)
        os.replace(partial, folder / name)


def load_design(folder):
    """(report dict, design dict, quantized graph) of a build folder, or a UserError."""
    folder = pathlib.Path(folder)
    needed = [folder / "report.json", folder / "design" / "design.json",
              folder / "design" / "graph.pkl", folder / "rtl" / f"{TOP}.v"]
    missing = [str(p.relative_to(folder)) for p in needed if not p.exists()]
    if not folder.is_dir() or missing:
        raise UserError(f"'{folder}' is not a dnnhw build folder"
                        + (f" (missing {', '.join(missing)})" if folder.is_dir() else ""))
    with open(folder / "design" / "graph.pkl", "rb") as f:
        graph = pickle.load(f)
    return (json.loads((folder / "report.json").read_text()),
            json.loads((folder / "design" / "design.json").read_text()), graph)
