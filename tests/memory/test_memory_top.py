"""`MemoryAccelerator` in cocotb + Verilator against `LatencyAxiRam`: a host (cocotbext-axi's
`AxiLiteMaster`) writes the buffer addresses and BATCH, then START, and polls STATUS until
DONE; the output region must then hold `golden.run_fixed`'s frames bit for bit in `layout`'s
memory layout, and the cycles from START to DONE must be `timing.run_cycles`'s within 5 %.

One top is built per network and one cocotb run (`top_bench`) plays a list of runs on it, on
one RAM image: full, half and quarter read and write bandwidth (R and W pause patterns, k of
n), random pauses on every AXI channel, an added pipelined memory latency, and two runs that
chain (the second reads the first's output region: partitions in one memory image). The
weights port is tested with a stand-in accelerator (`OffsetAdder`) that adds the last word
loaded to every element.
"""

import itertools
import json
import os
import pathlib
import random
import tempfile

import cocotb
import numpy as np
import onnx
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiReadBus

from dnnhw import golden, quant
from dnnhw.accel import Accelerator
from dnnhw.frontend import load
from dnnhw.ir import Shape
from dnnhw.layers.common import pixel_layout
from dnnhw.memory import layout, timing
from dnnhw.memory.top import MemoryAccelerator, input_wait
from dnnhw.model import Folding
from dnnhw.sim import verilate
from dnnhw.sim.runner import run_json_test
from support.axi_ram import LatencyAxiRam, LatencyAxiRamRead
from support import onnx_models
from support.graphs import conv_graph


# tops built but never elaborated by the parameter tests are freed during these, whose
# warning capture would report them
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

RAM_BYTES = 1 << 18
DATA_WIDTH = 64
AXIRAM_LATENCY = 2              # AxiRam: AR → first R beat, and last W beat → B (measured)
HALF, QUARTER = [1, 2], [1, 4]
MODEL_TOLERANCE = 0.05


# -- cocotb side --------------------------------------------------------------------------------


class _Monitor:
    """Per-cycle record of the AXI-Lite write responses (the START write's is the cycle of the
    `start` pulse), the B handshakes on `m_axi` and the AR handshakes on `m_axi_weights`."""

    def __init__(self, dut, weights):
        self.dut, self.weights, self.cycle = dut, weights, 0
        self.responses, self.b, self.weight_reads = [], [], []
        cocotb.start_soon(self._watch())

    async def _watch(self):
        dut, was_valid = self.dut, 0
        while True:
            await ReadOnly()
            valid = int(dut.control__bvalid.value)
            if valid and not was_valid:
                self.responses.append(self.cycle)
            was_valid = valid and not int(dut.control__bready.value)
            if int(dut.m_axi__bvalid.value) and int(dut.m_axi__bready.value):
                self.b.append(self.cycle)
            if self.weights and int(dut.m_axi_weights__arvalid.value) and int(
                    dut.m_axi_weights__arready.value):
                self.weight_reads.append(self.cycle)
            await RisingEdge(dut.clk)
            self.cycle += 1


def _pauses(spec, rng):
    """A cocotbext-axi pause generator: "k of n" ([k, n]), a pause probability (a float), or
    none (None)."""
    if spec is None:
        return itertools.repeat(False)
    if isinstance(spec, float):
        return iter(lambda: rng.random() < spec, None)
    k, n = spec
    return itertools.cycle([False] * k + [True] * (n - k))


