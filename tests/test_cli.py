"""The command line as a user meets it: output, exit status, one-line errors."""

import json

import onnx
import pytest
from onnx import TensorProto, helper

from support import onnx_models
from support.cli import DIGITS, assert_user_error, dnnhw


def test_inspect_digits_text():
    result = dnnhw("inspect", DIGITS / "digits.onnx", "--calibration", DIGITS / "digits_calib.npy",
                   "--data", DIGITS / "digits_x.npy", "--labels", DIGITS / "digits_y.npy")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "6 layers" in out and "115,840 MACs per frame" in out
    assert "accuracy on 300 labelled frames: float 98.33%, 8-bit" in out and "16-bit" in out
    assert result.stderr == ""


def test_inspect_json_contract():
    result = dnnhw("inspect", DIGITS / "digits.onnx", "--json", "--bits", "16")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["macs_per_frame"] == sum(layer["macs"] for layer in summary["layers"])
    quant = summary["quant"]
    assert quant["bits_w"] == quant["bits_a"] == 16
    assert set(quant["float_error"]) >= {"max_abs", "rel_rms", "top1_agreement"}
    assert quant["float_error"]["rel_rms"] < 0.01
    assert quant["calibration"]["source"] == "synthetic"
    assert "synthetic" in result.stderr             # the warning goes to stderr, not the JSON
    conv = summary["layers"][0]
    assert conv["op"] == "conv" and conv["attrs"]["act"] == "relu"
    assert conv["format"]["bits"] == 16 and conv["weight_format"]["bits"] == 16


def test_inspect_layer_bits():
    result = dnnhw("inspect", DIGITS / "digits.onnx", "--json", "--layer-bits", "/10/Gemm=12",
                   "--calibration", DIGITS / "digits_calib.npy")
    assert result.returncode == 0, result.stderr
    fc = json.loads(result.stdout)["layers"][-1]
    assert fc["format"]["bits"] == 12 and fc["weight_format"]["bits"] == 12


def test_missing_file(tmp_path):
    assert_user_error(dnnhw("inspect", tmp_path / "nope.onnx"), "nope.onnx", "no such file")


def test_not_onnx(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(bytes(range(256)) * 40)
    assert_user_error(dnnhw("inspect", path), "garbage.onnx")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert_user_error(dnnhw("inspect", path), "empty.onnx")


def test_truncated_file(tmp_path):
    data = (DIGITS / "digits.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert_user_error(dnnhw("inspect", path), "truncated.onnx")


def test_invalid_graph(tmp_path):
    node = helper.make_node("Relu", ["missing"], ["y"], name="r")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "invalid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert_user_error(dnnhw("inspect", path), "invalid ONNX model")


def test_unsupported_op(tmp_path):
    path = tmp_path / "weird.onnx"
    onnx.save(onnx_models.unsupported_op(), path)
    result = dnnhw("inspect", path)
    assert_user_error(result, "unsupported op", "weird_node", "inputs:")


def test_dynamic_spatial_shape(tmp_path):
    path = tmp_path / "dynamic.onnx"
    onnx.save(onnx_models.dynamic_spatial(), path)
    assert_user_error(dnnhw("inspect", path), "dynamic shape")


@pytest.mark.parametrize("args, fragment", [
    (["--bits", "3"], "3 bits"),
    (["--bits", "17"], "17 bits"),
    (["--layer-bits", "nosuchlayer=8"], "nosuchlayer"),
    (["--labels", DIGITS / "digits_y.npy"], "--labels needs --data"),
    (["--calibration", DIGITS / "digits_y.npy"], "expected frames"),
    (["--data", DIGITS / "digits_calib.npy", "--labels", DIGITS / "digits_y.npy"], "labels"),
])
def test_bad_options(args, fragment):
    assert_user_error(dnnhw("inspect", DIGITS / "digits.onnx", *args), fragment)


def test_argument_errors_exit_2():
    result = dnnhw("inspect")
    assert result.returncode == 2 and "Traceback" not in result.stderr
