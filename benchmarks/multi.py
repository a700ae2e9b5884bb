"""Several networks on one chip (f-CNNx, issue: beyond one network).

`dnnhw build digits.onnx digits_w4.onnx --board arty --target-fps ... --verify` for pairs of
targets: each network's target, predicted and measured (cocotb + Verilator, both networks'
streams at once in one simulation, 32 frames each) frames per second, resources, and for a
pair the board cannot hold, the one line that says so.

Writes benchmarks/results/multi.json. Usage: python benchmarks/multi.py [--synth]
Exit status 1 when a feasible pair is not bit-exact or misses a target in simulation, or the
infeasible pair builds.
"""

import datetime
import json
import pathlib
import subprocess
import sys
import tempfile

import built

RESULTS = built.ROOT / "benchmarks" / "results" / "multi.json"
DIGITS = built.ROOT / "examples" / "digits"
NETWORKS = [DIGITS / "digits.onnx", DIGITS / "variants" / "digits_w4.onnx"]
#: (digits fps, digits_w4 fps): two the model says arty holds, and one it does not.
PAIRS = [(100_000, 200_000), (50_000, 500_000), (190_000, 700_000)]
FRAMES = 32


def _build(folder, synth, targets):
    options = [o for name, fps in zip(("digits", "digits_w4"), targets)
               for o in ("--target-fps", f"{name}={fps}")]
    return subprocess.run([sys.executable, "-m", "dnnhw", "build", *NETWORKS, "--board", "arty",
                           "--calibration", DIGITS / "digits_calib.npy", *options, "--verify",
                           "--frames", str(FRAMES), "--out", folder,
                           *([] if synth else ["--no-synth"])], capture_output=True, text=True)


def _entry(report, targets):
    clock = report["clock_mhz"] * 1e6
    networks = []
    for n, v, target in zip(report["networks"], report["verify"]["networks"], targets):
        measured = clock / v["measured_cycles_per_frame"]
        networks.append({
            "name": n["name"], "target_fps": target,
            "fps": {"predicted": n["predicted"]["fps"], "measured": measured},
            "met": {"predicted": n["met"], "measured": measured >= target},
            "cycles_per_frame": {"predicted": v["predicted_cycles_per_frame"],
                                 "measured": v["measured_cycles_per_frame"]},
            "latency_cycles": {"predicted": v["predicted_latency_cycles"],
                               "measured": v["measured_latency_cycles"]},
            "bit_exact": v["bit_exact"], "frames": v["frames"],
            "resources": n["predicted"]["resources"], "binding": n["dse"]["binding"]})
    return {"targets": list(targets), "feasible": True, "scale": report["multi"]["scale"],
            "networks": networks,
            "resources": {"predicted": report["predicted"]["resources"],
                          "synthesized": report.get("synth")},
            "build_seconds": report["build_seconds"], "verify_seconds": report["verify"]["seconds"]}


def main():
    synth = "--synth" in sys.argv[1:]
    entries, ok = [], True
    with tempfile.TemporaryDirectory() as scratch:
        for k, targets in enumerate(PAIRS):
            folder = pathlib.Path(scratch) / f"pair{k}"
            done = _build(folder, synth, targets)
            if done.returncode == 2:
                entries.append({"targets": list(targets), "feasible": False,
                                "message": done.stderr.strip()})
                print(f"{targets}: refused: {done.stderr.strip()}")
                continue
            if done.returncode:
                sys.exit(f"dnnhw build for {targets} failed: {done.stderr.strip()}")
            entry = _entry(json.loads((folder / "report.json").read_text()), targets)
            entries.append(entry)
            ok &= all(n["bit_exact"] and n["met"]["measured"] for n in entry["networks"])
            print(f"{targets}: " + "; ".join(
                f"{n['name']} {n['fps']['measured']:,.0f} fps measured "
                f"({n['cycles_per_frame']['measured']} vs {n['cycles_per_frame']['predicted']} "
                f"cycles), target {'met' if n['met']['measured'] else 'MISSED'}, bit-exact "
                f"{n['bit_exact']}" for n in entry["networks"]))
    ok &= [e["feasible"] for e in entries] == [True, True, False]
    RESULTS.write_text(json.dumps({
        "date": datetime.date.today().isoformat(), "commit": built.commit(), "board": "arty",
        "networks": [str(n.relative_to(built.ROOT)) for n in NETWORKS], "frames": FRAMES,
        "pairs": entries}, indent=2) + "\n")
    print(f"written: {RESULTS}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
