"""`dnnhw build` and `dnnhw verify` as a user runs them: the build folder, the report contract,
verification in cocotb + Verilator (bit-exact, rate and latency against the model), a broken
design caught, and bad input ending in one line with nothing left behind."""

import json
import shutil

import onnx
import pytest

from dnnhw import record
from support import onnx_models
from support.cli import DIGITS, assert_user_error, dnnhw

REPORT_KEYS = {"network", "board", "device", "clock_mhz", "objective", "macs_per_frame", "params",
               "predicted", "budget", "synth", "pnr", "quant", "layers"}
LAYER_KEYS = {"name", "op", "in_shape", "out_shape", "macs", "coarse_in", "coarse_out", "fine",
              "cycles_per_frame", "latency_cycles", "resources"}
VERIFY_KEYS = {"bit_exact", "frames", "mismatches", "measured_cycles_per_frame",
               "measured_latency_cycles", "predicted_cycles_per_frame", "predicted_latency_cycles",
               "simulator", "seconds"}


@pytest.fixture(scope="module")
def digits_build(tmp_path_factory):
    folder = tmp_path_factory.mktemp("builds") / "digits-arty"
    result = dnnhw("build", DIGITS / "digits.onnx", "--calibration", DIGITS / "digits_calib.npy",
                   "--no-synth", "--out", folder)
    assert result.returncode == 0, result.stderr
    return folder, result


