"""The AXI4-Stream top: a small quantized network behind `AxiStreamTop`, frames back to back
under random gaps on both sides, in amaranth.sim and in cocotb + Verilator (the cocotb test
`axis_bench` below drives the real `s_axis_*` / `m_axis_*` ports): outputs bit-exact against
golden, TLAST on exactly the last beat of every output frame, the master's beats held while
stalled, and a wrong input TLAST (early, missing, on every beat) raising `frame_error`."""

import json
import os
import random

import cocotb
import numpy as np
import onnx
import pytest
from amaranth.sim import Simulator
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from dnnhw import golden, quant
from dnnhw.accel import Accelerator
from dnnhw.frontend import load
from dnnhw.link.axis import AxiStreamTop, tdata_width
from dnnhw.model import Folding
from dnnhw.sim import from_beats, to_beats, verilate
from dnnhw.sim.runner import run_json_test
from dnnhw.sim.streams import pack, unpack
from support import onnx_models


BITS = 6            # 2 input lanes: 12 of 16 TDATA bits; 3 output lanes: 18 of 24


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Conv 3×3 (2 → 4 channels, pad 1) + ReLU on 2×4×4, Flatten, Gemm 64 → 6, quantized to
    6 bits; its calibration frames."""
    b = onnx_models._Builder(17, seed=5)
    t = b.op("Relu", [b.conv("x", 2, 4, pads=[1, 1, 1, 1])])
    t = b.op("Flatten", [t])
    b.op("Gemm", [t, b.const(b.weight((6, 64), 64), "w"), b.bias(6)], out="y", transB=1)
    path = tmp_path_factory.mktemp("axis") / "tiny.onnx"
    onnx.save(b.model("tiny", [1, 2, 4, 4], [1, 6]), path)
    frames = np.random.default_rng(5).standard_normal((16, 2, 4, 4))
    return quant.quantize(load(path), frames, bits=BITS), frames


def axis_top(graph):
    conv, fc = graph.layers
    top = AxiStreamTop(Accelerator(graph, {conv.name: Folding(2, 4, 3), fc.name: Folding(4, 3)}))
    assert (top.accel.input_lanes, top.accel.output_lanes) == (2, 3)
    assert (len(top.s_axis_tdata), len(top.m_axis_tdata)) == (16, 24)
    assert (top.in_beats, top.out_beats) == (16, 2)
    return top


def stimulus(top, frames, seed=0):
    """Input beats [(tdata, tlast)] of `frames` with random bits above the lanes (to be ignored),
    TLAST on each frame's last beat; golden's output frames."""
    graph, accel = top.accel.graph, top.accel
    rng = np.random.default_rng(seed)
    lanes_bits = accel.input_lanes * top.bits_in
    beats, want = [], []
    for frame in frames:
        x = golden.quantize(golden.input_to_chw(graph, frame), graph.formats[graph.input])
        want.append(golden.run_fixed(graph, x)[graph.output])
        for k, beat in enumerate(to_beats(x, accel.input_lanes)):
            junk = int(rng.integers(0, 1 << (len(top.s_axis_tdata) - lanes_bits))) << lanes_bits
            beats.append((pack(beat, top.accel.i.payload.shape().elem_shape) | junk,
                          int(k == top.in_beats - 1)))
    return beats, want


def check_outputs(top, got, want):
    """`got` [(tdata, tlast)] is `want`'s frames, bits above the lanes zero, TLAST on exactly
    every frame's last beat."""
    accel, graph = top.accel, top.accel.graph
    lanes_bits = accel.output_lanes * top.bits_out
    assert len(got) == len(want) * top.out_beats
    assert [tlast for _, tlast in got] == [int(k % top.out_beats == top.out_beats - 1)
                                           for k in range(len(got))]
    assert all(tdata >> lanes_bits == 0 for tdata, _ in got)
    shape = accel.o.payload.shape().elem_shape
    values = [unpack(tdata, accel.output_lanes, shape) for tdata, _ in got]
    for k, w in enumerate(want):
        frame = values[k * top.out_beats:(k + 1) * top.out_beats]
        np.testing.assert_array_equal(from_beats(frame, tuple(graph.shapes[graph.output])), w)