async def _run(dut, host, rams, monitor, offsets, run):
    """One run: pauses and latencies set, registers written, START, STATUS polled to DONE."""
    rng = random.Random(run["seed"])
    ram, reads = rams[0], [rams[0].read_if, *rams[1:]]
    channels = {"r": [r.r_channel for r in reads], "ar": [r.ar_channel for r in reads],
                "w": [ram.write_if.w_channel], "aw": [ram.write_if.aw_channel],
                "b": [ram.write_if.b_channel]}
    for name, sources in channels.items():
        for source in sources:
            source.set_pause_generator(_pauses(run["pauses"].get(name), rng))
    for r in rams:
        r.read_latency = run["read_latency"]
    ram.write_latency = run["write_latency"]
    for name, value in run["registers"].items():
        await host.write_dword(offsets[name], value)
    responses, weight_reads = len(monitor.responses), len(monitor.weight_reads)
    await host.write_dword(offsets["control"], 1 | run["mode"] << 8)
    start = monitor.responses[responses]
    statuses = []
    while not statuses or not statuses[-1][1] & 2:
        status = await host.read_dword(offsets["status"])
        statuses.append([monitor.cycle, status])
    for name in channels:                         # no pauses while the host reads the results
        for source in channels[name]:
            source.set_pause_generator(itertools.repeat(False))
    return {"start": start, "b": [c for c in monitor.b if c > start],
            "statuses": statuses, "weight_reads": len(monitor.weight_reads) - weight_reads,
            "ram": [ram.read(a, n).hex() for a, n in run["read"]]}


@cocotb.test()
async def top_bench(dut):
    """The runs of $DNNHW_TOP_BENCH in order on one RAM image; their logs to ..._RESULT."""
    with open(os.environ["DNNHW_TOP_BENCH"]) as f:
        cfg = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    ram = LatencyAxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=RAM_BYTES)
    rams = [ram]
    if cfg["weights"]:
        rams.append(LatencyAxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_weights_"), dut.clk,
                                      dut.rst, size=RAM_BYTES, mem=ram.mem))
    for address, data in cfg["image"]:
        ram.write(address, bytes.fromhex(data))
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "control_"), dut.clk, dut.rst)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    monitor = _Monitor(dut, cfg["weights"])
    logs = {run["name"]: await _run(dut, host, rams, monitor, cfg["offsets"], run)
            for run in cfg["runs"]}
    with open(os.environ["DNNHW_TOP_BENCH_RESULT"], "w") as f:
        json.dump(logs, f)


# -- pytest side --------------------------------------------------------------------------------


def run_bench(top, name, image, runs):
    """Build `top` (cached) and play `runs` on it, on a RAM holding `image` ([(address,
    bytes)]), in one cocotb run: {run name: log}."""
    runner, build_dir = verilate(top, name)
    return run_json_test(runner, build_dir, name, __name__, "DNNHW_TOP_BENCH", {
        "weights": bool(top.load_beats), "offsets": top.offsets,
        "image": [[a, bytes(d).hex()] for a, d in image], "runs": runs})


def run(name, top, batch, input, output, *, mode=0, weights=0, pauses=None, read_latency=0,
        write_latency=0, seed=0):
    """A run's config; it reads back the output region and the word after it."""
    word = top.reader.data_width // 8
    out_bytes = batch * top.output_words * word
    return {"name": name, "registers": {"input": input, "output": output, "weights": weights,
                                        "batch": batch},
            "mode": mode, "pauses": pauses or {}, "read_latency": read_latency,
            "write_latency": write_latency, "seed": seed,
            "read": [[output, out_bytes + word]]}


