"""`dnnhw build --verify` of one network as a user runs it, as a benchmark entry: the design
chosen (one accelerator, or partitions run one after another), predicted fps and latency,
resources (predicted; Yosys' counts with synthesis), and per accelerator the verification in
cocotb + Verilator, cycles per frame and latency measured against predicted. Shared by the
benchmarks that build whole networks (mlperf_tiny.py, torchvision_families.py)."""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: Measured cycles per frame may miss the model by this much before a benchmark fails.
RATE_TOLERANCE = 0.05


def commit():
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True)
    return run.stdout.strip()


def _error(measured, predicted):
    return round(measured / predicted - 1, 4) if measured is not None and predicted else None


def _verification(parts):
    """Per accelerator (one, or each partition): measured against predicted."""
    return [{"bit_exact": v["bit_exact"], "stalled_mismatches": v["stalled_mismatches"],
             "cycles_per_frame": {"predicted": v["predicted_cycles_per_frame"],
                                  "measured": v["measured_cycles_per_frame"],
                                  "error": _error(v["measured_cycles_per_frame"],
                                                  v["predicted_cycles_per_frame"])},
             "latency_cycles": {"predicted": v["predicted_latency_cycles"],
                                "measured": v["measured_latency_cycles"],
                                "error": _error(v["measured_latency_cycles"],
                                                v["predicted_latency_cycles"])},
             "compile_seconds": v.get("compile_seconds")} for v in parts]


def build_and_verify(path, calibration, board, out, frames, synth, bits=8):
    """Run `dnnhw build PATH --verify` into `out`; the entry for its report, or for the
    one-line message it failed with (`built` false)."""
    command = [sys.executable, "-m", "dnnhw", "build", str(path), "--board", board,
               "--bits", str(bits), "--calibration", str(calibration), "--out", str(out),
               "--verify", "--frames", str(frames)] + ([] if synth else ["--no-synth"])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"board": board, "built": False,
                "message": (done.stderr.strip().splitlines() or [""])[-1]}
    report = json.loads((pathlib.Path(out) / "report.json").read_text())
    v, p = report["verify"], report["predicted"]
    entry = {"board": board, "built": True, "date": datetime.date.today().isoformat(),
             "commit": commit(), "params": report["params"],
             "macs_per_frame": report["macs_per_frame"], "build_seconds": report["build_seconds"],
             "frames": v["frames"], "bit_exact": v["bit_exact"],
             "float_error": report["quant"]["float_error"]}
    if report.get("partitioned"):
        entry.update({
            "design": f"{len(report['partitions'])} partitions, batch {p['batch']}",
            "fps": round(p["fps"], 2), "latency_us": round(p["latency_s"] * 1e6, 1),
            "binding": p["binding"],
            "resources": {"predicted": [q["resources"] for q in report["partitions"]]},
            "accelerators": _verification(v["partitions"])})
    else:
        entry.update({
            "design": "one accelerator", "fps": round(p["fps"], 1),
            "latency_us": p["latency_us"], "bottleneck": p["bottleneck"],
            "resources": {"predicted": p["resources"], "synthesized": report.get("synth")},
            "accelerators": _verification([v])})
    return entry


def failed(entry):
    """The entry did not build, is not bit-exact, or missed the model's rate (or ran too few
    frames to measure it: three at least)."""
    errors = [a["cycles_per_frame"]["error"] for a in entry.get("accelerators", [])]
    return (not entry.get("built") or not entry["bit_exact"]
            or any(e is None or abs(e) > RATE_TOLERANCE for e in errors))


def summary(case, entry):
    """One line for the terminal."""
    if not entry.get("built"):
        return f"{case:28} FAILED: {entry.get('message', '')}"
    return (f"{case:28} {entry['design']}  {entry['fps']:,} fps  {entry['latency_us']:,} µs  "
            f"bit-exact {entry['bit_exact']}")


def run_cases(cases, run, results_path, frames, synth, **fields):
    """`run(case, frames, synth, folder)` of every case in one scratch folder, each entry
    written to `results_path` as it comes (entries not run this time kept, `fields` set at the
    top); the exit status: 1 when a case `failed`."""
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.update(fields)
    bad = []
    os.environ.setdefault("DNNHW_SIM_BUILD", str(ROOT / "sim_build"))
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            entry = run(case, frames, synth, pathlib.Path(tmp))
            results.setdefault("cases", {})[case] = entry
            results_path.write_text(json.dumps(results, indent=2) + "\n")
            print(summary(case, entry), flush=True)
            if failed(entry):
                bad.append(case)
    if bad:
        print(f"failed: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def main(description, cases, run, results_path, argv=None, **fields):
    """The command line both benchmarks share: [CASE ...] [--frames N] [--synth], then
    `run_cases`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to run (default all: {', '.join(cases)})")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--synth", action="store_true", help="synthesize with Yosys")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(cases))
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    return run_cases(args.cases or cases, run, results_path, args.frames, args.synth, **fields)