# -- amaranth.sim -------------------------------------------------------------------------------


def amaranth_run(top, beats, expect, stall=0.3, seed=0, drain=20):
    """Send `beats` ([(tdata, tlast)]) into `s_axis`, VALID down with probability `stall` before
    each; take `expect` beats from `m_axis`, READY down with probability `stall`. Returns
    {"beats": [(tdata, tlast)], "error_after": input beats taken when `frame_error` was first
    high (None if never), "held": every stalled master beat stayed offered unchanged,
    "extra": beats offered after the expected ones}."""
    rng = random.Random(seed)
    out = {"beats": [], "error_after": None, "held": True, "extra": 0}

    async def sender(ctx):
        for tdata, tlast in beats:
            while rng.random() < stall:
                await ctx.tick()
            ctx.set(top.s_axis_tdata, tdata)
            ctx.set(top.s_axis_tlast, tlast)
            ctx.set(top.s_axis_tvalid, 1)
            await ctx.tick().until(top.s_axis_tready)
            ctx.set(top.s_axis_tvalid, 0)

    async def receiver(ctx):
        nonlocal drain
        taken, offered = 0, None
        while drain:
            draining = len(out["beats"]) >= expect
            ready = draining or rng.random() >= stall
            ctx.set(top.m_axis_tready, ready)
            _, _, s_valid, s_ready, valid, tdata, tlast, error = await ctx.tick().sample(
                top.s_axis_tvalid, top.s_axis_tready, top.m_axis_tvalid, top.m_axis_tdata,
                top.m_axis_tlast, top.frame_error)
            if error and out["error_after"] is None:
                out["error_after"] = taken
            taken += s_valid and s_ready
            if offered is not None and (not valid or (tdata, tlast) != offered):
                out["held"] = False
            offered = (tdata, tlast) if valid and not ready else None
            if valid and ready:
                if draining:
                    out["extra"] += 1
                else:
                    out["beats"].append((tdata, tlast))
            drain -= draining

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(sender)
    sim.add_testbench(receiver)
    sim.run()
    return out


def test_frames_back_to_back(network):
    """Four frames, gaps on both sides: bit-exact, TLAST on each frame's last beat, stalled
    beats held, nothing more; a correct TLAST never raises `frame_error`."""
    graph, frames = network
    top = axis_top(graph)
    beats, want = stimulus(top, frames[:4])
    out = amaranth_run(top, beats, 4 * top.out_beats)
    check_outputs(top, out["beats"], want)
    assert out["held"] and out["extra"] == 0 and out["error_after"] is None


def wrong_tlast(beats, in_beats, case):
    """`beats` with TLAST wrong as `case` says; returns them and the index of the first bad beat."""
    beats = list(beats)
    if case == "early":                 # frame 1 ends 5 beats in
        bad = in_beats + 5
        beats[bad] = (beats[bad][0], 1)
    elif case == "missing":             # frame 0's last beat has no TLAST
        bad = in_beats - 1
        beats[bad] = (beats[bad][0], 0)
    else:                               # "every": TLAST on every beat
        bad = 0
        beats = [(tdata, 1) for tdata, _ in beats]
    return beats, bad


@pytest.mark.parametrize("case", ["early", "missing", "every"])
def test_wrong_tlast_sets_frame_error(network, case):
    """`frame_error` rises the cycle after the first beat whose TLAST disagrees with the count
    and stays up; every beat still reaches the accelerator, so the outputs are unchanged."""
    graph, frames = network
    top = axis_top(graph)
    beats, want = stimulus(top, frames[4:7], seed=1)
    beats, bad = wrong_tlast(beats, top.in_beats, case)
    out = amaranth_run(top, beats, 3 * top.out_beats, seed=2)
    assert out["error_after"] == bad + 1
    check_outputs(top, out["beats"], want)