def test_build_writes_the_contract(digits_build):
    folder, result = digits_build
    assert f"report: {folder / 'report.html'}" in result.stdout
    report = json.loads((folder / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert (report["board"], report["device"], report["synth"]) == ("arty", "xc7a35ticsg324-1L", None)
    p = report["predicted"]
    assert set(p) >= {"cycles_per_frame", "fps", "latency_cycles", "gops", "resources"}
    assert p["fps"] == pytest.approx(report["clock_mhz"] * 1e6 / p["cycles_per_frame"])
    assert p["cycles_per_frame"] == max(layer["cycles_per_frame"] for layer in report["layers"])
    assert all(p["resources"][k] <= 0.8 * report["budget"][k] for k in ("lut", "ff", "dsp", "bram"))
    assert report["macs_per_frame"] == sum(layer["macs"] for layer in report["layers"]) == 115840
    assert all(LAYER_KEYS <= set(layer) for layer in report["layers"])
    assert set(report["quant"]["float_error"]) >= {"max_abs", "rel_rms", "top1_agreement"}
    assert "module dnnhw_accel" in (folder / "rtl" / "dnnhw_accel.v").read_text()
    # Arty: no open place-and-route; the Vivado plan of the UART board top is there to run
    assert {"top.v", "top.xdc", "build_top.sh"} <= {p.name for p in (folder / "board").iterdir()}
    assert any("Vivado build plan" in note for note in report["notes"])
    html = (folder / "report.html").read_text()
    assert "/3/Conv" in html and "data:image/png;base64," in html
    assert (folder / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]     # no staging left


def test_explore_reports_what_build_reports(digits_build):
    """`explore --json` prints the report's design keys, from the same builder, equal."""
    result = dnnhw("explore", DIGITS / "digits.onnx", "--calibration", DIGITS / "digits_calib.npy",
                   "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    report = json.loads((digits_build[0] / "report.json").read_text())
    roofline = summary.pop("roofline_fps")
    dsp, clock = report["budget"]["dsp"], report["clock_mhz"]
    assert roofline == dsp * (clock * 1e6) / report["macs_per_frame"]
    for found in (summary, report):
        del found["dse"]["seconds"]
    assert summary == {key: report[key] for key in summary}
    assert set(report) - set(summary) == {"source", "synth", "pnr", "quant", "notes",
                                          "build_seconds"}


def test_verify_bit_exact_rate_and_latency(digits_build):
    folder, _ = digits_build
    result = dnnhw("verify", folder, "--frames", "6")
    assert result.returncode == 0, result.stderr
    out = json.loads((folder / "verify.json").read_text())
    assert VERIFY_KEYS <= set(out)
    assert out["bit_exact"] and out["frames"] == 6 and out["mismatches"] == 0
    assert out["stalled_mismatches"] == 0 and out["extra_beats"] == 0
    assert out["measured_cycles_per_frame"] == pytest.approx(out["predicted_cycles_per_frame"], rel=0.05)
    assert out["measured_latency_cycles"] == pytest.approx(out["predicted_latency_cycles"], rel=0.10)
    assert json.loads((folder / "report.json").read_text())["verify"] == out
    assert "bit-exact" in result.stdout


@pytest.mark.slow     # a partitioned build's verify catches a changed weight by default
def test_verify_catches_a_flipped_weight(digits_build, tmp_path):
    """The same design with one weight's sign bit flipped: verify must report the mismatch."""
    from amaranth.back import verilog

    from dnnhw.accel import Accelerator

    folder = tmp_path / "broken"
    shutil.copytree(digits_build[0], folder)
    saved = record.read(folder / "design")
    saved.graph.layers[0].wq.weight[0, 0, 1, 1] ^= -128   # flip the sign bit of one 8-bit weight
    (folder / "rtl" / "dnnhw_accel.v").write_text(
        verilog.convert(Accelerator(saved.graph, saved.plan), name="dnnhw_accel", emit_src=False))
    result = dnnhw("verify", folder, "--frames", "3")
    assert result.returncode == 1
    assert "verification FAILED" in result.stderr and "frames differ" in result.stderr
    out = json.loads((folder / "verify.json").read_text())
    assert not out["bit_exact"] and out["mismatches"] >= 1


def test_verify_accuracy_on_labelled_digits(digits_build):
    folder, _ = digits_build
    result = dnnhw("verify", folder, "--data", DIGITS / "digits_x.npy", "--labels",
                   DIGITS / "digits_y.npy", "--frames", "20")
    assert result.returncode == 0, result.stderr
    accuracy = json.loads((folder / "verify.json").read_text())["accuracy"]
    assert accuracy["frames"] == 20 and accuracy["hardware"] == accuracy["golden"]
    assert abs(accuracy["hardware"] - accuracy["float"]) <= 0.05


def test_verify_rejects_a_folder_that_is_not_a_build(tmp_path):
    assert_user_error(dnnhw("verify", tmp_path), "not a dnnhw build folder")


# -- bad input: one line, exit 2, nothing left behind ----------------------------------------------


def _build_fails(tmp_path, network, *options, fragments=()):
    out = tmp_path / "out" / "net"
    result = dnnhw("build", network, "--no-synth", "--out", out, *options)
    assert_user_error(result, *fragments)
    assert not out.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_build_corrupt_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    _build_fails(tmp_path, bad, fragments=("bad.onnx",))


def test_build_unsupported_op(tmp_path):
    path = tmp_path / "net.onnx"
    onnx.save(onnx_models.unsupported_op(), path)
    _build_fails(tmp_path, path, fragments=("unsupported",))


def test_build_unknown_board(tmp_path):
    _build_fails(tmp_path, DIGITS / "digits.onnx", "--board", "de10nano",
                 fragments=("unknown board 'de10nano'",))


def test_build_that_cannot_fit(tmp_path):
    """An MLP whose weights need more block RAM than an iCE40UP5K has."""
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((512, 1024)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(512, np.float32), "b")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "big",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 512])],
                              [w, b])
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    _build_fails(tmp_path, path, "--board", "icebreaker",
                 fragments=("does not fit icebreaker", "BRAM"))


