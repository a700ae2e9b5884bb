"""`dnnhw build`: ONNX → quantized graph → DSE plan → accelerator Verilog → Yosys → report.
`dnnhw build --plan`: the same from a build's record, without the first three stages.

`front` is the front of every command that reads a network (build, explore, inspect): it
loads the ONNX file, loads or synthesizes calibration frames, and quantizes; `chosen_front`
does so at the word lengths per layer `dnnhw.precision` chooses (``--layer-bits auto``).

The build folder (DESIGN.md, "Command line and reports") is written whole or not at all: every
file goes to a temporary folder beside the destination, which replaces the destination only once
the build has succeeded. Its layout:

    report.json, report.html     the report (DESIGN.md's schema, plus `dse`, `notes`, `verify`)
    pareto.png                   frames/s against DSPs of the designs the DSE swept
    rtl/dnnhw_accel.v            the accelerator: stream in `i`, stream out `o`
    design/graph.json, graph.npz the build record (`dnnhw.record`): the quantized graph golden
    design/plan.json, frames.npy runs (the specification of rtl/), the plan and the DSE's facts,
                                 the calibration frames (the default verification inputs)
    design/design.json           ports of rtl/ and its predicted rate and latency, for `verify`
    synth/                       Yosys' log and cell counts of the accelerator (Xilinx and DSE-only
                                 boards, unless --no-synth)
    board/                       the board top. UART link: for ECP5/iCE40 the build with the
                                 bitstream, nextpnr's report and logs (unless --no-synth); for
                                 Xilinx the Vivado build plan. AXI4-Stream link (Zynq boards):
                                 dnnhw_axis_top.v, the accelerator behind AXI4-Stream ports

A network the board does not hold in one design is built in partitions: one such folder per
partition, and the schedule that runs them (`dnnhw.partitioned`). A cascade (`--cascade LOW,HIGH`,
`dnnhw.cascade`) keeps one record per stage in design/first/ and design/second/, and its
threshold, sweep and split in design/cascade.json. Several networks (`build A.onnx B.onnx`,
`dnnhw.multi`) keep one record per network in design/netK/ and the allocation in
design/multi.json; rtl/ then has streams iK and oK per network, and there is no board/.
"""

import dataclasses
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time
from typing import NamedTuple

import numpy as np

from . import defaults, dse, frontend, golden, model, quant, record, report
from .boards import get_board
from .errors import DoesNotFit, StillTooLarge, UserError
from .ir import Graph


__all__ = ["front", "Front", "chosen_front", "precision_note", "SYNTHETIC_CALIBRATION", "build",
           "replay", "progress", "TOP", "AXIS_TOP", "Source", "Widths", "accelerator", "finish",
           "write_report", "load_design", "link_reserve", "implement", "Flow"]

#: The accelerator's Verilog module name.
TOP = "dnnhw_accel"

#: The Verilog module name of the AXI4-Stream top (`dnnhw.link.axis.AxiStreamTop`).
AXIS_TOP = "dnnhw_axis_top"

#: Frames of the calibration set the fixed-point error is measured on.
_ERROR_FRAMES = 64

#: What `front` warns when the formats come from synthetic frames.
SYNTHETIC_CALIBRATION = ("no --calibration data: formats come from synthetic N(0,1) inputs, "
                         "which may not match the network's real inputs")

#: `dse.Exploration`'s fields that follow from its plan: a replay computes them again.
_PLANNED = ("plan", "perf", "resources")


def progress(message):
    """One line on stderr when it is a terminal (quiet in CI and in pipes)."""
    if sys.stderr.isatty():
        print(f"dnnhw: {message}", file=sys.stderr, flush=True)


class Front(NamedTuple):
    """A network read and quantized by `front`."""
    graph: Graph            # float, as the frontend read it
    quantized: Graph        # its quantized copy
    frames: np.ndarray      # the calibration frames
    warning: str | None     # SYNTHETIC_CALIBRATION when they are synthetic, else None


