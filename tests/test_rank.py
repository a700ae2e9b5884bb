"""`dnnhw rank` on width variants of the digits network: the table, the JSON, the Pareto
front, the plot, and a candidate that cannot be read."""

import json

import numpy as np
import pytest

from support.cli import DIGITS, assert_user_error, dnnhw

VARIANTS = [DIGITS / "variants" / "digits_w2.onnx", DIGITS / "variants" / "digits_w4.onnx",
            DIGITS / "digits.onnx"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rank")
    np.save(folder / "x.npy", np.load(DIGITS / "digits_x.npy")[:60])
    np.save(folder / "y.npy", np.load(DIGITS / "digits_y.npy")[:60])
    return folder


def test_rank_json_and_plot(data, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    result = dnnhw("rank", *VARIANTS, broken, "--calibration", DIGITS / "digits_calib.npy",
                   "--data", data / "x.npy", "--labels", data / "y.npy",
                   "--plot", tmp_path / "rank.png", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["network"] for r in rows] == list(map(str, VARIANTS + [broken]))
    assert "error" in rows[-1]
    ranked = rows[:-1]
    assert all(r["fps"] > 0 and r["accuracy"]["frames"] == 60 for r in ranked)
    assert [r["params"] for r in ranked] == sorted(r["params"] for r in ranked)
    for r in ranked:
        better = [o for o in ranked if o is not r and o["fps"] >= r["fps"]
                  and o["accuracy"]["fixed"] >= r["accuracy"]["fixed"]
                  and (o["fps"], o["accuracy"]["fixed"]) != (r["fps"], r["accuracy"]["fixed"])]
        assert r["pareto"] == (not better)
    assert (tmp_path / "rank.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rank_needs_one_readable_candidate(data, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    assert_user_error(dnnhw("rank", broken, "--data", data / "x.npy", "--labels", data / "y.npy"),
                      "no candidate can be ranked")


def test_rank_refuses_layer_bits(data):
    assert_user_error(dnnhw("rank", *VARIANTS[:1], "--layer-bits", "auto", "--data",
                            data / "x.npy", "--labels", data / "y.npy"), "one word length")