def test_build_unwritable_folder(tmp_path):
    """The folder's parent cannot be created (a file is in the way): even root cannot write."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = dnnhw("build", DIGITS / "digits.onnx", "--no-synth", "--out", blocker / "sub" / "net")
    assert_user_error(result, "cannot write the build")
    assert blocker.read_text() == ""


def test_build_into_a_file_path(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    assert_user_error(dnnhw("build", DIGITS / "digits.onnx", "--no-synth", "--out", target),
                      "not a folder")
    assert target.read_text() == "keep me"


def test_nonpositive_numbers_are_refused(digits_build, tmp_path):
    assert dnnhw("build", DIGITS / "digits.onnx", "--clock", "0", "--out", tmp_path / "b").returncode == 2
    assert not (tmp_path / "b").exists()
    assert_user_error(dnnhw("verify", digits_build[0], "--frames", "0"), "--frames must be at least 1")


# -- replay: the record rebuilt, byte for byte ---------------------------------------------------


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.parts[len(folder.parts)] in ("rtl", "design", "board")}


def test_replay_is_byte_identical(digits_build, tmp_path):
    """`build --plan` rebuilds from the record alone (no ONNX file, no calibration): the same
    Verilog, design and board files, byte for byte, and the same report but for the time it
    took and a note that it was replayed."""
    folder = digits_build[0]
    plan = folder / "design" / "plan.json"
    out = tmp_path / "replayed"
    result = dnnhw("build", "--plan", plan, "--no-synth", "--out", out)
    assert result.returncode == 0, result.stderr
    original, replayed = _files(folder), _files(out)
    assert {p.parts[0] for p in original} == {"rtl", "design", "board"}
    assert replayed.keys() == original.keys()
    assert [p for p in original if replayed[p] != original[p]] == []
    before, after = (json.loads((f / "report.json").read_text()) for f in (folder, out))
    note = f"replayed the record {plan}: the frontend, quantization and DSE did not run"
    front_notes = len(record.read_graph(folder / "design").notes)   # then the hardware's
    assert after["notes"].index(note) == front_notes
    after["notes"].remove(note)
    before.pop("verify", None)          # what a `verify` of the shared build added to its report
    for report in (before, after):
        del report["build_seconds"]
    assert after == before
    assert f"dnnhw: note: {note}" in result.stderr


def _replay_fails(tmp_path, plan, *options, message):
    out = tmp_path / "out" / "net"
    result = dnnhw("build", "--plan", plan, "--no-synth", "--out", out, *options)
    assert_user_error(result)
    assert result.stderr.strip() == f"dnnhw: error: {message}"
    assert not (tmp_path / "out").exists()


def _copied_design(digits_build, tmp_path):
    design = tmp_path / "design"
    shutil.copytree(digits_build[0] / "design", design)
    return design


def test_replay_refuses_a_missing_or_corrupt_record(digits_build, tmp_path):
    _replay_fails(tmp_path, tmp_path / "nope",
                  message=f"'{tmp_path / 'nope'}': no such file or folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    _replay_fails(tmp_path, empty, message=f"'{empty}' holds no dnnhw build record (missing "
                  "graph.json, graph.npz, plan.json, frames.npy)")
    design = _copied_design(digits_build, tmp_path)
    (design / "plan.json").write_text('{"record": 1, "board": ')
    _replay_fails(tmp_path, design, message=f"{design / 'plan.json'}: not a dnnhw build record "
                  "(not JSON: Expecting value: line 1 column 24 (char 23))")


def test_replay_refuses_a_plan_unfit_for_its_graph(digits_build, tmp_path):
    design = _copied_design(digits_build, tmp_path)
    plan = json.loads((design / "plan.json").read_text())
    plan["folding"]["/3/Conv"]["coarse_in"] = 3
    (design / "plan.json").write_text(json.dumps(plan))
    _replay_fails(tmp_path, design / "plan.json", message=f"{design / 'plan.json'}: the plan "
                  "does not fit the graph: '/3/Conv' (conv): coarse_in=3 must divide 8")
    plan["folding"]["/3/Conv"]["coarse_in"] = 2
    plan["search"]["temperature"] = 1
    (design / "plan.json").write_text(json.dumps(plan))
    _replay_fails(tmp_path, design / "plan.json", message=f"{design / 'plan.json'}: not a dnnhw "
                  "build record (Exploration.__init__() got an unexpected keyword argument "
                  "'temperature')")


def test_replay_takes_no_planning_options(digits_build, tmp_path):
    plan = digits_build[0] / "design" / "plan.json"
    _replay_fails(tmp_path, plan, "--bits", "4", "--board", "arty", message="--plan rebuilds "
                  "a build as it was recorded: --board, --bits cannot be given with it")
    _replay_fails(tmp_path, plan, DIGITS / "digits.onnx", message="--plan rebuilds a build as "
                  "it was recorded: NET.onnx cannot be given with it")
    result = dnnhw("build", "--no-synth")
    assert result.returncode == 2 and result.stderr.strip() == (
        "dnnhw: error: build needs NET.onnx, or --plan to rebuild a recorded build")


# -- synthesis finds the design larger than the model said ---------------------------------------


def _yosys_counting(monkeypatch, factor):
    """Replace Yosys by a count of `factor` × the model's LUTs (the rest as predicted); returns
    the list of (predicted, counted) LUTs, one per synthesis."""
    from dnnhw.dse import KINDS, Space
    from dnnhw.toolchain import yosys

    calls = []

    def synthesize(accel, family, name="top", workdir=None):
        predicted = dict(zip(KINDS, Space(accel.graph, family).resources(accel.plan).tolist()))
        counted = {**predicted, "lut": int(factor * predicted["lut"]), "lutram": 0}
        calls.append((predicted["lut"], counted["lut"]))
        return counted, {}

    monkeypatch.setattr(yosys, "synthesize", synthesize)
    return calls


def _small_arty():
    """Arty with no DSPs and 6000 LUTs: a small conv net's multipliers fill the LUTs."""
    import dataclasses
    from dnnhw.boards import get_board
    return dataclasses.replace(get_board("arty"), name="arty-small", dsp=0, lut=6000)