def front(network, bits=defaults.BITS, calibration=None, layer_bits=None):
    """The ONNX file `network` loaded and quantized to `bits` (`layer_bits`: layer name → bits
    for some layers) on the calibration frames of the .npy `calibration`, or on synthetic
    frames (`quant.synthetic_frames`) with `SYNTHETIC_CALIBRATION` as the warning (none when
    the model states every format itself, a QDQ model's).

    Raises
    ------
    UserError
        For an unreadable or unsupported network, calibration frames that do not fit it, or
        bits out of range.
    """
    graph = frontend.load(network)
    if calibration:
        frames, warning = quant.load_frames(graph, calibration), None
    else:
        frames, warning = quant.synthetic_frames(graph), SYNTHETIC_CALIBRATION
    quantized = quant.quantize(graph, frames, bits=bits, layer_bits=layer_bits)
    if _formats_stated(quantized):
        warning = None
    return Front(graph, quantized, frames, warning)


def _formats_stated(graph):
    """Every format of a quantized `graph` is one its QDQ model states, or its input's (no
    format came from the calibration frames' ranges)."""
    hints = graph.format_hints
    return graph.input in hints and all(
        layer.output in hints or graph.formats[layer.output] == graph.formats[layer.inputs[0]]
        for layer in graph.layers)


def chosen_front(network, board, bits=defaults.BITS, calibration=None, tolerance=defaults.TOLERANCE,
                 data=None, labels=None, clock_mhz=None, cap=defaults.CAP, seed=defaults.SEED):
    """`front` at the word lengths `precision.choose` finds for `board` within `tolerance` of
    the `bits`-wide network's top-1 accuracy on the frames of the .npy `data` (with the .npy
    `labels`, else its agreement with the float network): (Front, precision.Choice).

    Raises
    ------
    UserError
        As `front` does, for unreadable frames or labels, and as `precision.choose` does.
    """
    from . import precision

    if data is None:
        raise UserError("--layer-bits auto needs --data: the frames to measure each width's "
                        "accuracy on (with --labels, else agreement with the float network)")
    read = front(network, bits, calibration)
    frames = quant.load_frames(read.graph, data)
    truth = quant.load_labels(labels, len(frames)) if labels else None
    choice = precision.choose(read.graph, read.frames, frames, truth, bits, tolerance, board,
                              clock_mhz=clock_mhz, cap=cap, seed=seed,
                              reserve=lambda q: link_reserve(q, board), progress=progress)
    quantized = quant.quantize(read.graph, read.frames, bits=choice.bits,
                               layer_bits=choice.layer_bits)
    return read._replace(quantized=quantized), choice


def precision_note(choice, tolerance):
    """What a build or exploration says of the word lengths `--layer-bits auto` chose."""
    widths = ", ".join(f"{name} {b}" for name, b in choice.layer_bits.items())
    chosen = f"{choice.bits} bits" + (f" but {widths}" if widths else " throughout")
    return (f"--layer-bits auto chose {chosen}: {choice.metric} {100 * choice.score:.2f}% "
            f"against {100 * choice.reference:.2f}% at {choice.reference_bits} bits (tolerance "
            f"{100 * tolerance:g} points), {choice.fps:,.0f} frames/s predicted against "
            f"{choice.reference_fps:,.0f}")


class Flow(NamedTuple):
    """How a build implements its design: synthesis (and on open-flow boards place and route)
    or not, and where nextpnr runs: `jobs` seeds at once on a local Dask cluster, or on the
    cluster whose scheduler is at `scheduler` (`dnnhw.parallel`)."""
    synth: bool = True
    jobs: int = 1
    scheduler: str | None = None


def build(network, board, out=None, objective=defaults.OBJECTIVE, bits=defaults.BITS,
          calibration=None, clock_mhz=None, synth=True, cap=defaults.CAP, seed=defaults.SEED,
          batch=None, jobs=1, scheduler=None, layer_bits=None, tolerance=defaults.TOLERANCE,
          data=None, labels=None, cascade=None):
    """Build `network` (an ONNX path) for `board` (a `boards.Board`) into `out`; returns the
    folder and the report dict. A network the board does not hold in one design is built in
    partitions (`dnnhw.partitioned`), run over batches of `batch` frames. With `jobs` > 1 (or
    a `scheduler`) nextpnr places the board top with that many seeds at once and keeps the
    best. `layer_bits`: layer name → bits for some layers, or "auto" for the word lengths
    `chosen_front` finds within `tolerance` on `data` (and `labels`). `cascade`: (low, high)
    bits for a cascade of the network at both (`dnnhw.cascade`), its threshold chosen within
    `tolerance` on `data` (and `labels`).

    Raises
    ------
    UserError
        For a bad ONNX file, an unsupported op, a design that cannot fit, bad options or an
        output folder that cannot be written; nothing is left behind.
    """
    network = pathlib.Path(network)
    clock = clock_mhz or board.clock_mhz
    if clock <= 0:
        raise UserError(f"--clock must be positive, got {clock:g}")
    out = pathlib.Path(out or _default_out(network, board))
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    flow = Flow(synth, jobs, scheduler)
    if cascade is not None:
        from .cascade import build_cascade

        refused = [name for name, given in (("--layer-bits", layer_bits), ("--batch", batch),
                                            ("--objective latency", objective == "latency"))
                   if given]
        if refused:
            raise UserError(f"--cascade chooses its own word lengths and plans for throughput: "
                            f"{', '.join(refused)} cannot be given with it")
        return out, _staged(out, lambda folder: build_cascade(
            folder, network, board, cascade, calibration, data, labels, tolerance,
            *pll_clock(board, clock), synth, cap, seed))
    widths = Widths(bits, layer_bits, tolerance, data, labels)
    return out, _staged(out, lambda folder: _build(network, board, folder, objective, widths,
                                                   calibration, clock, flow, cap, seed, batch))


