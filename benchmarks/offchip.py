"""Networks larger than the chip: the partitioned DSE's plans, written to
benchmarks/results/offchip.json.

For each case the network is exported as ONNX (random weights, `tests/support/onnx_models`),
read and quantized as `dnnhw explore` does it (`build.front`, synthetic calibration), and planned
by `dse.design`: one design when it fits, else partitions with weights reloading over a batch.
Each entry records the partitions (layers, reload factor, cycles per frame, slow-down,
resources, what binds), the batch, the predicted frames per second and batch latency, the
shares of compute, bandwidth stalls, weight loading and reconfiguration, what binds the whole,
the DSE's seconds and the whole command's (front included), or the one-line refusal.

Cases: ImageNet VGG16 on zc706 at 16 bits (throughput, and batch-1 latency) and on pynq-z1;
ResNet-18 on zc706 at 16 bits; the CIFAR-10 VGG (`onnx_models.VGG_CIFAR`) at 16 bits on arty
(feature maps through the host: its DRAM does not survive a reconfiguration) and on pynq-z1.

Run: ``python benchmarks/offchip.py [NAME ...]`` (the VGG16 cases take a minute each, most of it
reading and quantizing 138 M weights).
"""

import json
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import onnx  # noqa: E402

from dnnhw import report  # noqa: E402
from dnnhw.boards import get_board  # noqa: E402
from dnnhw.build import builds_reloading, front, link_reserve  # noqa: E402
from dnnhw.dse import PartitionedExploration, design  # noqa: E402
from dnnhw.errors import UserError  # noqa: E402
from support import onnx_models  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results" / "offchip.json"

VGG16 = ([64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
         [4096, 4096, 1000])

NETWORKS = {
    "vgg16": lambda: onnx_models.vgg(*VGG16, in_shape=(3, 224, 224), name="vgg16"),
    "resnet18": lambda: onnx_models.resnet(),
    "vgg_cifar": lambda: onnx_models.vgg(*onnx_models.VGG_CIFAR, name="vgg_cifar"),
}

#: name → (network, board, bits, objective)
CASES = {
    "vgg16_zc706_16bit": ("vgg16", "zc706", 16, "throughput"),
    "vgg16_zc706_16bit_latency": ("vgg16", "zc706", 16, "latency"),
    "vgg16_pynq-z1_16bit": ("vgg16", "pynq-z1", 16, "throughput"),
    "resnet18_zc706_16bit": ("resnet18", "zc706", 16, "throughput"),
    "vgg_cifar_arty_16bit": ("vgg_cifar", "arty", 16, "throughput"),
    "vgg_cifar_pynq-z1_16bit": ("vgg_cifar", "pynq-z1", 16, "throughput"),
}


def run(case, folder):
    network, board_name, bits, objective = CASES[case]
    board = get_board(board_name)
    path = folder / f"{network}.onnx"
    if not path.exists():
        onnx.save(NETWORKS[network](), path)
    started = time.perf_counter()
    q = front(path, bits=bits).quantized
    try:
        found = design(q, board, objective=objective, reserve=lambda sub: link_reserve(sub, board),
                       reloading=builds_reloading(board))
    except UserError as error:
        return {"network": network, "board": board_name, "bits": bits, "objective": objective,
                "fits": False, "message": str(error),
                "seconds": round(time.perf_counter() - started, 1)}
    seconds = round(time.perf_counter() - started, 1)
    if not isinstance(found, PartitionedExploration):
        s = report.design_summary(q, board, found, board.clock_mhz)
        return {"network": network, "board": board_name, "bits": bits, "objective": objective,
                "fits": True, "partitions": 1, "batch": 1, "fps": s["predicted"]["fps"],
                "latency_s": s["predicted"]["latency_us"] * 1e-6,
                "binding": found.binding, "resources": found.resources,
                "dse_seconds": round(found.seconds, 2), "seconds": seconds}
    s = report.partitioned_summary(q, board, found)
    p = s["predicted"]
    return {"network": network, "board": board_name, "bits": bits, "objective": objective,
            "fits": True, "partitions": len(s["partitions"]), "batch": p["batch"],
            "fps": p["fps"], "latency_s": p["latency_s"], "gops": p["gops"],
            "binding": p["binding"], "shares": p["shares"], "path": s["path"],
            "reconfiguration_s": board.reconfiguration_s,
            "dse_seconds": s["dse"]["seconds"], "seconds": seconds,
            "plan": [{key: part[key] for key in ("layers", "reload", "cycles_per_frame",
                                                  "slowdown", "resources", "binding")}
                     for part in s["partitions"]]}


def main():
    names = sys.argv[1:] or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(unknown)} (known: {', '.join(CASES)})")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"{name} ...", file=sys.stderr, flush=True)
            results[name] = entry = run(name, pathlib.Path(tmp))
            print(name, json.dumps({k: v for k, v in entry.items() if k != "plan"}),
                  file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