# -- cocotb + Verilator -------------------------------------------------------------------------


@cocotb.test()
async def axis_bench(dut):
    """The cocotb side of `verilator_run`, as `amaranth_run` does it, plus `frame_error` at the
    end (`error_end`)."""
    with open(os.environ["DNNHW_AXIS_BENCH"]) as f:
        cfg = json.load(f)
    rng = random.Random(cfg["seed"])
    beats, expect, stall = cfg["beats"], cfg["expect"], cfg["stall"]
    out = {"beats": [], "error_after": None, "held": True, "extra": 0}
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    sent = taken = 0
    presenting, offered, drain, cycle = False, None, cfg["drain"], 0
    while drain:
        assert cycle < cfg["timeout"], f"timeout: {len(out['beats'])} of {expect} beats out"
        await FallingEdge(dut.clk)
        if not presenting and sent < len(beats):
            presenting = rng.random() >= stall
        dut.s_axis_tvalid.value = int(presenting)
        if presenting:
            dut.s_axis_tdata.value, dut.s_axis_tlast.value = beats[sent]
        draining = len(out["beats"]) >= expect and sent == len(beats)
        ready = draining or rng.random() >= stall
        dut.m_axis_tready.value = int(ready)
        await ReadOnly()
        if int(dut.frame_error.value) and out["error_after"] is None:
            out["error_after"] = taken
        if presenting and int(dut.s_axis_tready.value):
            sent, taken, presenting = sent + 1, taken + 1, False
        valid = int(dut.m_axis_tvalid.value)
        beat = (int(dut.m_axis_tdata.value), int(dut.m_axis_tlast.value))
        if offered is not None and (not valid or beat != offered):
            out["held"] = False
        offered = beat if valid and not ready else None
        if valid and ready:
            if draining:
                out["extra"] += 1
            else:
                out["beats"].append(beat)
        drain -= draining
        await RisingEdge(dut.clk)
        cycle += 1
    out["error_end"] = int(dut.frame_error.value)
    with open(os.environ["DNNHW_AXIS_BENCH_RESULT"], "w") as f:
        json.dump(out, f)


def verilator_run(top, beats, expect, stall=0.3, seed=0, drain=20):
    """`amaranth_run` in cocotb + Verilator (`axis_bench`)."""
    runner, build_dir = verilate(top, "axis_top")
    out = run_json_test(runner, build_dir, "axis_top", __name__, "DNNHW_AXIS_BENCH", {
        "beats": beats, "expect": expect, "stall": stall, "seed": seed, "drain": drain,
        "timeout": 200 + 20 * (len(beats) + expect)})
    out["beats"] = [tuple(beat) for beat in out["beats"]]
    return out


def test_verilator_frames_and_frame_error(network):
    """The Verilog top's ports: six frames back to back under gaps on both sides, bit-exact with
    TLAST on each frame's last beat and stalled beats held; then the same with frame 1 ending
    early, which raises `frame_error` and leaves the outputs unchanged."""
    graph, frames = network
    top = axis_top(graph)
    beats, want = stimulus(top, frames[:6], seed=3)
    out = verilator_run(top, beats, 6 * top.out_beats, seed=4)
    check_outputs(top, out["beats"], want)
    assert out["held"] and out["extra"] == 0
    assert out["error_after"] is None and out["error_end"] == 0
    beats, bad = wrong_tlast(beats, top.in_beats, "early")
    out = verilator_run(top, beats, 6 * top.out_beats, seed=5)
    check_outputs(top, out["beats"], want)
    assert out["error_after"] == bad + 1 and out["error_end"] == 1


def test_tdata_width():
    cases = {(1, 8): 8, (2, 6): 16, (3, 6): 24, (1, 12): 16, (4, 16): 64}
    assert {case: tdata_width(*case) for case in cases} == cases
