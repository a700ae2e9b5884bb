"""Command line: build, verify, explore, rank, run, program, inspect, boards (DESIGN.md,
"Command line and reports").

Exit status 0 on success, 2 on the user's error (one line on stderr, no traceback), 1 on an
internal error.
"""

import argparse
import json
import os
import pathlib
import sys
import traceback

import numpy as np

from . import defaults, frontend, golden, quant, report
from .boards import BOARDS, DEFAULT_BOARD, get_board
from .errors import UserError


__all__ = ["main"]


def _layer_bits(text):
    if text == "auto":
        return text
    name, sep, bits = text.rpartition("=")
    if not sep or not name or not bits.isdigit():
        raise argparse.ArgumentTypeError(f"expected LAYER=BITS, got '{text}'")
    return name, int(bits)


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def _parser():
    parser = argparse.ArgumentParser(prog="dnnhw", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="show a network's layers, shapes, MACs, fixed-point formats and error")
    inspect.add_argument("network", metavar="NET.onnx")
    inspect.add_argument("--bits", type=int, default=defaults.BITS, help=_BITS_HELP)
    inspect.add_argument("--layer-bits", type=_layer_bits, action="append", default=[],
                         metavar="LAYER=BITS", help="bits for one layer (repeatable)")
    inspect.add_argument("--calibration", metavar="FILE.npy",
                         help="calibration inputs (N, ...input shape...); default: synthetic N(0,1)")
    inspect.add_argument("--data", metavar="FILE.npy",
                         help="inputs to measure the error on (default: the calibration inputs)")
    inspect.add_argument("--labels", metavar="FILE.npy",
                         help="class labels of --data: prints float, 8- and 16-bit accuracy")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")

    build = commands.add_parser(
        "build", help="build a verified streaming accelerator for a board: DSE, Verilog, synthesis, report")
    build.add_argument("network", metavar="NET.onnx", nargs="*",
                       help="a network; several: one design holding them all (f-CNNx)")
    _board_options(build)
    build.add_argument("--target-fps", action="append", metavar="NAME=FPS",
                       help="with several networks: the frames/s network NAME (its file's stem) "
                       "must reach (repeatable); what is left raises every network's rate")
    build.add_argument("--weight", action="append", metavar="NAME=W",
                       help="with several networks: the importance of a network without a "
                       "target: its share of the board is W over the sum of weights (default 1)")
    build.add_argument("--plan", metavar="DIR/design/plan.json",
                       help="rebuild a recorded build from its quantized graph and plan (its "
                       "plan.json or design folder), without the frontend, quantization or DSE")
    build.add_argument("--cascade", metavar="LOW,HIGH",
                       help="a cascade: every frame through the network at LOW bits, the frames "
                       "whose top two scores are closest again at HIGH bits, the threshold "
                       "chosen on --data (and --labels) to lose at most --tolerance")
    build.add_argument("--out", metavar="DIR", help="build folder (default build/<net>-<board>)")
    build.add_argument("--no-synth", action="store_true", help="skip Yosys synthesis")
    _dask_options(build, "place and route N nextpnr seeds at once on a local Dask cluster and "
                  "keep the best", "the place-and-route seeds")
    build.add_argument("--verify", action="store_true",
                       help="also run `verify` on the build (cocotb + Verilator against golden)")
    build.add_argument("--frames", type=int,
                       help=f"frames for --verify (default {defaults.FRAMES}, or all of --data)")
    _measure_options(build, "; --verify simulates them")

    verify = commands.add_parser(
        "verify", help="simulate a build's Verilog in cocotb + Verilator against the golden model")
    verify.add_argument("folder", metavar="DIR")
    verify.add_argument("--frames", type=int, help="how many frames (default: all of --data, "
                        f"else {defaults.FRAMES} calibration frames)")
    verify.add_argument("--data", metavar="FILE.npy", help="input frames to verify on")
    verify.add_argument("--labels", metavar="FILE.npy",
                        help="class labels of --data: reports the hardware's accuracy")
    verify.add_argument("--stall", type=float, default=defaults.STALL,
                        help="stall probability on both streams in the stalled run (default "
                        f"{defaults.STALL:g})")
    verify.add_argument("--waves", action="store_true",
                        help="write VCD waveforms of the runs to DIR/waves/")
    _dask_options(verify, "simulate the unstalled run's frames in N shards beside the stalled "
                  "run, at once on a local Dask cluster of N workers", "the simulations")

    explore = commands.add_parser(
        "explore", help="search foldings for a board: chosen plan, fps, latency, Pareto front")
    explore.add_argument("network", metavar="NET.onnx")
    _board_options(explore)
    explore.add_argument("--target-fps", type=float, metavar="FPS",
                         help="the cheapest design reaching this frame rate instead")
    explore.add_argument("--plot", metavar="FILE.png", help="write the Pareto front as a PNG "
                         "(for a partitioned design: the throughput against the batch size)")
    _measure_options(explore, "")
    explore.add_argument("--json", action="store_true", help="print JSON instead of a table")

    rank = commands.add_parser(
        "rank", help="rank candidate networks for one task by fixed-point accuracy and "
        "predicted frames/s on a board")
    rank.add_argument("networks", metavar="NET.onnx", nargs="+")
    _board_options(rank)
    rank.add_argument("--data", metavar="FILE.npy", required=True,
                      help="frames to measure each candidate's top-1 accuracy on")
    rank.add_argument("--labels", metavar="FILE.npy", required=True, help="their class labels")
    rank.add_argument("--plot", metavar="FILE.png",
                      help="write accuracy against frames/s, with the Pareto front, as a PNG")
    rank.add_argument("--json", action="store_true", help="print JSON instead of a table")

    run = commands.add_parser(
        "run", help="run input frames on a board programmed with a build, over its UART")
    run.add_argument("folder", metavar="DIR")
    run.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    run.add_argument("--input", required=True, metavar="FILE.npy", help="input frames (N, ...)")
    run.add_argument("--baud", type=int, help="baud rate (default: what the board top uses)")
    run.add_argument("--out", metavar="FILE.npy", help="save the outputs (default: print them)")

    program = commands.add_parser(
        "program", help="load a build's bitstream onto its board with openFPGALoader")
    program.add_argument("folder", metavar="DIR")
    program.add_argument("--flash", action="store_true",
                         help="write the configuration flash (default: the FPGA's SRAM)")

    boards = commands.add_parser("boards", help="list the boards dnnhw targets")
    boards.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


