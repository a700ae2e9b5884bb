"""Networks of torchvision's families, built as a user would: random weights (`weights=None`),
10 classes, a 96×96 input, exported by PyTorch's TorchScript exporter, `dnnhw build --verify`
at 8 bits (benchmarks/built.py). Writes benchmarks/results/torchvision_families.json (entries not
run this time are kept).

Cases: MobileNetV2 (width 0.35), ShuffleNetV2 ×0.5, SqueezeNet 1.1 and MnasNet 0.5, on the
zc706 (each holds its weights on chip there).

Usage: python benchmarks/torchvision_families.py [CASE ...] [--frames 4] [--synth]
Needs torchvision (not a dependency of dnnhw's tests). Exit status 1 when a case fails to
build or is not bit-exact, or its cycles per frame miss the model by more than 5 %.
"""

import sys
import warnings

import numpy as np

import built

RESULTS = built.ROOT / "benchmarks" / "results" / "torchvision_families.json"

#: network → (torchvision constructor, its keyword arguments).
NETWORKS = {
    "mobilenet_v2_0.35": ("mobilenet_v2", {"width_mult": 0.35}),
    "shufflenet_v2_x0_5": ("shufflenet_v2_x0_5", {}),
    "squeezenet1_1": ("squeezenet1_1", {}),
    "mnasnet0_5": ("mnasnet0_5", {}),
}
SIZE = 96

#: case name → (network, board).
CASES = {f"{net}_zc706": (net, "zc706") for net in NETWORKS}


def torchvision_models():
    """torchvision.models. A torchvision wheel built for another torch build fails on import
    when it registers the fake kernels of its C++ ops (nms, roi_align, ...); the models use none
    of them, so then the import is retried with that registration skipped."""
    import torch
    try:
        import torchvision.models
        return torchvision.models
    except RuntimeError:
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        register = torch.library.register_fake
        torch.library.register_fake = lambda *args, **kwargs: (lambda function: function)
        try:
            import torchvision.models
        finally:
            torch.library.register_fake = register
        return torchvision.models


def export(net, path):
    import torch
    name, kwargs = NETWORKS[net]
    torch.manual_seed(0)
    module = getattr(torchvision_models(), name)(weights=None, num_classes=10, **kwargs).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(1, 3, SIZE, SIZE),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"])


def run(case, frames, synth, folder):
    net, board = CASES[case]
    path, calibration = folder / f"{net}.onnx", folder / f"{net}_calib.npy"
    if not path.exists():
        export(net, path)
        rng = np.random.default_rng(0)
        np.save(calibration, rng.standard_normal((16, 3, SIZE, SIZE)).astype(np.float32))
    entry = built.build_and_verify(path, calibration, board, folder / case, frames, synth)
    return {"network": net, "exporter": "torchscript", **entry}


def main(argv=None):
    return built.main(__doc__.splitlines()[0], CASES, run, RESULTS, argv)


if __name__ == "__main__":
    sys.exit(main())