def build_several(networks, board, out=None, bits=defaults.BITS, calibration=None,
                  clock_mhz=None, synth=True, cap=defaults.CAP, seed=defaults.SEED, targets=(),
                  weights=()):
    """Build the ONNX files `networks` into one design for `board` (f-CNNx, `dnnhw.multi`):
    each planned to its --target-fps NAME=FPS item of `targets` (or to its share of the board
    by its --weight NAME=W item of `weights`), then all raised by a common factor; one
    `calibration` file for every network. Returns the folder and the report dict.

    Raises
    ------
    UserError
        As `build` does, and when the targets cannot be met together; nothing is left behind.
    """
    from .multi import build_multi, network_names

    networks = [pathlib.Path(n) for n in networks]
    clock = clock_mhz or board.clock_mhz
    if clock <= 0:
        raise UserError(f"--clock must be positive, got {clock:g}")
    out = pathlib.Path(out or pathlib.Path("build")
                       / f"{'+'.join(network_names(networks))}-{board.name}")
    return out, _staged(out, lambda folder: build_multi(
        folder, networks, board, targets, weights, bits, calibration, clock, synth, cap, seed))


def replay(plan, out=None, synth=True):
    """Build again, into `out`, what the record at `plan` (a build's design/ folder, or its
    plan.json) holds: its quantized graph with its plan, for its board and clock, without the
    frontend, quantization or DSE; returns the folder and the report dict, as `build` does.

    The Verilog and the design/ files are the recorded build's, byte for byte (with the same
    dnnhw); the report's numbers too but for the time taken: its quantization error and the
    DSE's facts are the record's, the rest computed again, and a note says it was replayed.

    Raises
    ------
    UserError
        If the record is missing or corrupt, its plan is not one for its graph, synthesis finds
        the design larger than the device (a replay cannot plan again), or `out` cannot be
        written; nothing is left behind.
    """
    saved = record.read(plan)
    if "partitions" in saved.search:
        raise UserError(f"{plan} records a partitioned build: replay each partition's own "
                        "record (DIR/partition-K/design/plan.json)")
    board = get_board(saved.board)
    try:
        perf = model.network(saved.graph, saved.plan)
    except ValueError as error:
        raise UserError(f"{plan}: the plan does not fit the graph: {error}") from None
    used = dse.Space(saved.graph, board.family).resources(saved.plan)
    try:
        found = dse.Exploration(plan=saved.plan, perf=perf,
                                resources=dict(zip(dse.KINDS, map(int, used))), **saved.search)
    except TypeError as error:
        raise UserError(f"{plan}: not a dnnhw build record ({error})") from None
    out = pathlib.Path(out or _default_out(pathlib.Path(saved.source), board))
    return out, _staged(out, lambda folder: _replay(saved, board, found, plan, folder,
                                                    Flow(synth)))


def _default_out(network, board):
    return pathlib.Path("build") / f"{network.stem}-{board.name}"


def _staged(out, work):
    """`work(folder)`'s result, `folder` a fresh staging folder that then replaces `out`, or
    is removed if `work` raises."""
    staging = _staging_folder(out)
    try:
        result = work(staging)
        _replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result
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