_BITS_HELP = (f"weight and activation bits, {quant.MIN_BITS}..{quant.MAX_BITS} (default "
              f"{defaults.BITS})")

#: The options `_board_options` adds, each by the keyword of `build.build` it sets. They have
#: no argparse defaults (an option not given is absent from the arguments), so that the
#: functions' own defaults (`dnnhw.defaults`) apply and `build --plan` can refuse them.
_BOARD_OPTIONS = {"board": "board", "objective": "objective", "bits": "bits",
                  "layer_bits": "layer_bits", "tolerance": "tolerance",
                  "calibration": "calibration", "clock": "clock_mhz", "cap": "cap", "seed": "seed",
                  "batch": "batch"}


def _measure_options(command, also):
    """--data and --labels: what --layer-bits auto measures accuracy on."""
    command.add_argument("--data", metavar="FILE.npy",
                         help=f"frames --layer-bits auto measures top-1 accuracy on{also}")
    command.add_argument("--labels", metavar="FILE.npy",
                         help="class labels of --data (without them: agreement with the float "
                         "network)")


def _dask_options(command, jobs_help, runs):
    """--jobs and --scheduler (`dnnhw.parallel`)."""
    command.add_argument("--jobs", type=int, default=1, metavar="N",
                         help=f"{jobs_help} (default 1: one after the other)")
    command.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                         help=f"run {runs} on this Dask cluster (with a filesystem shared with "
                         "this machine)")


