"""Train the bundled "digits" example network and export it to ONNX.

A small CNN is trained on scikit-learn's bundled 8x8 handwritten digits (no download),
with pixels scaled to [0, 1]. The script writes, beside itself:

  digits.onnx        the trained network (opset 13, input "input" 1x1x8x8, output "logits" 1x10)
  digits_x.npy       300 held-out test digits, float32 (300, 1, 8, 8)
  digits_y.npy       their labels, int64 (300,)
  digits_calib.npy   128 calibration digits from the training split, float32 (128, 1, 8, 8)

and prints the float test accuracy of the PyTorch model and of onnxruntime on digits.onnx.
It is deterministic (fixed seeds, one thread): re-running it gives byte-identical files.

Re-run from the repository root with:  .venv/bin/python examples/digits/train.py
"""
import pathlib
import time
import warnings

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
HERE = pathlib.Path(__file__).parent


def make_model(width=8):
    """The digits CNN with `width` channels in its first conv (twice as many after); 8 is the
    bundled network."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),       # w x8x8
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # 2w x4x4
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 2w x2x2
        nn.Flatten(), nn.Linear(2 * width * 2 * 2, 10),
    )


def accuracy(logits, y):
    return float((np.argmax(logits, axis=1) == y).mean())


def split():
    """(x_train, x_test, y_train, y_test, calib): the digits, 300 held out, 128 calibration."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=300, random_state=SEED, stratify=y)
    calib = x_train[np.random.default_rng(SEED).choice(len(x_train), 128, replace=False)]
    return x_train, x_test, y_train, y_test, calib


def train_and_export(onnx_path, width=8):
    """Train `make_model(width)` (fixed seeds, one thread) and export it to `onnx_path`;
    returns (x_test, y_test, calib). Asserts onnxruntime agrees with PyTorch."""
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    x_train, x_test, y_train, y_test, calib = split()

    model = make_model(width)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    for epoch in range(40):
        model.train()
        for idx in torch.randperm(len(xt), generator=gen).split(64):
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    print(f"{onnx_path.name}: trained 40 epochs in {time.perf_counter() - start:.1f} s "
          f"(final batch loss {loss.item():.4f})")

    model.eval()
    with torch.no_grad():
        acc_torch = accuracy(model(torch.from_numpy(x_test)).numpy(), y_test)
    print(f"PyTorch float accuracy on {len(y_test)} held-out digits: {acc_torch:.4f}")

    with warnings.catch_warnings():  # the legacy exporter (dynamo=False) is chosen on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, torch.from_numpy(x_test[:1]), str(onnx_path), dynamo=False,
                          opset_version=13, input_names=["input"], output_names=["logits"])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_logits = np.concatenate([sess.run(None, {"input": xi[None]})[0] for xi in x_test])
    acc_ort = accuracy(ort_logits, y_test)
    print(f"onnxruntime float accuracy on {len(y_test)} held-out digits: {acc_ort:.4f}")
    assert acc_ort == acc_torch, "onnxruntime and PyTorch disagree"
    return x_test, y_test, calib


def main():
    x_test, y_test, calib = train_and_export(HERE / "digits.onnx")
    np.save(HERE / "digits_x.npy", x_test)
    np.save(HERE / "digits_y.npy", y_test)
    np.save(HERE / "digits_calib.npy", calib)


if __name__ == "__main__":
    main()
