"""Word lengths per layer and model ranking on the digits example (issue: beyond one network).

1. `dnnhw build digits.onnx --layer-bits auto --verify` on `arty` against the same build at 8
   bits throughout, both verified on the 300 held-out digits: the chosen widths, accuracy,
   predicted and measured cycles per frame, fps, resources.
2. `dnnhw rank` over the digits width variants (examples/digits/variants.py) on `arty`.

Writes benchmarks/results/precision.json. Usage: python benchmarks/precision.py [--synth]
Exit status 1 when a build is not bit-exact or `auto` is not faster than 8 bits at no less
accuracy than the tolerance allows.
"""

import datetime
import json
import pathlib
import subprocess
import sys
import tempfile

import built

RESULTS = built.ROOT / "benchmarks" / "results" / "precision.json"
DIGITS = built.ROOT / "examples" / "digits"
DATA = ["--calibration", DIGITS / "digits_calib.npy", "--data", DIGITS / "digits_x.npy",
        "--labels", DIGITS / "digits_y.npy"]
VARIANTS = [DIGITS / "variants" / "digits_w2.onnx", DIGITS / "variants" / "digits_w4.onnx",
            DIGITS / "digits.onnx", DIGITS / "variants" / "digits_w16.onnx"]


def _dnnhw(*args):
    done = subprocess.run([sys.executable, "-m", "dnnhw", *map(str, args)], capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"dnnhw {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def _build(folder, synth, *widths):
    _dnnhw("build", DIGITS / "digits.onnx", "--board", "arty", *DATA, *widths, "--verify",
           "--out", folder, *([] if synth else ["--no-synth"]))
    report = json.loads((folder / "report.json").read_text())
    v, p = report["verify"], report["predicted"]
    return {"layer_bits": report["quant"]["layer_bits"],
            "precision": report["quant"].get("precision"),
            "fps": p["fps"], "predicted_cycles_per_frame": p["cycles_per_frame"],
            "measured_cycles_per_frame": v["measured_cycles_per_frame"],
            "bit_exact": v["bit_exact"], "frames": v["frames"], "accuracy": v["accuracy"],
            "resources": {"predicted": p["resources"], "synthesized": report.get("synth")},
            "build_seconds": report["build_seconds"]}


def main():
    synth = "--synth" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        auto = _build(scratch / "auto", synth, "--layer-bits", "auto")
        uniform = _build(scratch / "uniform", synth)
    ranking = json.loads(_dnnhw("rank", *VARIANTS, "--board", "arty", *DATA, "--json"))
    result = {"date": datetime.date.today().isoformat(), "commit": built.commit(),
              "board": "arty", "network": "examples/digits/digits.onnx",
              "layer_bits_auto": auto, "bits_8": uniform, "rank": ranking}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    tolerance = auto["precision"]["tolerance"]
    ok = (auto["bit_exact"] and uniform["bit_exact"] and auto["fps"] > uniform["fps"]
          and auto["accuracy"]["hardware"] >= uniform["accuracy"]["hardware"] - tolerance)
    print(f"auto {auto['layer_bits']}: {auto['fps']:,.0f} fps, hardware "
          f"{100 * auto['accuracy']['hardware']:.2f}%, cycles {auto['measured_cycles_per_frame']}"
          f" measured vs {auto['predicted_cycles_per_frame']}; 8 bits: {uniform['fps']:,.0f} fps, "
          f"{100 * uniform['accuracy']['hardware']:.2f}%, cycles "
          f"{uniform['measured_cycles_per_frame']} vs {uniform['predicted_cycles_per_frame']}")
    print(f"written: {RESULTS}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
