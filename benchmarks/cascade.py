"""CascadeCNN on the digits example (issue: beyond one network).

`dnnhw build digits.onnx --cascade LOW,HIGH --verify` on `arty` for each pair, and the best
single HIGH-bit design on the same board (`dnnhw build --bits HIGH --verify`), all verified
in cocotb + Verilator on the 300 held-out digits: threshold, recomputed fraction (chosen on the
data, measured in simulation), accuracy, predicted and measured cycles per frame, fps and
resources.

Writes benchmarks/results/cascade.json. Usage: python benchmarks/cascade.py [--synth]
Exit status 1 when a build is not bit-exact, or when no cascade is faster in simulation than
the single design at accuracy within the tolerance.
"""

import datetime
import json
import pathlib
import subprocess
import sys
import tempfile

import built

RESULTS = built.ROOT / "benchmarks" / "results" / "cascade.json"
DIGITS = built.ROOT / "examples" / "digits"
DATA = ["--calibration", DIGITS / "digits_calib.npy", "--data", DIGITS / "digits_x.npy",
        "--labels", DIGITS / "digits_y.npy"]
PAIRS = ["4,8", "5,8", "6,8"]
TOLERANCE = 0.01


def _build(folder, synth, *options):
    done = subprocess.run([sys.executable, "-m", "dnnhw", "build", DIGITS / "digits.onnx",
                           "--board", "arty", *DATA, *options, "--verify", "--out", folder,
                           *([] if synth else ["--no-synth"])], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"dnnhw build {' '.join(map(str, options))} failed: {done.stderr.strip()}")
    return json.loads((folder / "report.json").read_text())


def _measured(report):
    v, p = report["verify"], report["predicted"]
    clock = report["clock_mhz"]
    return {"fps": {"predicted": p["fps"],
                    "measured": clock * 1e6 / v["measured_cycles_per_frame"]},
            "cycles_per_frame": {"predicted": p["cycles_per_frame"],
                                 "measured": v["measured_cycles_per_frame"]},
            "latency_cycles": {"predicted": v["predicted_latency_cycles"],
                               "measured": v["measured_latency_cycles"]},
            "bit_exact": v["bit_exact"], "frames": v["frames"], "accuracy": v["accuracy"],
            "resources": {"predicted": p["resources"], "synthesized": report.get("synth")},
            "build_seconds": report["build_seconds"]}


def _cascade(report):
    facts, v = report["cascade"], report["verify"]
    return {"pair": [facts["low_bits"], facts["high_bits"]], "threshold": facts["threshold"],
            "recompute": {"chosen": facts["recompute"], "measured": v["recompute"]},
            "predicted_cycles_at_measured_recompute": v["predicted_at_measured_recompute"],
            "stage_cycles": [s["predicted"]["cycles_per_frame"] for s in report["stages"]],
            **_measured(report)}


def main():
    synth = "--synth" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        single = _measured(_build(scratch / "single", synth, "--bits", "8"))
        cascades = [_cascade(_build(scratch / pair.replace(",", "_"), synth, "--cascade", pair,
                                    "--tolerance", str(TOLERANCE))) for pair in PAIRS]
    RESULTS.write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "commit": built.commit(), "board": "arty",
        "network": "examples/digits/digits.onnx", "tolerance": TOLERANCE,
        "single_8_bits": single, "cascades": cascades}, indent=2) + "\n")
    reference = single["accuracy"]["hardware"]
    faster = [c for c in cascades
              if c["fps"]["measured"] > single["fps"]["measured"]
              and c["accuracy"]["hardware"] >= reference - TOLERANCE]
    print(f"single 8 bits: {single['fps']['measured']:,.0f} fps measured, "
          f"{100 * reference:.2f}%")
    for c in cascades:
        print(f"cascade {c['pair'][0]},{c['pair'][1]}: {c['fps']['measured']:,.0f} fps measured "
              f"({c['cycles_per_frame']['measured']} vs {c['cycles_per_frame']['predicted']} "
              f"cycles), {100 * c['recompute']['measured']:.1f}% recomputed, "
              f"{100 * c['accuracy']['hardware']:.2f}%, bit-exact {c['bit_exact']}")
    print(f"written: {RESULTS}")
    ok = single["bit_exact"] and all(c["bit_exact"] for c in cascades) and faster
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
