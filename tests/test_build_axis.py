"""`dnnhw build` for a Zynq board: the AXI4-Stream top in board/, with Vivado's port names and
the widths design.json's lanes and bits give, and a note that says where it is."""

import json
import re

import onnx

from dnnhw.link.axis import tdata_width
from support import onnx_models
from support.cli import dnnhw


def tiny_onnx(path):
    """Conv 3×3 (2 → 4 channels, pad 1) + ReLU on 2×4×4, Flatten, Gemm 64 → 6."""
    b = onnx_models._Builder(17, seed=5)
    t = b.op("Relu", [b.conv("x", 2, 4, pads=[1, 1, 1, 1])])
    t = b.op("Flatten", [t])
    b.op("Gemm", [t, b.const(b.weight((6, 64), 64), "w"), b.bias(6)], out="y", transB=1)
    onnx.save(b.model("tiny", [1, 2, 4, 4], [1, 6]), path)
    return path


def module_ports(verilog, name):
    """{port: (direction, width)} of module `name` in `verilog`."""
    body = verilog[verilog.index(f"module {name}("):]
    body = body[:body.index("endmodule")]
    return {port: (direction, int(msb) + 1 if msb else 1) for direction, msb, port in
            re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s*)?(\w+);", body, re.M)}


def test_build_writes_the_axi_stream_top(tmp_path):
    folder = tmp_path / "tiny-pynq-z1"
    result = dnnhw("build", tiny_onnx(tmp_path / "tiny.onnx"), "--board", "pynq-z1", "--no-synth",
                   "--out", folder)
    assert result.returncode == 0, result.stderr
    design = json.loads((folder / "design" / "design.json").read_text())
    width_in = tdata_width(design["ports"]["i"]["lanes"], design["ports"]["i"]["bits"])
    width_out = tdata_width(design["ports"]["o"]["lanes"], design["ports"]["o"]["bits"])
    verilog = (folder / "board" / "dnnhw_axis_top.v").read_text()
    assert module_ports(verilog, "dnnhw_axis_top") == {
        "clk": ("input", 1), "rst": ("input", 1),
        "s_axis_tdata": ("input", width_in), "s_axis_tvalid": ("input", 1),
        "s_axis_tready": ("output", 1), "s_axis_tlast": ("input", 1),
        "m_axis_tdata": ("output", width_out), "m_axis_tvalid": ("output", 1),
        "m_axis_tready": ("input", 1), "m_axis_tlast": ("output", 1),
        "frame_error": ("output", 1)}
    notes = json.loads((folder / "report.json").read_text())["notes"]
    axis = [note for note in notes if "board/dnnhw_axis_top.v" in note]
    assert len(axis) == 1
    assert f"s_axis_tdata {width_in} bits" in axis[0]
    assert f"m_axis_tdata {width_out} bits" in axis[0]
