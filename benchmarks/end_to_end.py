"""End-to-end benchmark of the network zoo (tests/support/zoo.py): build, verify, compare with the model.

For each network (all of `zoo.NETWORKS`, or those named on the command line): `dnnhw build` for a
board (synthesis with Yosys only with --synth: a whole network takes minutes), then `dnnhw
verify` with --frames frames in cocotb + Verilator. Writes benchmarks/results/end_to_end.json
(entries of networks not run this time are kept) and prints a table:

    build_seconds                  the whole build (frontend to report, synthesis when run)
    compile_seconds                Verilator's compile (0 when its cache already held the design)
    cycles_per_second              simulation speed, cocotb + Verilator
    cycles_per_frame, latency      {predicted, measured, error}: error = measured / predicted - 1
    bit_exact                      every frame equal to the golden model, also under stalls
    resources                      {predicted: the DSE's model, synthesized: Yosys (--synth)}

Usage: python benchmarks/end_to_end.py [NAME ...] [--board arty] [--frames 4] [--synth]
Exit status 1 when a network fails to build, is not bit-exact, or misses the tolerances the
acceptance test uses (cycles/frame within 5 %, latency within 10 %).
"""

import argparse
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import onnx

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import zoo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "end_to_end.json"

#: Tolerances of tests/test_zoo.py: relative error of cycles/frame and of latency.
RATE_TOLERANCE, LATENCY_TOLERANCE = 0.05, 0.10


def _error(measured, predicted):
    return None if measured is None or not predicted else round(measured / predicted - 1, 4)


def run(name, board, frames, synth, folder):
    """Build and verify one zoo network in `folder`; its result entry."""
    from dnnhw.boards import get_board
    from dnnhw.build import build
    from dnnhw.verify import verify

    model, calibration = zoo.NETWORKS[name]()
    path, frames_path = folder / f"{name}.onnx", folder / f"{name}_calib.npy"
    onnx.save(model, path)
    np.save(frames_path, calibration)
    out, report = build(path, get_board(board), out=folder / f"{name}-{board}",
                        calibration=str(frames_path), synth=synth)
    v = verify(out, frames=frames)
    p = report["predicted"]
    rate = v["measured_cycles_per_frame"]
    latency = v["measured_latency_cycles"]
    return {
        "board": board, "frames": v["frames"], "synth": synth,
        "date": datetime.date.today().isoformat(), "commit": _commit(),
        "layers": len(report["layers"]), "macs_per_frame": report["macs_per_frame"],
        "params": report["params"],
        "build_seconds": report["build_seconds"],
        "compile_seconds": v["compile_seconds"],
        "verify_seconds": v["seconds"],
        "cycles_per_second": v["cycles_per_second"],
        "cycles_per_frame": {"predicted": v["predicted_cycles_per_frame"], "measured": rate,
                             "error": _error(rate, v["predicted_cycles_per_frame"])},
        "latency_cycles": {"predicted": v["predicted_latency_cycles"], "measured": latency,
                           "error": _error(latency, v["predicted_latency_cycles"])},
        "fps": round(p["fps"], 1), "bottleneck": p["bottleneck"],
        "bit_exact": v["bit_exact"],
        "mismatches": v["mismatches"], "stalled_mismatches": v["stalled_mismatches"],
        "float_error": report["quant"]["float_error"],
        "resources": {"predicted": p["resources"],
                      "synthesized": ({k: report["synth"][k] for k in ("lut", "ff", "dsp", "bram")}
                                      if report["synth"] else None)},
        "budget": report["budget"],
    }


def passed(entry):
    if "error" in entry:
        return False
    rate, latency = entry["cycles_per_frame"]["error"], entry["latency_cycles"]["error"]
    return (entry["bit_exact"] and rate is not None and abs(rate) <= RATE_TOLERANCE
            and latency is not None and abs(latency) <= LATENCY_TOLERANCE)