def test_build_plans_again_when_synthesis_finds_it_too_large(tmp_path, monkeypatch):
    """Yosys counting 1.5 × the model's LUTs: the first plan (by the model within the whole
    budget) does not fit, the build plans again holding back what the model missed, and the
    second fits; the report says so."""
    from dnnhw.build import build
    path = tmp_path / "net.onnx"
    onnx.save(onnx_models.conv_bn_relu(), path)
    calls = _yosys_counting(monkeypatch, 1.5)
    board = _small_arty()
    folder, result = build(path, board, out=tmp_path / "out", cap=1.0)
    reserve = 800                                           # the UART top's (build.link_reserve)
    (first_predicted, first_counted), (second_predicted, second_counted) = calls
    assert first_counted + reserve > board.lut >= second_counted + reserve
    assert result["dse"]["limit"]["lut"] == board.lut - reserve - (first_counted - first_predicted)
    assert result["synth"]["lut"] == second_counted
    assert any("planned again" in note for note in result["notes"])
    assert json.loads((folder / "report.json").read_text())["synth"]["lut"] == second_counted


def test_build_that_synthesis_never_fits(tmp_path, monkeypatch):
    """Yosys counting 5 × the model's LUTs: plans until none is left, then one clear error,
    nothing left behind."""
    from dnnhw.build import build
    from dnnhw.errors import UserError
    path = tmp_path / "net.onnx"
    onnx.save(onnx_models.conv_bn_relu(), path)
    calls = _yosys_counting(monkeypatch, 5)
    with pytest.raises(UserError, match=r"does not fit xc7a35t.*: it needs [\d,]+ LUT of 6,000; "
                                        "planned once"):
        build(path, _small_arty(), out=tmp_path / "out", cap=1.0)
    assert len(calls) == 1                  # holding back 4 × its LUTs leaves no plan that fits
    assert not (tmp_path / "out").exists()