def _board_options(command):
    absent = argparse.SUPPRESS
    command.add_argument("--board", default=absent,
                         help=f"target board (default {DEFAULT_BOARD}; see `dnnhw boards`)")
    command.add_argument("--objective", default=absent, choices=["throughput", "latency"],
                         help="maximise frames/s or minimise batch-1 latency (default "
                         f"{defaults.OBJECTIVE})")
    command.add_argument("--bits", type=int, default=absent, help=_BITS_HELP)
    command.add_argument("--layer-bits", type=_layer_bits, action="append", default=absent,
                         metavar="LAYER=BITS|auto",
                         help="bits for one layer (repeatable); auto: the word length of each "
                         "layer that gives the most frames/s within --tolerance of --bits' "
                         "accuracy on --data (and --labels)")
    command.add_argument("--tolerance", type=float, default=absent, metavar="T",
                         help="top-1 accuracy --layer-bits auto may lose, as a fraction (default "
                         f"{defaults.TOLERANCE:g})")
    command.add_argument("--calibration", metavar="FILE.npy", default=absent,
                         help="calibration inputs (N, ...input shape...); default: synthetic N(0,1)")
    command.add_argument("--clock", type=_positive, metavar="MHZ", default=absent,
                         help="clock (default the board's)")
    command.add_argument("--cap", type=float, default=absent,
                         help="fraction of each resource the design may use (default "
                         f"{defaults.CAP:g})")
    command.add_argument("--seed", type=int, default=absent,
                         help=f"seed of the stochastic search (default {defaults.SEED})")
    command.add_argument("--batch", type=int, default=absent, metavar="B",
                         help="frames per batch of a network run in partitions (default: 1 "
                         "for --objective latency, else the largest the board's DRAM holds, "
                         "up to 256)")


def _given(args, *keys, cascade=False):
    """The board options among `keys` (`_BOARD_OPTIONS`' keywords) that the user gave, by
    keyword; the board as a `boards.Board`. `cascade`: --cascade was given (--tolerance
    applies to it)."""
    given = {key: getattr(args, option) for option, key in _BOARD_OPTIONS.items()
             if key in keys and hasattr(args, option)}
    if "layer_bits" in given:
        entries = given["layer_bits"]
        if "auto" in entries and len(entries) > 1:
            raise UserError("--layer-bits auto chooses every layer's bits: give no LAYER=BITS "
                            "with it")
        given["layer_bits"] = "auto" if "auto" in entries else dict(entries)
    if "tolerance" in given and given.get("layer_bits") != "auto" and not cascade:
        raise UserError("--tolerance is what --layer-bits auto or --cascade may lose: give it "
                        "with one of them")
    if "board" in keys:
        given["board"] = get_board(given.get("board", DEFAULT_BOARD))
    return given