def table(results):
    """The results as a text table."""
    head = ["network", "build s", "compile s", "sim cyc/s", "cyc/frame pred", "meas", "err",
            "latency pred", "meas", "err", "bit-exact", "DSP", "BRAM", "LUT", "synth LUT/FF/DSP/BRAM"]
    rows = [head]
    for name, e in results.items():
        if "error" in e:
            rows.append([name, "FAILED: " + e["error"].splitlines()[0][:100]] + [""] * (len(head) - 2))
            continue
        r, l, res = e["cycles_per_frame"], e["latency_cycles"], e["resources"]["predicted"]
        syn = e["resources"]["synthesized"]
        pct = lambda x: "—" if x is None else f"{100 * x:+.1f}%"
        rows.append([
            name, f"{e['build_seconds']:.1f}", f"{e['compile_seconds']:.1f}",
            f"{e['cycles_per_second']:,}", f"{r['predicted']:,}",
            "—" if r["measured"] is None else f"{r['measured']:,.0f}", pct(r["error"]),
            f"{l['predicted']:,}", f"{l['measured']:,}", pct(l["error"]),
            "yes" if e["bit_exact"] else "NO", str(res["dsp"]), str(res["bram"]), f"{res['lut']:,}",
            "/".join(f"{syn[k]:,}" for k in ("lut", "ff", "dsp", "bram")) if syn else "—"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="*", metavar="NAME",
                        help=f"networks to run (default all: {', '.join(zoo.NETWORKS)})")
    parser.add_argument("--board", default="arty", help="target board (default arty)")
    parser.add_argument("--frames", type=int, default=4, help="frames to verify (default 4)")
    parser.add_argument("--synth", action="store_true", help="also synthesize with Yosys (slow)")
    parser.add_argument("--keep", metavar="DIR", help="keep the build folders in DIR")
    parser.add_argument("--output", metavar="FILE.json", default=str(RESULTS),
                        help="results file (default benchmarks/results/end_to_end.json)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.networks if n not in zoo.NETWORKS]
    if unknown:
        parser.error(f"unknown network(s) {', '.join(unknown)} (known: {', '.join(zoo.NETWORKS)})")

    output = pathlib.Path(args.output)
    saved = json.loads(output.read_text()) if output.exists() else {}
    results = saved.get("networks", {})
    ran = {}
    with tempfile.TemporaryDirectory(prefix="dnnhw-e2e-") as tmp:
        root = pathlib.Path(args.keep or tmp)
        for name in args.networks or zoo.NETWORKS:
            print(f"{name}: building for {args.board} and verifying {args.frames} frames ...",
                  file=sys.stderr, flush=True)
            started = time.perf_counter()
            folder = root / name
            folder.mkdir(parents=True, exist_ok=True)
            try:
                ran[name] = run(name, args.board, args.frames, args.synth, folder)
            except Exception as error:      # record it and go on with the other networks
                traceback.print_exc()
                ran[name] = {"board": args.board, "frames": args.frames, "synth": args.synth,
                             "date": datetime.date.today().isoformat(), "commit": _commit(),
                             "error": f"{type(error).__name__}: {error}"}
            print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
            results[name] = ran[name]

    order = list(zoo.NETWORKS) + [n for n in results if n not in zoo.NETWORKS]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "description": "tests/support/zoo.py networks built with `dnnhw build` and simulated with "
                       "`dnnhw verify` (cocotb + Verilator); errors are measured / predicted - 1; "
                       "each entry names the commit it ran at (a dirty tree shows as '+')",
        "commit": _commit(),
        "networks": {n: results[n] for n in order if n in results},
    }, indent=2) + "\n")
    print(table(ran))
    print(f"written: {output}")
    failed = [n for n, e in ran.items() if not passed(e)]
    if failed:
        print(f"outside the acceptance (bit-exact, rate ±{RATE_TOLERANCE:.0%}, latency "
              f"±{LATENCY_TOLERANCE:.0%}) or failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _commit():
    """The checkout's short commit, with '+' when dnnhw/ or tests/ differ from it; None outside git."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True,
                              check=True).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "dnnhw", "tests")
        return git("rev-parse", "--short", "HEAD") + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    sys.exit(main())