class Widths(NamedTuple):
    """The word lengths a build asks for: `bits` throughout but `layer_bits` (layer name →
    bits), or with `layer_bits` "auto" those `chosen_front` finds within `tolerance` on the
    .npy files `data` and `labels`."""
    bits: int = defaults.BITS
    layer_bits: dict | str | None = None
    tolerance: float = defaults.TOLERANCE
    data: str | None = None
    labels: str | None = None


class Source(NamedTuple):
    """What every record of a build shares: the ONNX file, the quantization's options and the
    fixed-point model's error against onnxruntime; `precision` is `precision.Choice.summary`
    when --layer-bits auto chose the widths."""
    network: str
    bits: int
    calibration: str | None
    float_error: dict
    layer_bits: dict = {}
    precision: dict | None = None

    def quant(self):
        """report.json's ``quant``."""
        return {"bits_w": self.bits, "bits_a": self.bits, "layer_bits": self.layer_bits,
                **({"precision": self.precision} if self.precision else {}),
                "float_error": self.float_error}


def pll_clock(board, clock_mhz):
    """(MHz the board top runs at for `clock_mhz`, a note or None): the PLL's nearest setting on
    a board with a UART top, else `clock_mhz` as asked."""
    if board.host_link != "uart" or board.platform is None:
        return clock_mhz, None
    from .link.top import board_clock

    hz, setting = board_clock(board, clock_mhz)
    if setting is None:
        return hz / 1e6, None
    made = setting.f_out / 1e6
    return made, (f"clock: {clock_mhz:g} MHz asked, the {board.family} PLL makes {made:.4g} MHz "
                  f"from the {setting.f_in / 1e6:g} MHz oscillator (dividers "
                  f"{', '.join(map(str, setting.dividers))})")


def _build(network, board, folder, objective, widths, calibration, clock, flow, cap, seed, batch):
    started = time.perf_counter()
    clock, clock_note = pll_clock(board, clock)
    bits, chosen = widths.bits, None
    if widths.layer_bits == "auto":
        read, choice = chosen_front(network, board, bits, calibration, widths.tolerance,
                                    widths.data, widths.labels, clock, cap, seed)
        bits, layer_bits = choice.bits, choice.layer_bits
        chosen = choice.summary(widths.tolerance)
    else:
        layer_bits = dict(widths.layer_bits or {})
        read = front(network, bits, calibration, layer_bits)
    q = read.quantized
    notes = list(q.notes) + [read.warning] * (read.warning is not None)
    notes += [clock_note] * (clock_note is not None)
    if chosen:
        notes.append(precision_note(choice, widths.tolerance))
    sample = read.frames[:_ERROR_FRAMES]
    error = golden.float_error(frontend.onnxruntime_outputs(network, read.graph, sample),
                               golden.run(q, sample))
    source = Source(str(network), bits, str(calibration) if calibration else None, error,
                    layer_bits, chosen)
    progress(f"exploring foldings for {board.name}")
    found = dse.design(q, board, objective=objective, cap=cap, seed=seed, clock_mhz=clock,
                       batch=batch, reserve=lambda sub: link_reserve(sub, board),
                       reloading=builds_reloading(board))
    if isinstance(found, dse.PartitionedExploration):
        from .partitioned import build_partitions

        return build_partitions(folder, source, read, board, found, flow, notes, started)
    saved, found, synthesized, pnr = accelerator(folder, source, q, read.frames, board, clock,
                                                 found, flow, notes)
    return finish(folder, saved, board, found, synthesized, pnr, notes, started)


def accelerator(folder, source, q, frames, board, clock, found, flow, notes):
    """rtl/, design/ and the implementation of the quantized graph `q` under the DSE's choice
    `found` (a `dse.Exploration`) in `folder`: (record, exploration, synth, pnr). When
    synthesis finds the design larger than the device, the DSE plans again (`_REPLANS` times
    at most) with what the model missed held back, `notes` saying so.

    Raises
    ------
    StillTooLarge
        If no plan fits once synthesized.
    """
    reserve = link_reserve(q, board) or {}
    for attempt in range(_REPLANS + 1):
        search = {f.name: getattr(found, f.name) for f in dataclasses.fields(found)
                  if f.name not in _PLANNED}
        saved = record.Record(source.network, source.bits, source.calibration,
                              source.float_error, q, frames, board.name, clock, search, found.plan,
                              source.layer_bits, source.precision)
        synthesized, pnr, used, too_large = _generate(folder, saved, board, flow, notes)
        if not too_large:
            return saved, found, synthesized, pnr
        if attempt == _REPLANS:
            raise StillTooLarge(_still_too_large(board, used, _REPLANS + 1), reserve)
        reserve, note = _hold_back(board, found, reserve, used)
        notes.append(note)
        progress(note)
        for part in ("rtl", "design", "synth", "board"):
            shutil.rmtree(folder / part, ignore_errors=True)
        progress(f"exploring foldings for {board.name} again")
        try:
            found = dse.explore(q, board, objective=found.objective, cap=found.cap,
                                seed=found.seed, clock_mhz=clock, reserve=reserve)
        except UserError:
            raise StillTooLarge(_still_too_large(board, used, attempt + 1), reserve) from None