def build_command(args):
    from .build import build, replay
    from .report import format_report

    if args.labels and not args.data:
        raise UserError("--labels needs --data")
    if args.plan:
        extra = (["--" + option.replace("_", "-") for option in _BOARD_OPTIONS
                  if hasattr(args, option)] + ["NET.onnx"] * bool(args.network)
                 + ["--cascade"] * (args.cascade is not None)
                 + ["--target-fps"] * bool(args.target_fps) + ["--weight"] * bool(args.weight))
        if extra:
            raise UserError(f"--plan rebuilds a build as it was recorded: {', '.join(extra)} "
                            "cannot be given with it")
        folder, result = replay(args.plan, out=args.out, synth=not args.no_synth)
    elif not args.network:
        raise UserError("build needs NET.onnx, or --plan to rebuild a recorded build")
    elif len(args.network) > 1:
        folder, result = _build_several(args)
    elif args.target_fps or args.weight:
        raise UserError("--target-fps NAME=FPS and --weight NAME=W are for several networks; "
                        "`dnnhw explore --target-fps FPS` plans one network for a frame rate")
    else:
        cascade = None
        if args.cascade is not None:
            from .cascade import parse_pair

            cascade = parse_pair(args.cascade)
            if hasattr(args, "bits"):
                raise UserError("--cascade LOW,HIGH sets both word lengths: --bits cannot be "
                                "given with it")
        folder, result = build(args.network[0], out=args.out, synth=not args.no_synth,
                               jobs=args.jobs, scheduler=args.scheduler, data=args.data,
                               labels=args.labels, cascade=cascade,
                               **_given(args, *_BOARD_OPTIONS.values(),
                                        cascade=cascade is not None))
    for note in result["notes"]:
        print(f"dnnhw: note: {note}", file=sys.stderr)
    if args.verify:
        from .verify import verify

        result["verify"] = verify(folder, frames=args.frames, data=args.data, labels=args.labels)
    if result.get("partitioned"):
        from .report_partitions import format_partitioned

        print(format_partitioned(result))
    elif result.get("cascade"):
        from .report_cascade import format_cascade

        print(format_cascade(result))
    elif result.get("multi"):
        from .report_multi import format_multi

        print(format_multi(result))
    else:
        print(format_report(result))
    print(f"report: {folder / 'report.html'}")
    return _verified(result.get("verify"))


#: What a build of several networks takes of `_BOARD_OPTIONS`.
_SEVERAL_OPTIONS = ("board", "bits", "calibration", "clock_mhz", "cap", "seed")


def _build_several(args):
    """`build A.onnx B.onnx ...` (`dnnhw.multi`), refusing what applies to one network."""
    from .build import build_several

    refused = [f"--{option.replace('_', '-')}" for option, key in _BOARD_OPTIONS.items()
               if hasattr(args, option) and key not in _SEVERAL_OPTIONS]
    refused += [name for name, given in (("--cascade", args.cascade), ("--data", args.data),
                                         ("--jobs", args.jobs > 1),
                                         ("--scheduler", args.scheduler)) if given]
    if refused:
        raise UserError(f"several networks are built at --bits with --target-fps per network: "
                        f"{', '.join(refused)} cannot be given with them")
    return build_several(args.network, out=args.out, synth=not args.no_synth,
                         targets=args.target_fps, weights=args.weight,
                         **_given(args, *_SEVERAL_OPTIONS))


def verify_command(args):
    from .verify import verify

    if args.labels and not args.data:
        raise UserError("--labels needs --data")
    if not 0 <= args.stall < 1:
        raise UserError(f"--stall must be in [0, 1), got {args.stall:g}")
    out = verify(args.folder, frames=args.frames, data=args.data, labels=args.labels,
                 stall=args.stall, waves=args.waves, jobs=args.jobs, scheduler=args.scheduler)
    if out.get("chained"):
        _print_chained(out)
    elif out.get("several"):
        for network in out["networks"]:
            print(f"{network['name']}: ", end="")
            _print_verified(network)
    else:
        _print_verified(out)
    if "accuracy" in out:
        a = out["accuracy"]
        print(f"top-1 accuracy on {a['frames']} frames: hardware {100 * a['hardware']:.2f}%, "
              f"golden {100 * a['golden']:.2f}%, float {100 * a['float']:.2f}%")
    print(f"written: {pathlib.Path(args.folder) / 'verify.json'}")
    return _verified(out)


