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

import sys

import numpy as np
import onnx

import built

sys.path.insert(0, str(built.ROOT / "tests"))

from support import mlperf_tiny  # noqa: E402

RESULTS = built.ROOT / "benchmarks" / "results" / "mlperf_tiny.json"

#: case name → (network, exporter, board). The autoencoder's and the MobileNet's weights (2.1
#: and 1.7 Mbit at 8 bits) exceed what the Arty A7-35T's block RAM holds at the DSE's cap, so
#: each is also built on-chip on the A7-100T (the board the hls4ml/FINN submissions used).
CASES = {f"{net}_{exporter}_{board}": (net, exporter, board)
         for net, boards in (("ic", ("arty",)), ("ad", ("arty", "arty-a7-100")),
                             ("kws", ("arty",)), ("vww", ("arty", "arty-a7-100")))
         for exporter in ("torchscript", "dynamo") for board in boards}


def run(case, frames, synth, folder):
    """Export, build and verify one case in `folder`; its result entry."""
    net, exporter, board = CASES[case]
    path, calibration = folder / f"{net}_{exporter}.onnx", folder / f"{net}_calib.npy"
    onnx.save(mlperf_tiny.onnx_model(net, dynamo=exporter == "dynamo"), path)
    np.save(calibration, mlperf_tiny.frames(net))
    entry = built.build_and_verify(path, calibration, board, folder / case, frames, synth)
    return {"network": net, "exporter": exporter, **entry}


def main(argv=None):
    return built.main(__doc__.splitlines()[0], CASES, run, RESULTS, argv, published=mlperf_tiny.PUBLISHED)


if __name__ == "__main__":
    sys.exit(main())