def _replay(saved, board, found, plan, folder, flow):
    started = time.perf_counter()
    notes = list(saved.graph.notes) + [SYNTHETIC_CALIBRATION] * (saved.calibration is None)
    notes.append(f"replayed the record {plan}: the frontend, quantization and DSE did not run")
    synthesized, pnr, used, too_large = _generate(folder, saved, board, flow, notes)
    if too_large:
        raise UserError(f"the synthesized design does not fit {board.part}: it needs "
                        f"{_needs(board, used)}; a replayed plan cannot change (build from the "
                        "network to plan again)")
    return finish(folder, saved, board, found, synthesized, pnr, notes, started)


def _generate(folder, saved, board, flow, notes):
    """rtl/, design/ and the implementation (`implement`) of the build `saved` records:
    (synth, pnr, used, too_large), `used` the resources synthesis found the design takes (None
    when not synthesized), `too_large` whether they exceed `board` or nextpnr could not place
    the design."""
    accel = _write_design(folder, saved)
    try:
        synthesized, pnr, used = implement(accel, board, folder, flow, notes, saved.clock_mhz)
    except DoesNotFit as error:
        return None, None, error.used, True
    if pnr is not None and pnr.get("clock_mhz") and pnr["clock_mhz"] != saved.clock_mhz:
        saved.clock_mhz = pnr["clock_mhz"]          # timing closure lowered the clock
    return synthesized, pnr, used, used is not None and bool(_over(board, used))


def finish(folder, saved, board, found, synthesized, pnr, notes, started):
    """The report of the build `saved` records, with pareto.png, written into `folder`."""
    result = {**report.design_summary(saved.graph, board, found, saved.clock_mhz),
              "source": saved.source, "synth": synthesized, "pnr": pnr,
              "quant": Source(saved.source, saved.bits, saved.calibration, saved.float_error,
                              saved.layer_bits, saved.precision).quant(),
              "notes": notes, "build_seconds": round(time.perf_counter() - started, 2)}
    chosen = {**found.resources, "fps": result["predicted"]["fps"]}
    report.pareto_plot(result["dse"]["pareto"], chosen, folder / "pareto.png",
                       title=f"{saved.graph.name} on {board.name}")
    write_report(folder, result)
    return result


#: Block RAM bits per unit of `bram` per family (DESIGN.md's units).
_BRAM_BITS = {"xc7": 18432, "ecp5": 18432, "ice40": 4096}


def link_reserve(q, board):
    """Resources the UART board top (`dnnhw.link.top`) takes beside the accelerator: a rough,
    measured-once allowance for the UART and protocol logic (about 700 LUTs and 500 flip-flops
    on iCE40 for the tests' designs), and block RAM for its one-frame request buffer. None for
    boards without a UART top."""
    return _link_allowance(q.shapes[q.input].size * q.formats[q.input].bits, board)