def _print_chained(out):
    print(f"{out['frames']} frames through {len(out['partitions'])} partitions, each fed the "
          f"outputs the one before computed: {'bit-exact' if out['bit_exact'] else 'MISMATCH'} "
          "against the golden model of the whole network")
    for p in out["partitions"]:
        print(f"  partition {p['index']}: {'bit-exact' if p['bit_exact'] else 'MISMATCH'} "
              f"({p['stalled_frames']} frames also under stalls); cycles/frame measured "
              f"{p['measured_cycles_per_frame'] if p['measured_cycles_per_frame'] is not None else '—'}"
              f", predicted {p['predicted_cycles_per_frame']}"
              + (f"; {p['chunks']} weight loads and runs: {p['measured_batch_cycles']:,} cycles "
                 f"measured, {p['predicted_batch_cycles']:,} predicted" if "chunks" in p else ""))


def _print_verified(out):
    rate = out["measured_cycles_per_frame"]
    print(f"{out['frames']} frames: {'bit-exact' if out['bit_exact'] else 'MISMATCH'} against "
          f"the golden model ({out['stalled_frames']} also under random stalls); cycles/frame "
          f"measured {rate if rate is not None else '—'}, predicted "
          f"{out['predicted_cycles_per_frame']}; batch-1 latency measured "
          f"{out['measured_latency_cycles']}, predicted {out['predicted_latency_cycles']} cycles")


def _verified(out):
    """Exit status of a verification: 0 when bit-exact (or not run), else 1 with the reason."""
    if out is None or out["bit_exact"]:
        return 0
    if out.get("chained"):
        wrong = [str(p["index"]) for p in out["partitions"] if not p["bit_exact"]]
        print(f"dnnhw: verification FAILED: partition {', '.join(wrong) or 'outputs'} differ "
              "from the golden model (see each partition's verify.json)", file=sys.stderr)
        return 1
    if out.get("several"):
        wrong = [n["name"] for n in out["networks"] if not n["bit_exact"]]
        print(f"dnnhw: verification FAILED: the outputs of {', '.join(wrong)} differ from their "
              "golden models (see verify.json)", file=sys.stderr)
        return 1
    first = out.get("first_mismatch", {})
    print(f"dnnhw: verification FAILED: {out['mismatches']} of {out['frames']} frames differ "
          f"from the golden model ({out['stalled_mismatches']} under stalls); first: frame "
          f"{first.get('frame')}, element {first.get('index')}: hardware {first.get('got')}, "
          f"golden {first.get('want')}", file=sys.stderr)
    return 1


def explore_command(args):
    from .build import builds_reloading, chosen_front, front, link_reserve, precision_note
    from .dse import PartitionedExploration, design

    options = _given(args, "board", "objective", "cap", "seed", "clock_mhz", "batch")
    board = options.pop("board")
    widths = _given(args, "bits", "calibration", "layer_bits", "tolerance")
    choice = None
    if widths.get("layer_bits") == "auto":
        tolerance = widths.pop("tolerance", defaults.TOLERANCE)
        del widths["layer_bits"]
        read, choice = chosen_front(args.network, board, data=args.data, labels=args.labels,
                                    tolerance=tolerance, clock_mhz=options.get("clock_mhz"),
                                    **_given(args, "cap", "seed"), **widths)
        print(f"dnnhw: note: {precision_note(choice, tolerance)}", file=sys.stderr)
        q = read.quantized
    else:
        q = front(args.network, **widths).quantized
    found = design(q, board, target_fps=args.target_fps,
                   reserve=lambda sub: link_reserve(sub, board),
                   reloading=builds_reloading(board), **options)
    if isinstance(found, PartitionedExploration):
        from .report_partitions import batch_plot, format_partitioned

        summary = report.partitioned_summary(q, board, found)
        print(json.dumps(summary, indent=2) if args.json else format_partitioned(summary))
        if args.plot:
            batch_plot(summary, args.plot)
            print(f"throughput against batch: {args.plot}", file=sys.stderr if args.json else sys.stdout)
        return
    summary = report.design_summary(q, board, found, options.get("clock_mhz", board.clock_mhz))
    if choice is not None:
        summary["precision"] = choice.summary(tolerance)
    total = summary["macs_per_frame"]
    summary["roofline_fps"] = board.dsp * (summary["clock_mhz"] * 1e6) / total if total else None
    if args.plot:
        report.pareto_plot(summary["dse"]["pareto"],
                           {**found.resources, "fps": summary["predicted"]["fps"]}, args.plot,
                           title=f"{q.name} on {board.name}")
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_exploration_text(summary))
        if args.plot:
            print(f"Pareto plot: {args.plot}")


