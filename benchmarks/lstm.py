"""LSTM cell benchmark: measured cycles per time step against `geometry.lstm`, and Yosys
resources against the resource model.

For each (I, H, coarse_in, coarse_out) configuration an 8-bit `LSTMCell` over T = 20 steps runs
two frames back to back in cocotb + Verilator, unstalled. Measured: cycles per step (between the
first output units of consecutive steps, a frame's first step excluded), cycles per frame and
latency (first input beat to first output beat), each with the formula's value; every output is
checked against golden. With --synth the cell is synthesized with Yosys for xc7 and compared with
`resources.layer_resources`. Writes benchmarks/results/lstm.json.

Usage: python benchmarks/lstm.py [--synth]
"""

import argparse
import datetime
import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "layers"))

from dnnhw import geometry, resources  # noqa: E402
from dnnhw.folding import Folding  # noqa: E402
from dnnhw.toolchain.yosys import synthesize  # noqa: E402
from test_lstm import Case, cell, streams  # noqa: E402
from dnnhw.sim import run_stream_bench  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "lstm.json"

CONFIGS = [(12, 20, 4, 4), (12, 20, 1, 1), (40, 64, 4, 2), (64, 128, 8, 8), (128, 256, 16, 8),
           (256, 256, 16, 16)]


def measure(n_in, hidden, ci, co, synth):
    case = Case(n_in, hidden, 20, (ci, co), frames=2)
    graph, dut = cell(case)
    inputs, want = streams(graph, case)
    run = run_stream_bench(dut, {"i": inputs}, {"o": len(want)}, name=f"lstm_bench_{case.id}",
                           timeout=10 * (dut.cycles_per_frame + dut.latency) + 1000)
    bit_exact = bool(np.array_equal(run.outputs["o"].reshape(-1), want.reshape(-1)))
    out = np.array(run.out_cycles["o"])
    firsts = out[::hidden]                                  # each step's first unit
    per_step = sorted(set(int(d) for d in np.diff(firsts[:case.steps])))
    ends = out[len(want) // 2 - 1::len(want) // 2]
    g = geometry.lstm(n_in, hidden, case.steps, ci, co, False)
    formula = {"cycles_per_step": g.cycles_per_step, "cycles_per_frame": g.cycles_per_frame,
               "latency": g.latency}
    entry = {
        "n_in": n_in, "hidden": hidden, "steps": case.steps, "coarse_in": ci, "coarse_out": co,
        "bits": case.bits, "bit_exact": bit_exact,
        "measured": {"cycles_per_step": per_step, "cycles_per_frame": int(ends[1] - ends[0]),
                     "latency": int(out[0] - run.in_cycles["i"][0])},
        "formula": formula,
        "beats_per_group": (n_in + hidden) // ci, "groups": hidden // co,
        "stall": formula["cycles_per_step"] - (hidden // co) * ((n_in + hidden) // ci),
    }
    if synth:
        entry["resources"] = {
            "predicted": resources.layer_resources(graph, graph.layers[0], Folding(ci, co),
                                                   "xc7").as_dict(),
            "yosys": synthesize(dut, "xc7", name="lstm")[0]}
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synth", action="store_true", help="also synthesize with Yosys (xc7)")
    args = parser.parse_args()
    entries = []
    for n_in, hidden, ci, co in CONFIGS:
        entry = measure(n_in, hidden, ci, co, args.synth)
        entries.append(entry)
        m, f = entry["measured"], entry["formula"]
        print(f"I={n_in:3} H={hidden:3} ci={ci:2} co={co:2}: step {m['cycles_per_step']} vs "
              f"{f['cycles_per_step']}, frame {m['cycles_per_frame']} vs {f['cycles_per_frame']}, "
              f"latency {m['latency']} vs {f['latency']}, bit-exact {entry['bit_exact']}"
              + (f", xc7 {entry['resources']}" if args.synth else ""), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"date": datetime.date.today().isoformat(),
                                   "formula": geometry.LSTMGeometry.__doc__.strip(),
                                   "configs": entries}, indent=1) + "\n")
    ok = all(e["bit_exact"] and e["measured"]["cycles_per_step"] == [e["formula"]["cycles_per_step"]]
             and e["measured"]["cycles_per_frame"] == e["formula"]["cycles_per_frame"]
             and e["measured"]["latency"] == e["formula"]["latency"] for e in entries)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
