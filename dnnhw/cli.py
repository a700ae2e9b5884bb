"""Command line: `python -m dnnhw inspect NET.onnx ...` (DESIGN.md, "Command line and reports").

Exit status 0 on success, 2 on the user's error (one line on stderr, no traceback), 1 on an
internal error.
"""

import argparse
import json
import os
import sys
import traceback

import numpy as np

from . import frontend, golden, quant, report
from .boards import BOARDS, DEFAULT_BOARD
from .errors import UserError


__all__ = ["main"]


def _layer_bits(text):
    name, sep, bits = text.rpartition("=")
    if not sep or not name or not bits.isdigit():
        raise argparse.ArgumentTypeError(f"expected LAYER=BITS, got '{text}'")
    return name, int(bits)


def _parser():
    parser = argparse.ArgumentParser(prog="dnnhw", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect", help="show a network's layers, shapes, MACs, fixed-point formats and error")
    inspect.add_argument("network", metavar="NET.onnx")
    inspect.add_argument("--bits", type=int, default=8,
                         help=f"weight and activation bits, {quant.MIN_BITS}..{quant.MAX_BITS} (default 8)")
    inspect.add_argument("--layer-bits", type=_layer_bits, action="append", default=[],
                         metavar="LAYER=BITS", help="bits for one layer (repeatable)")
    inspect.add_argument("--calibration", metavar="FILE.npy",
                         help="calibration inputs (N, ...input shape...); default: synthetic N(0,1)")
    inspect.add_argument("--data", metavar="FILE.npy",
                         help="inputs to measure the error on (default: the calibration inputs)")
    inspect.add_argument("--labels", metavar="FILE.npy",
                         help="class labels of --data: prints float, 8- and 16-bit accuracy")
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")

    boards = commands.add_parser("boards", help="list the boards dnnhw targets")
    boards.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


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


def _frames(graph, path):
    return quant.load_frames(graph, path)


def _labels(path, count):
    try:
        labels = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read as a .npy array ({error})") from None
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: expected {count} integer labels, one per --data frame; "
                        f"found {labels.dtype} of shape {labels.shape}")
    return labels


def inspect(args):
    graph = frontend.load(args.network)
    warnings = []
    if args.calibration:
        calibration, source = _frames(graph, args.calibration), args.calibration
    else:
        calibration, source = quant.synthetic_frames(graph), "synthetic"
        warnings.append("no --calibration data: formats come from synthetic N(0,1) inputs, "
                        "which may not match the network's real inputs")
    if args.labels and not args.data:
        raise UserError("--labels needs --data")
    frames = _frames(graph, args.data) if args.data else calibration
    layer_bits = dict(args.layer_bits)
    q = quant.quantize(graph, calibration, bits=args.bits, layer_bits=layer_bits)
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
        labels = _labels(args.labels, len(frames))
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


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        {"inspect": inspect, "boards": list_boards}[args.command](args)
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
    return 0