def _link_allowance(frame_bits, board):
    """`link_reserve` for input frames of `frame_bits` bits."""
    if board.platform is None or board.host_link != "uart":
        return None
    return {"lut": 800, "ff": 600, "dsp": 0, "bram": -(-frame_bits // _BRAM_BITS[board.family])}


def builds_reloading(board):
    """Whether `dnnhw build` makes weights-reloading designs for `board`: only where a memory
    top reads the weights from DRAM (the Zynq boards' AXI-Stream link), so `explore` plans
    what `build` would build."""
    return board.host_link == "axi-stream"


#: How many times a build plans again when synthesis finds the design larger than the device.
_REPLANS = 2


def _write_design(folder, saved):
    """rtl/ and design/ of the accelerator the record `saved` describes; returns the
    `Accelerator`."""
    from amaranth.back import verilog
    from .accel import Accelerator

    progress("generating Verilog")
    accel = Accelerator(saved.graph, saved.plan)
    (folder / "rtl").mkdir()
    (folder / "rtl" / f"{TOP}.v").write_text(verilog.convert(accel, name=TOP, emit_src=False))
    design = folder / "design"
    design.mkdir()
    record.write(design, saved)
    (design / "design.json").write_text(json.dumps(_design_json(saved.graph, accel), indent=2))
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


def _needs(board, used):
    """What a design that synthesis found too large needs: the resources over, or (none
    over) its logic that nextpnr could not place."""
    over = "; ".join(f"{used[k]:,} {k.upper()} of {board.resources[k]:,}"
                     for k in _over(board, used))
    return over or (f"{used['lut']:,} LUTs and {used['ff']:,} flip-flops, more than nextpnr "
                    "could place")


def _still_too_large(board, used, plans):
    times = "once" if plans == 1 else f"{plans} times"
    return (f"the synthesized design does not fit {board.part}: it needs {_needs(board, used)}; "
            f"planned {times}, holding back what synthesis found the model had missed, and no "
            "plan fits (a lower --cap leaves more room)")


#: Place-and-route runs of a board top at most: the clock asked for, then lower ones.
_TIMING_RUNS = 3

#: A run after a failed one aims this far below the fmax it reached: placement moves by a few
#: per cent between runs (measured: 101 MHz at a clock of 107, after 108 at one of 150).
_TIMING_MARGIN = 0.97


def _closed_timing(accel, board, folder, clock_mhz, notes, flow=Flow()):
    """`board_flow` at `clock_mhz`, and while nextpnr's fmax falls short of the clock, again
    at the PLL's fastest setting `_TIMING_MARGIN` below that fmax (`_TIMING_RUNS` runs at
    most): a clock the design meets, `notes` saying what was asked and what was achieved.
    A board without a PLL here (Xilinx) has its shortfall reported, not fixed. With
    `flow.jobs` > 1 or a scheduler, each run places `flow.jobs` seeds at once on a Dask
    cluster and keeps the best (`toolchain.board.board_flow`)."""
    from .parallel import cluster

    with cluster(flow.jobs, flow.scheduler) as client:
        return _close_timing(accel, board, folder, clock_mhz, notes, flow, client)


def _close_timing(accel, board, folder, clock_mhz, notes, flow, client):
    from .link.pll import PLL_FAMILIES, plan
    from .link.top import board_clock
    from .toolchain.board import board_flow

    seeds = tuple(range(1, flow.jobs + 1)) if client is not None else ()
    asked = clock_mhz
    for run in range(_TIMING_RUNS):
        synthesized, pnr, more = board_flow(accel, board, folder, progress, clock_mhz, seeds,
                                            client)
        if "seeds" in pnr:
            kept = next(s for s in pnr["seeds"] if s["kept"])
            notes.append(f"place and route: {len(seeds)} nextpnr seeds at once on a Dask "
                         f"cluster at {clock_mhz:.4g} MHz, fmax "
                         + ", ".join(f"{s['fmax_mhz']:.4g}" for s in pnr["seeds"])
                         + f" MHz; kept seed {kept['seed']}")
        fmax = pnr["fmax_mhz"]
        if pnr["timing_met"] or fmax is None or board.family not in PLL_FAMILIES:
            break
        if run == _TIMING_RUNS - 1:
            notes.append(f"timing: {clock_mhz:.4g} MHz still fails (nextpnr: {fmax:.4g} MHz) "
                         f"after {_TIMING_RUNS} place-and-route runs")
            break
        oscillator = board_clock(board)[0]
        lower = plan(board.family, oscillator, _TIMING_MARGIN * fmax * 1e6, below=True).f_out / 1e6
        note = (f"timing: nextpnr reached {fmax:.4g} MHz of the {clock_mhz:.4g} MHz asked; "
                f"placed and routed again at {lower:.4g} MHz (the PLL's fastest at most "
                f"{_TIMING_MARGIN:.0%} of it)")
        notes.append(note)
        progress(note)
        clock_mhz = lower
        shutil.rmtree(folder, ignore_errors=True)
    if clock_mhz != asked and pnr["timing_met"]:
        notes.append(f"timing: met at {clock_mhz:.4g} MHz (nextpnr: {pnr['fmax_mhz']:.4g} MHz); "
                     "the report's rates are at that clock")
    pnr = {**pnr, "clock_mhz": round(clock_mhz, 6)}
    return synthesized, pnr, more


def implement(accel, board, folder, flow, notes, clock_mhz):
    """Synthesis, and the board flow where the board has a UART top: (synth, pnr, used): the
    Yosys counts and nextpnr's figures (dicts or None), and what the design takes of the device
    by those counts (the board top's; or the accelerator's plus `link_reserve`), None when not
    synthesized.

    Open-flow boards (ECP5, iCE40) synthesize, place and route the board top to a bitstream in
    board/; Xilinx boards get the accelerator's Yosys counts and the Vivado plan in board/;
    boards with an AXI4-Stream link (Zynq targets) get the Yosys counts, the AXI4-Stream top's
    Verilog, and the memory top with its Vivado block design (`dnnhw.zynq.board`) in board/.

    Raises
    ------
    DoesNotFit
        If nextpnr cannot place the board top (it is larger than the device, or too full)."""
    from .toolchain.board import board_flow
    from .toolchain.yosys import FAMILIES, synthesize

    top = board.platform is not None and board.host_link == "uart"
    if board.host_link == "axi-stream":
        from .zynq.board import write_zynq_board

        notes.append(_axis_top(accel, board, folder / "board"))
        notes.append(write_zynq_board(accel, board, folder / "board", clock_mhz))
    if not flow.synth:
        notes.append("synthesis, place and route not run (--no-synth)")
        if top and not board.open_flow:
            notes.extend(board_flow(accel, board, folder / "board", progress, clock_mhz)[2])
        return None, None, None
    if top and board.open_flow:
        synthesized, pnr, more = _closed_timing(accel, board, folder / "board", clock_mhz, notes,
                                                flow)
        notes.extend(more)
        return synthesized, pnr, synthesized
    progress(f"synthesizing with Yosys for {board.family} (minutes for large designs)")
    resources, _ = synthesize(accel, board.family, name=TOP, workdir=folder / "synth")
    synthesized = {"tool": f"yosys ({FAMILIES[board.family]}, accelerator only)", **resources}
    link = _link_allowance(accel.in_shape.size * accel.in_bits, board) or {}
    used = {k: resources[k] + link.get(k, 0) for k in resources}
    if top and not _over(board, used):
        notes.extend(board_flow(accel, board, folder / "board", progress, clock_mhz)[2])
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
    load = ({"w": {"lanes": 1, "bits": accel.load_bits, "signed": False,
                   "beats": accel.load_beats, "layers": accel.loads}} if accel.loads else {})
    return {
        "top": TOP,
        "ports": {"i": {"lanes": accel.input_lanes, "bits": fi.bits},
                  "o": {"lanes": accel.output_lanes, "bits": fo.bits}, **load},
        "input_shape": list(q.shapes[q.input]), "output_shape": list(q.shapes[q.output]),
        "predicted": {"cycles_per_frame": accel.perf.cycles_per_frame,
                      "latency_cycles": accel.perf.latency},
    }


def write_report(folder, result):
    """report.json and report.html in `folder`, each replaced in one rename."""
    from .report_partitions import write_partitioned_html

    from .report_cascade import write_cascade_html
    from .report_multi import write_multi_html

    folder = pathlib.Path(folder)
    page = (write_partitioned_html if result.get("partitioned") else
            write_cascade_html if result.get("cascade") else
            write_multi_html if result.get("multi") else report.write_html)
    for name, write in (("report.json", lambda p: p.write_text(json.dumps(result, indent=2))),
                        ("report.html", lambda p: page(result, p))):
        partial = folder / f".{name}.partial"
        write(partial)
        os.replace(partial, folder / name)


def load_design(folder):
    """(report dict, design dict, quantized graph) of a build folder.

    Raises
    ------
    UserError
        If `folder` is not a build folder, or its record does not read as one.
    """
    folder = pathlib.Path(folder)
    needed = [folder / "report.json", folder / "design" / "design.json",
              *(folder / "design" / name for name in ("graph.json", "graph.npz")),
              folder / "rtl" / f"{TOP}.v"]
    missing = [str(p.relative_to(folder)) for p in needed if not p.exists()]
    if not folder.is_dir() or missing:
        raise UserError(f"'{folder}' is not a dnnhw build folder"
                        + (f" (missing {', '.join(missing)})" if folder.is_dir() else ""))
    return (json.loads((folder / "report.json").read_text()),
            json.loads((folder / "design" / "design.json").read_text()),
            record.read_graph(folder / "design"))