def output_frames(top, log, batch):
    """The frames the run left in its output region, and the word after them (must be 0)."""
    data, width = bytes.fromhex(log["ram"][0]), top.reader.data_width
    frames = layout.unpack(data, batch, top.pack.frame_elements, top.bits_out, width)
    return frames, data[-width // 8:]


def check_status(log):
    """STATUS: BUSY without DONE until the last write response, then DONE without BUSY, seen
    within a poll of it (the first poll starts a few cycles after START)."""
    done = log["b"][-1] + 1                       # the cycle `RunSequencer` pulses `done`
    statuses = log["statuses"]
    assert all(status == 1 for _, status in statuses[:-1]), statuses
    assert statuses[-1][1] == 2, statuses
    assert len(statuses) == 1 or statuses[-2][0] <= done + 3, (statuses, done)
    assert done < statuses[-1][0] <= done + 12, (statuses, done)


# -- the conv networks

SHAPE = Shape(4, 8, 8)
NETWORKS = {   # name: bits, activation, folding; the frames are (4, 8, 8), in and out
    "conv8": (8, "relu", Folding(4, 4, 9)),          # 100 cycles a frame, 32 words in and out
    "conv16": (16, None, Folding(2, 4, 9)),          # 200 cycles a frame, 64 words in and out
}
BATCH = 4
INPUT, OUTPUT = 0x0FC0, 0x11FC8               # both a few words before a 4 KB boundary


def network(name):
    bits, act, folding = NETWORKS[name]
    graph, _ = conv_graph(SHAPE, SHAPE.c, (3, 3), (1, 1), (1, 1, 1, 1), act=act, bits=bits,
                          seed=bits)
    return graph, MemoryAccelerator(Accelerator(graph, {"conv": folding}), id_width=1,
                                    data_width=DATA_WIDTH)


def frames_of(graph, batch, seed):
    """Random input frames, (batch, C, H, W) integers of the input's format."""
    bits = graph.formats[graph.input].bits
    return np.random.default_rng(seed).integers(-(1 << bits - 1), 1 << bits - 1,
                                                size=(batch, *SHAPE))


def expected(graph, maps):
    """golden.run_fixed of each map, in stream order: (batch, elements)."""
    return layout.stream_order(np.stack([golden.run_fixed(graph, x)[graph.output]
                                         for x in maps]))


def model(top, c):
    """`timing.run_cycles` for the run `c` of `top`."""
    (kr, nr), (kw, nw) = c["pauses"].get("r", [1, 1]), c["pauses"].get("w", [1, 1])
    perf, registers = top.accel.perf, c["registers"]
    return timing.run_cycles(
        registers["batch"], cycles_per_frame=perf.cycles_per_frame, latency=perf.latency,
        first_output=perf.first_output, input_wait=input_wait(top.accel),
        input_address=registers["input"], input_words=top.input_words,
        input_beats=top.unpack.frame_elements // top.lanes_in,
        output_address=registers["output"], output_words=top.output_words,
        output_beats=top.pack.frame_elements // top.lanes_out,
        data_width=top.reader.data_width, max_burst=top.reader.max_burst,
        outstanding=top.reader.outstanding,
        read_latency=AXIRAM_LATENCY + c["read_latency"],
        write_latency=AXIRAM_LATENCY + c["write_latency"],
        read_bandwidth=kr / nr, write_bandwidth=kw / nw)


def conv_runs(top):
    """Timed runs at full, half and quarter bandwidth, one with 20 cycles more memory
    latency, one under random pauses on every channel, each writing its own output region;
    and two that chain."""
    region = 0x8000
    timed = [("full", {}), ("half", {"r": HALF, "w": HALF}),
             ("quarter", {"r": QUARTER, "w": QUARTER})]
    runs = [run(name, top, BATCH, INPUT, OUTPUT + k * region, pauses=p)
            for k, (name, p) in enumerate(timed)]
    runs.append(run("latency", top, BATCH, INPUT, OUTPUT + 3 * region, read_latency=20,
                    write_latency=20))
    runs.append(run("stalls", top, BATCH, INPUT, OUTPUT + 4 * region, seed=4,
                    pauses={ch: 0.4 for ch in ["r", "ar", "w", "aw", "b"]}))
    chain = 0x2F000 - 0x40                          # run "chain1"'s output, "chain2"'s input
    runs += [run("chain1", top, 2, INPUT, chain),
             run("chain2", top, 2, chain, OUTPUT + 5 * region, pauses={"r": 0.3, "w": 0.3},
                 seed=5)]
    return runs


@pytest.fixture(scope="module", params=list(NETWORKS))
def conv_logs(request):
    graph, top = network(request.param)
    maps = frames_of(graph, BATCH, seed=1)
    image = [(INPUT, layout.pack(layout.stream_order(maps), top.bits_in, DATA_WIDTH))]
    runs = conv_runs(top)
    return graph, top, maps, runs, run_bench(top, f"memory_top_{request.param}", image, runs)


def test_conv_bit_exact(conv_logs):
    """Every run leaves golden's frames in its output region and nothing after them; STATUS
    as `check_status` says; the chained run's output is the network applied twice."""
    graph, top, maps, runs, logs = conv_logs
    want = expected(graph, maps)
    for c in runs:
        log, batch = logs[c["name"]], c["registers"]["batch"]
        got, after = output_frames(top, log, batch)
        if c["name"] == "chain2":
            first = layout.from_stream_order(want[:2], tuple(SHAPE))
            np.testing.assert_array_equal(got, expected(graph, first), c["name"])
        else:
            np.testing.assert_array_equal(got, want[:batch], c["name"])
        assert after == bytes(DATA_WIDTH // 8), c["name"]
        check_status(log)
        assert len(log["b"]) == len(timing.bursts(c["registers"]["output"],
                                                  batch * top.output_words, DATA_WIDTH, 16))


@pytest.mark.parametrize("name", ["full", "half", "quarter", "latency", "chain1"])
def test_conv_cycles_against_model(conv_logs, name):
    """Cycles from START to DONE within 5 % of `timing.run_cycles`, compute- and
    memory-bound alike."""
    _, top, _, runs, logs = conv_logs
    c = next(c for c in runs if c["name"] == name)
    log = logs[name]
    got = log["b"][-1] + 1 - log["start"]
    want = model(top, c)
    print(f"{name}: measured {got}, model {want}")
    assert abs(got - want) <= MODEL_TOLERANCE * want, (got, want)


# -- the weights port


class OffsetAdder(wiring.Component):
    """Stand-in for an accelerator with a weights port: `o` = `i` + the low `bits` of the last
    word loaded on `w` (signed, wrapping), one beat a cycle, latency 1; `i` is held until
    `load_beats` words have come since reset."""

    def __init__(self, bits, lanes, load_bits, load_beats):
        self.bits, self.load_beats = bits, load_beats
        super().__init__({"i": In(stream.Signature(pixel_layout(bits, lanes))),
                          "o": Out(stream.Signature(pixel_layout(bits, lanes))),
                          "w": In(stream.Signature(unsigned(load_bits)))})

    def elaborate(self, platform):
        m = Module()
        offset = Signal(signed(self.bits))
        loaded = Signal(range(self.load_beats + 1))
        m.d.comb += self.w.ready.eq(1)
        with m.If(self.w.valid):
            m.d.sync += offset.eq(self.w.payload[:self.bits])
            with m.If(loaded != self.load_beats):
                m.d.sync += loaded.eq(loaded + 1)
        m.d.comb += self.i.ready.eq((loaded == self.load_beats) & (~self.o.valid | self.o.ready))
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.o.valid.eq(1)
            for k in range(len(self.i.payload)):
                m.d.sync += self.o.payload[k].eq(self.i.payload[k] + offset)
        return m


def test_weights_port():
    """MODE bit 0: `load_beats` words read on `m_axi_weights` from the weights address, their
    low `load_bits` on `w`, the input flowing at the same time; DONE after both. Without it
    no weight is read and the last load stays. The words' upper bits are noise."""
    bits, lanes, elements, load_beats = 8, 2, 30, 5
    top = MemoryAccelerator(OffsetAdder(bits, lanes, 12, load_beats), id_width=1,
                            input_elements=elements, output_elements=elements)
    rng = np.random.default_rng(9)
    maps = rng.integers(-128, 128, size=(3, elements))
    words = [[int(rng.integers(1 << 62)) for _ in range(load_beats)] for _ in range(2)]
    image = [(0x1000, layout.pack(maps, bits, DATA_WIDTH)),
             *((0x3FF0 + 0x100 * k, b"".join(w.to_bytes(8, "little") for w in ws))
               for k, ws in enumerate(words))]
    runs = [run("load", top, 3, 0x1000, 0x6000, mode=1, weights=0x3FF0,
                pauses={"r": 0.3, "w": 0.3}, read_latency=6, seed=1),
            run("keep", top, 2, 0x1000, 0x7000, mode=0, weights=0x40F0),
            run("reload", top, 3, 0x1000, 0x8000, mode=1, weights=0x40F0, read_latency=30),
            run("after", top, 3, 0x1000, 0x9000, mode=0)]
    logs = run_bench(top, "memory_top_weights", image, runs)
    # "reload" loads while its frames flow, and OffsetAdder, loaded before, does not wait:
    # its data is not checked, the next run's is
    offsets = {"load": words[0][-1], "keep": words[0][-1], "after": words[1][-1]}
    for c in runs:
        log, batch = logs[c["name"]], c["registers"]["batch"]
        loads = timing.bursts(c["registers"]["weights"], load_beats, DATA_WIDTH, 16)
        assert log["weight_reads"] == (len(loads) if c["mode"] else 0), c["name"]
        check_status(log)
        if c["name"] in offsets:
            got, after = output_frames(top, log, batch)
            want = (maps[:batch] + (offsets[c["name"]] & 0xFF) + 128) % 256 - 128
            np.testing.assert_array_equal(got, want, c["name"])
            assert after == bytes(8), c["name"]


@pytest.mark.slow
def test_wide_bus_network():
    """conv_bn_relu (3 → 8 channels, 12×12, ONNX) on a 128-bit bus with 256-beat bursts and 2
    outstanding: one input lane, output lanes of half a word; bit-exact at full and quarter
    bandwidth and under random pauses, the timed runs within 5 % of the model."""
    model_proto = onnx_models.conv_bn_relu()
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(model_proto, pathlib.Path(tmp) / "net.onnx")
        graph = load(pathlib.Path(tmp) / "net.onnx")
    calibration = np.stack([onnx_models.sample_input(model_proto, s)[0] for s in range(4)])
    graph = quant.quantize(graph, calibration, bits=8)
    accel = Accelerator(graph, {graph.layers[0].name: Folding(1, 8, 9)})
    top = MemoryAccelerator(accel, data_width=128, max_burst=256, outstanding=2, id_width=1)
    c, h, w = graph.shapes[graph.input]
    maps = np.random.default_rng(3).integers(-128, 128, size=(3, c, h, w))
    image = [(0x0F80, layout.pack(layout.stream_order(maps), 8, 128))]
    runs = [run("full", top, 3, 0x0F80, 0x10000),
            run("quarter", top, 3, 0x0F80, 0x18000, pauses={"r": QUARTER, "w": QUARTER}),
            run("stalls", top, 3, 0x0F80, 0x20000, seed=2,
                pauses={ch: 0.4 for ch in ["r", "ar", "w", "aw", "b"]})]
    logs = run_bench(top, "memory_top_wide", image, runs)
    want = layout.stream_order(np.stack([golden.run_fixed(graph, x)[graph.output]
                                         for x in maps]))
    for r in runs:
        log = logs[r["name"]]
        got, after = output_frames(top, log, 3)
        np.testing.assert_array_equal(got, want, r["name"])
        assert after == bytes(16), r["name"]
        check_status(log)
        if r["name"] != "stalls":
            measured, predicted = log["b"][-1] + 1 - log["start"], model(top, r)
            print(f"{r['name']}: measured {measured}, model {predicted}")
            assert abs(measured - predicted) <= MODEL_TOLERANCE * predicted
