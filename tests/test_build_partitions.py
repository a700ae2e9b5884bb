"""A network too large for the board, as a user meets it: `explore` shows the partitions,
`build` writes one build per partition and the schedule, `verify` chains the partitions'
simulations and compares the network's outputs with golden; wrong hardware fails it."""

import json
import shutil

import numpy as np
import onnx
import pytest

from support import onnx_models
from support.cli import assert_user_error, dnnhw


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """Two MLPs for the iCEBreaker: 128-80-64 (two partitions) and 128-96-64 (its first layer
    must reload its weights)."""
    folder = tmp_path_factory.mktemp("nets")
    paths = {}
    for name, widths in (("mlp2", [80, 64]), ("reload", [96, 64])):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(onnx_models.vgg([], widths, in_shape=(128, 1, 1), name=name), paths[name])
    vgg = folder / "vgg.onnx"
    onnx.save(onnx_models.vgg(*onnx_models.VGG_CIFAR, name="vgg_cifar"), vgg)
    paths["vgg"] = vgg
    return paths


@pytest.fixture(scope="module")
def built(networks, tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "mlp2"
    result = dnnhw("build", networks["mlp2"], "--board", "icebreaker", "--no-synth", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_build_writes_a_folder_per_partition_and_the_schedule(built):
    out, result = built
    assert "2 partitions, batch 256" in result.stdout
    assert "host keeping the feature maps" in result.stderr
    report = json.loads((out / "report.json").read_text())
    schedule = json.loads((out / "schedule.json").read_text())
    assert report["partitioned"] and len(report["partitions"]) == 2
    assert [p["folder"] for p in schedule["partitions"]] == ["partition-1", "partition-2"]
    assert schedule["path"]["name"] == "host link" and schedule["buffers"] is None
    first, second = schedule["partitions"]
    assert first["output_shape"] == second["input_shape"] == [80, 1, 1]
    assert first["bytes_per_frame"] == {"i": 128, "o": 80}
    for k, part in enumerate(schedule["partitions"], 1):
        sub = json.loads((out / f"partition-{k}" / "report.json").read_text())
        assert sub["predicted"]["cycles_per_frame"] == part["predicted"]["cycles_per_frame"]
        assert (out / f"partition-{k}" / "rtl" / "dnnhw_accel.v").exists()
    assert (out / "design" / "graph.json").exists() and (out / "report.html").exists()


def test_verify_chains_the_partitions_bit_exact(built):
    out, _ = built
    result = dnnhw("verify", out, "--frames", "4")
    assert result.returncode == 0, result.stderr
    assert "through 2 partitions" in result.stdout and "bit-exact" in result.stdout
    verified = json.loads((out / "verify.json").read_text())
    assert verified["bit_exact"] and verified["chained"] and verified["frames"] == 4
    for part in verified["partitions"]:
        assert part["measured_cycles_per_frame"] == part["predicted_cycles_per_frame"]


def test_verify_fails_when_a_partition_computes_something_else(built, tmp_path):
    """Golden of a network with one weight changed is not what the hardware computes."""
    out = tmp_path / "changed"
    shutil.copytree(built[0], out)
    npz = out / "design" / "graph.npz"
    with np.load(npz) as stored:
        arrays = dict(stored)
    key = next(k for k in arrays if k.startswith("layers.1.") and k.endswith("wq.weight"))
    arrays[key] = arrays[key].copy()
    arrays[key].flat[0] += 1
    np.savez(npz, **arrays)
    result = dnnhw("verify", out, "--frames", "3")
    assert result.returncode == 1
    assert "partition 2 differ" in result.stderr


def test_a_partitioned_record_replays_by_partition(built, tmp_path):
    out, _ = built
    assert_user_error(dnnhw("build", "--plan", out / "design" / "plan.json", "--no-synth",
                            "--out", tmp_path / "again"), "records a partitioned build")
    again = tmp_path / "p2"
    result = dnnhw("build", "--plan", out / "partition-2" / "design" / "plan.json", "--no-synth",
                   "--out", again)
    assert result.returncode == 0, result.stderr
    assert ((again / "rtl" / "dnnhw_accel.v").read_bytes()
            == (out / "partition-2" / "rtl" / "dnnhw_accel.v").read_bytes())


def test_explore_prints_the_partitions(networks, tmp_path):
    result = dnnhw("explore", networks["vgg"], "--board", "arty", "--bits", "16", "--plot",
                   tmp_path / "batch.png")
    assert result.returncode == 0, result.stderr
    assert "partitions, batch 256" in result.stdout and "host link" in result.stdout
    assert (tmp_path / "batch.png").read_bytes().startswith(b"\x89PNG")
    result = dnnhw("explore", networks["vgg"], "--board", "pynq-z1", "--bits", "16", "--json",
                   "--batch", "8")
    summary = json.loads(result.stdout)
    assert result.returncode == 0 and "partitioned" not in summary      # fits in one design
    result = dnnhw("explore", networks["vgg"], "--board", "arty", "--bits", "16", "--json",
                   "--batch", "8", "--objective", "latency")
    summary = json.loads(result.stdout)
    assert summary["partitioned"] and summary["predicted"]["batch"] == 8


def test_bad_batch_and_reloading_over_a_host_link_are_refused(networks, tmp_path):
    assert_user_error(dnnhw("explore", networks["vgg"], "--board", "arty", "--bits", "16",
                            "--batch", "0"), "--batch must be at least 1")
    out = tmp_path / "reload"
    assert_user_error(dnnhw("build", networks["reload"], "--board", "icebreaker", "--no-synth",
                            "--out", out), "layer 'gemm0' (fc) does not fit icebreaker even alone",
                      "reloading only for boards whose weights stream from DRAM")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_reloaded_layer_is_bit_exact_in_chunks(networks, tmp_path):
    """On 2 % of the pynq-z1, gemm0 (96 filters) holds 48 at a time: one writable bitstream
    for its partition, loaded with each chunk's weights in turn; the chained simulation of
    both chunks and the second partition is bit-exact, and the batch's measured cycles (both
    loads, one beat a cycle, and both runs) are the model's within 1 %."""
    out = tmp_path / "reload"
    result = dnnhw("build", networks["reload"], "--board", "pynq-z1", "--cap", "0.02",
                   "--no-synth", "--out", out)
    assert result.returncode == 0, result.stderr
    schedule = json.loads((out / "schedule.json").read_text())
    assert [p["reload"] for p in schedule["partitions"]] == [2, 1]
    design = json.loads((out / "partition-1" / "design" / "design.json").read_text())
    loads = np.load(out / "partition-1" / "design" / "loads.npy")
    assert design["ports"]["w"]["layers"] == ["gemm0"]
    assert loads.shape == (2, design["ports"]["w"]["beats"]) and not np.array_equal(*loads)
    assert "s_axis_weights_tdata" in (out / "partition-1" / "board" / "dnnhw_axis_top.v").read_text()
    result = dnnhw("verify", out, "--frames", "4")
    assert result.returncode == 0, result.stderr
    verified = json.loads((out / "verify.json").read_text())
    first = verified["partitions"][0]
    assert verified["bit_exact"] and first["chunks"] == 2
    assert abs(first["measured_batch_cycles"] - first["predicted_batch_cycles"]) <= 0.01 * first["predicted_batch_cycles"]