def _exploration_text(s):
    p = s["predicted"]
    rows = [["layer", "op", "coarse_in", "coarse_out", "fine", "coarse_group", "cycles/frame",
             "latency"]]
    rows += [[l["name"], l["op"], str(l["coarse_in"]), str(l["coarse_out"]), str(l["fine"]),
              str(l["coarse_group"]), f"{l['cycles_per_frame']:,}", f"{l['latency_cycles']:,}"]
             for l in s["layers"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths))) for r in rows)
    dse = s["dse"]
    used = ", ".join(f"{k.upper()} {p['resources'][k]:,}/{dse['limit'][k]:,}"
                     for k in p["resources"])
    front = [q for q in dse["pareto"] if q["pareto"]]
    roof = (f", {100 * p['fps'] / s['roofline_fps']:.0f}% of the DSP roofline"
            if s["roofline_fps"] else "")
    return "\n".join([
        f"{s['network']} on {s['board']} ({s['objective']}): {p['fps']:,.1f} frames/s "
        f"({p['cycles_per_frame']:,} cycles/frame{roof}), batch-1 latency "
        f"{p['latency_cycles']:,} cycles ({p['latency_us']:.1f} µs), {p['gops']:.2f} GOPS",
        f"resources (used/limit at {dse['cap']:.0%} of the board): {used}; "
        f"bottleneck {p['bottleneck']}; binding: {dse['binding']}",
        "", table, "",
        f"Pareto front ({len(front)} designs): " + ", ".join(
            f"{q['fps']:,.0f} fps @ {q['dsp']} DSP" for q in front)])


def rank_command(args):
    from .rank import format_ranking, rank, ranking_plot

    if hasattr(args, "layer_bits") or hasattr(args, "tolerance"):
        raise UserError("rank compares the networks at one word length (--bits): --layer-bits "
                        "and --tolerance are for build and explore")
    options = _given(args, "board", "bits", "calibration", "objective", "cap", "seed",
                     "clock_mhz", "batch")
    rows = rank(args.networks, data=args.data, labels=args.labels, **options)
    bits = options.get("bits", defaults.BITS)
    print(json.dumps(rows, indent=2) if args.json else format_ranking(rows, options["board"], bits))
    if args.plot:
        ranking_plot(rows, args.plot, title=f"{len(rows)} candidates on {options['board'].name} "
                     f"at {bits} bits")
        print(f"accuracy against frames/s: {args.plot}",
              file=sys.stderr if args.json else sys.stdout)


def run_command(args):
    from .host import run

    outputs = run(args.folder, args.port, args.input, baud=args.baud)
    if args.out:
        np.save(args.out, outputs)
        print(f"{len(outputs)} frames; outputs written to {args.out}")
    else:
        for k, out in enumerate(outputs):
            flat = out.reshape(-1)
            print(f"frame {k}: top-1 {int(flat.argmax())}  "
                  + " ".join(f"{v:.4g}" for v in flat[:16]) + (" …" if flat.size > 16 else ""))


