"""The four MLPerf Tiny reference architectures (tests/support/mlperf_tiny.py), built as a user
would: exported by PyTorch's TorchScript and dynamo exporters, `dnnhw build --verify` at 8 bits.

For each (network, exporter, board): the design dnnhw chooses (one accelerator, or partitions
run one after another), its predicted fps and latency, the resources (predicted; Yosys' counts
with --synth), and the verification in cocotb + Verilator: bit-exact under stalls, cycles per
frame and latency measured against predicted. Writes benchmarks/results/mlperf_tiny.json (entries
not run this time are kept) beside what the hls4ml/FINN submissions publish.

Usage: python benchmarks/mlperf_tiny.py [CASE ...] [--frames 4] [--synth]
Exit status 1 when a case fails to build or is not bit-exact, or its cycles per frame miss the
model by more than 5 %.
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import onnx

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support import mlperf_tiny  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mlperf_tiny.json"

#: case name → (network, exporter, board). The autoencoder's and the MobileNet's weights (2.1
#: and 1.7 Mbit at 8 bits) exceed what the Arty A7-35T's block RAM holds at the DSE's cap, so
#: each is also built on-chip on the A7-100T (the board the hls4ml/FINN submissions used).
CASES = {f"{net}_{exporter}_{board}": (net, exporter, board)
         for net, boards in (("ic", ("arty",)), ("ad", ("arty", "arty-a7-100")),
                             ("kws", ("arty",)), ("vww", ("arty", "arty-a7-100")))
         for exporter in ("torchscript", "dynamo") for board in boards}

RATE_TOLERANCE = 0.05


def _commit():
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


def run(case, frames, synth, folder):
    """Export, build and verify one case in `folder`; its result entry."""
    net, exporter, board = CASES[case]
    path, calibration = folder / f"{net}_{exporter}.onnx", folder / f"{net}_calib.npy"
    onnx.save(mlperf_tiny.onnx_model(net, dynamo=exporter == "dynamo"), path)
    np.save(calibration, mlperf_tiny.frames(net))
    out = folder / case
    command = [sys.executable, "-m", "dnnhw", "build", str(path), "--board", board, "--bits", "8",
               "--calibration", str(calibration), "--out", str(out), "--verify",
               "--frames", str(frames)] + ([] if synth else ["--no-synth"])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {"board": board, "exporter": exporter, "built": False,
                "message": (done.stderr.strip().splitlines() or [""])[-1]}
    report = json.loads((out / "report.json").read_text())
    v = report["verify"]
    p = report["predicted"]
    entry = {"network": net, "exporter": exporter, "board": board, "built": True,
             "date": datetime.date.today().isoformat(), "commit": _commit(),
             "params": report["params"], "macs_per_frame": report["macs_per_frame"],
             "build_seconds": report["build_seconds"], "frames": v["frames"],
             "bit_exact": v["bit_exact"], "float_error": report["quant"]["float_error"]}
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
    return (not entry.get("built") or not entry["bit_exact"]
            or any(abs(a["cycles_per_frame"]["error"]) > RATE_TOLERANCE
                   for a in entry["accelerators"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help=f"cases to run (default all: {', '.join(CASES)})")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--synth", action="store_true", help="synthesize with Yosys")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["published"] = mlperf_tiny.PUBLISHED
    bad = []
    os.environ.setdefault("DNNHW_SIM_BUILD", str(ROOT / "sim_build"))
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases or CASES:
            entry = run(case, args.frames, args.synth, pathlib.Path(tmp))
            results.setdefault("cases", {})[case] = entry
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
            print(f"{case:28} {entry.get('design', 'FAILED: ' + entry.get('message', ''))}"
                  + (f"  {entry['fps']:,} fps  {entry['latency_us']:,} µs  bit-exact "
                     f"{entry['bit_exact']}" if entry.get("built") else ""), flush=True)
            if failed(entry):
                bad.append(case)
    if bad:
        print(f"failed: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
