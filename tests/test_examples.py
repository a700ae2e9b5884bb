"""The bundled digits example: real data through the golden model."""

import pathlib

import numpy as np

from dnnhw import golden, quant
from dnnhw.frontend import load, onnxruntime_outputs

DIGITS = pathlib.Path(__file__).parents[1] / "examples" / "digits"


def test_digits_8bit_accuracy_within_one_point_of_float():
    path = DIGITS / "digits.onnx"
    graph = load(path)
    x, y = np.load(DIGITS / "digits_x.npy"), np.load(DIGITS / "digits_y.npy")
    float_accuracy = np.mean(onnxruntime_outputs(path, graph, x).argmax(axis=1) == y)
    q = quant.quantize(graph, np.load(DIGITS / "digits_calib.npy"), bits=8)
    fixed_accuracy = np.mean(golden.run(q, x).argmax(axis=1) == y)
    assert float_accuracy >= 0.95
    assert abs(fixed_accuracy - float_accuracy) <= 0.01