def list_boards(args):
    if args.json:
        print(json.dumps([board.summary() for board in BOARDS.values()], indent=2))
        return
    rows = [["board", "device", "LUT", "FF", "DSP", "BRAM", "MHz", "flow", "description"]]
    for b in BOARDS.values():
        flow = "bitstream" if b.open_flow else "Vivado plan" if b.platform else "DSE only"
        rows.append([b.name + (" (default)" if b.name == DEFAULT_BOARD else ""), b.part,
                     f"{b.lut:,}", f"{b.ff:,}", str(b.dsp), str(b.bram), f"{b.clock_mhz:g}", flow,
                     b.description])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def inspect(args):
    from .build import front

    if args.labels and not args.data:
        raise UserError("--labels needs --data")
    if "auto" in args.layer_bits:
        raise UserError("inspect takes --layer-bits LAYER=BITS; auto is for build and explore")
    layer_bits = dict(args.layer_bits)
    graph, q, calibration, warning = front(args.network, args.bits, args.calibration, layer_bits)
    warnings = [warning] * (warning is not None)
    source = args.calibration or "synthetic"
    frames = quant.load_frames(graph, args.data) if args.data else calibration
    reference = frontend.onnxruntime_outputs(args.network, graph, frames)
    error = golden.float_error(reference, golden.run(q, frames))
    summary = report.graph_summary(q)
    summary["quant"] = {
        "bits_w": args.bits, "bits_a": args.bits, "layer_bits": layer_bits,
        "calibration": {"source": source, "frames": len(calibration)},
        "float_error": {**error, "frames": len(frames),
                        "float_path_max_abs": float(np.max(np.abs(golden.run(graph, frames, fixed=False)
                                                                  - reference)))},
        "warnings": warnings,
    }
    if args.labels:
        labels = quant.load_labels(args.labels, len(frames))
        accuracy = {"frames": len(frames), "float": float(np.mean(reference.reshape(len(frames), -1)
                                                                 .argmax(axis=1) == labels)),
                    "fixed": {}}
        for bits in sorted({8, 16, args.bits}):
            qb = q if bits == args.bits else quant.quantize(graph, calibration, bits=bits,
                                                             layer_bits=layer_bits)
            out = golden.run(qb, frames).reshape(len(frames), -1)
            accuracy["fixed"][str(bits)] = float(np.mean(out.argmax(axis=1) == labels))
        summary["accuracy"] = accuracy
    summary["notes"] = graph.notes
    for note in graph.notes:
        print(f"dnnhw: note: {note}", file=sys.stderr)
    for warning in warnings:
        print(f"dnnhw: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_inspect_text(q, summary))


def _inspect_text(q, summary):
    s = summary
    fi, fo = q.formats[q.input], q.formats[q.output]
    e = s["quant"]["float_error"]
    lines = [
        f"{s['network']}: {len(q.layers)} layers, {s['macs_per_frame']:,} MACs per frame, "
        f"{s['params']:,} parameters",
        f"input '{q.input}' {tuple(q.onnx_input_shape)} {fi}  →  output '{q.output}' "
        f"{tuple(q.onnx_output_shape)} {fo}",
        "",
        report.format_table(q),
        "",
        f"{s['quant']['bits_a']}-bit fixed point vs onnxruntime float, {e['frames']} frames: "
        f"max abs error {e['max_abs']:.4g}, relative RMS error {100 * e['rel_rms']:.3g}%, "
        f"top-1 agreement {100 * e['top1_agreement']:.1f}%",
    ]
    if "accuracy" in s:
        a = s["accuracy"]
        fixed = ", ".join(f"{bits}-bit {100 * acc:.2f}%" for bits, acc in a["fixed"].items())
        lines.append(f"accuracy on {a['frames']} labelled frames: float {100 * a['float']:.2f}%, {fixed}")
    return "\n".join(lines)


def program_command(args):
    from .program import program

    program(args.folder, flash=args.flash)


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        status = {"build": build_command, "verify": verify_command, "explore": explore_command,
                  "rank": rank_command, "run": run_command, "program": program_command,
                  "inspect": inspect,
                  "boards": list_boards}[args.command](args)
    except UserError as error:
        print(f"dnnhw: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get("DNNHW_DEBUG"):
            traceback.print_exc()
        print(f"dnnhw: internal error: {type(error).__name__}: {error} "
              "(set DNNHW_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return status or 0
