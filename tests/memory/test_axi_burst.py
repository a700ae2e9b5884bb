"""`AxiReader` and `AxiWriter` against cocotbext-axi's `AxiRam` in cocotb + Verilator.

One bench top (`MemoryBench`: a reader on the read channels and a writer on the write
channels of one AXI4 port) is built once per parameter set, and one cocotb run (`axi_bench`,
below) plays a list of cases on it, each a few commands under R/W pause patterns (k of n
cycles), random stalls on our stream side and an added pipelined memory latency
(`support.axi_ram.LatencyAxiRam`). A per-cycle monitor records every AR/AW, R/W/B beat and
stream handshake; the pytest side checks data bit-exact against the RAM, the bursts against
`timing.bursts` (so none crosses 4 KB or exceeds the maximum length), VALID held until READY,
and the cycles against `timing.read_cycles` / `write_cycles`.

cocotbext-axi's slave needs AxID/xID signals, and the blocks ship with `id_width=0`, so the
bench ties ARID/AWID to 0 and drops RID/BID, as an interconnect does for a master without IDs.
"""

import itertools
import json
import os
import random

import cocotb
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from dnnhw.memory import timing
from dnnhw.memory.axi import AxiSignature
from dnnhw.memory.reader import AxiReader
from dnnhw.memory.writer import AxiWriter
from dnnhw.sim import verilate
from dnnhw.sim.runner import run_json_test
from support.axi_ram import LatencyAxiRam


ADDRESS_WIDTH, DATA_WIDTH = 32, 64
RAM_BYTES = 1 << 16
FILL_SEED = 7
AXIRAM_LATENCY = 2              # AxiRam: AR → first R beat, and last W beat → B (measured)
TOLERANCE = (0.01, 4)           # measured cycles within 1 % or 4 cycles of the model, the larger


class MemoryBench(wiring.Component):
    """`reader` on the read channels and `writer` on the write channels of `m_axi` (1-bit
    IDs, tied to 0); the blocks' other ports under `rd_` and `wr_` names."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        rd, wr = reader.signature.members, writer.signature.members
        super().__init__({
            "rd_cmd": rd["cmd"], "rd": rd["o"], "rd_busy": rd["busy"], "rd_done": rd["done"],
            "wr_cmd": wr["cmd"], "wr": wr["i"], "wr_busy": wr["busy"], "wr_done": wr["done"],
            "m_axi": Out(AxiSignature(reader.address_width, reader.data_width, 1)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.reader, m.submodules.writer = self.reader, self.writer
        for block, prefix in [(self.reader, "rd"), (self.writer, "wr")]:
            wiring.connect(m, wiring.flipped(getattr(self, f"{prefix}_cmd")), block.cmd)
            m.d.comb += [getattr(self, f"{prefix}_busy").eq(block.busy),
                         getattr(self, f"{prefix}_done").eq(block.done)]
            for name, member in block.m_axi.signature.members.items():
                ours, theirs = getattr(self.m_axi, name), getattr(block.m_axi, name)
                m.d.comb += ours.eq(theirs) if member.flow == Out else theirs.eq(ours)
        wiring.connect(m, wiring.flipped(self.rd), self.reader.o)
        wiring.connect(m, wiring.flipped(self.wr), self.writer.i)
        return m


# -- cocotb side --------------------------------------------------------------------------------


def ram_fill():
    """The RAM's initial contents (both sides draw them from `FILL_SEED`)."""
    return random.Random(FILL_SEED).randbytes(RAM_BYTES)


def write_words(seed, count, data_width):
    """The words a write case sends."""
    rng = random.Random(seed)
    return [rng.getrandbits(data_width) for _ in range(count)]


def pauses(pattern):
    """cocotbext-axi pause generator for "k of n" ([k, n]): k cycles on, n − k paused. (A
    case's `<channel>_hold` pauses its first cycles as well.)"""
    k, n = pattern
    return itertools.cycle([False] * k + [True] * (n - k))


_ADDRESS = {"read": ("ar", ["araddr", "arlen", "arsize", "arburst"]),
            "write": ("aw", ["awaddr", "awlen", "awsize", "awburst"])}


class _Monitor:
    """Per-cycle record of one case's handshakes, and of VALID held (with its values) until
    READY on AR/AW, W and the bench's output stream."""

    def __init__(self, dut, read):
        self.dut, self.read = dut, read
        self.log = {"cmd": [], "bursts": [], "beats": [], "responses": [], "stream": [],
                    "words": [], "done": [], "busy": [], "strobes": True, "held": True,
                    "r_stalled": 0}
        self.offered = {}

    def _signal(self, name):
        return int(getattr(self.dut, name).value)

    def _hold(self, channel, valid, ready, values):
        """VALID, once up, stays up with the same values until its handshake."""
        before = self.offered.pop(channel, None)
        if before is not None and (not valid or values != before):
            self.log["held"] = False
        if valid and not ready:
            self.offered[channel] = values

    def sample(self, cycle):
        s, log, prefix = self._signal, self.log, "rd" if self.read else "wr"
        if s(f"{prefix}_cmd__valid") and s(f"{prefix}_cmd__ready"):
            log["cmd"].append(cycle)
        channel, fields = _ADDRESS["read" if self.read else "write"]
        valid, ready = s(f"m_axi__{channel}valid"), s(f"m_axi__{channel}ready")
        values = [s(f"m_axi__{f}") for f in fields]
        self._hold(channel, valid, ready, values)
        if valid and ready:
            log["bursts"].append([cycle, *values])
        if self.read:
            if s("m_axi__rvalid"):
                log["r_stalled"] += not s("m_axi__rready")
                if s("m_axi__rready"):
                    log["beats"].append([cycle, s("m_axi__rlast")])
            valid, ready = s("rd__valid"), s("rd__ready")
            self._hold("o", valid, ready, [s("rd__payload")] if valid else [])
            if valid and ready:
                log["stream"].append(cycle)
                log["words"].append(s("rd__payload"))
        else:
            valid, ready = s("m_axi__wvalid"), s("m_axi__wready")
            self._hold("w", valid, ready, [s("m_axi__wdata"), s("m_axi__wlast")] if valid else [])
            if valid and ready:
                log["beats"].append([cycle, s("m_axi__wlast")])
                log["strobes"] &= s("m_axi__wstrb") == (1 << len(self.dut.m_axi__wstrb)) - 1
            if s("m_axi__bvalid") and s("m_axi__bready"):
                log["responses"].append(cycle)
            if s("wr__valid") and s("wr__ready"):
                log["stream"].append(cycle)
        if s(f"{prefix}_done"):
            log["done"].append(cycle)
        if s(f"{prefix}_busy"):
            log["busy"].append(cycle)


async def _run_case(dut, ram, case, address_width, data_width, drain=24):
    """Play one case: its commands, its pauses and latencies, random stalls on our side."""
    rng = random.Random(case["seed"])
    read = case["op"] == "read"
    for channel, source in [("r", ram.read_if.r_channel), ("w", ram.write_if.w_channel),
                            ("b", ram.write_if.b_channel), ("aw", ram.write_if.aw_channel)]:
        pattern, hold = case.get(f"{channel}_pause"), case.get(f"{channel}_hold", 0)
        after = pauses(pattern) if pattern else itertools.repeat(False)
        source.set_pause_generator(itertools.chain([True] * hold, after))
    if isinstance(ram, LatencyAxiRam):
        ram.read_latency = case.get("read_latency", 0)
        ram.write_latency = case.get("write_latency", 0)
    commands, stall = case["commands"], case.get("stall", 0.0)
    total = sum(beats for _, beats in commands)
    words = [] if read else write_words(case["seed"], total, data_width)
    prefix = "rd" if read else "wr"
    cmd_valid = getattr(dut, f"{prefix}_cmd__valid")
    cmd_payload = getattr(dut, f"{prefix}_cmd__payload")
    monitor = _Monitor(dut, read)
    log, presenting, cycle = monitor.log, False, 0
    while drain:
        assert cycle < case["timeout"], f"timeout in case {case['name']}: {log['done']}"
        await FallingEdge(dut.clk)
        sent = len(log["cmd"])
        cmd_valid.value = int(sent < len(commands))
        if sent < len(commands):
            cmd_payload.value = commands[sent][0] | commands[sent][1] << address_width
        streamed = len(log["stream"])
        if read:
            dut.rd__ready.value = int(streamed >= total or rng.random() >= stall)
        else:
            if not presenting and streamed < total:
                presenting = rng.random() >= stall
            dut.wr__valid.value = int(presenting)
            if presenting:
                dut.wr__payload.value = words[streamed]
        await ReadOnly()
        monitor.sample(cycle)
        if not read and len(log["stream"]) > streamed:
            presenting = False
        drain -= bool(log["done"]) and len(log["cmd"]) == len(commands)
        await RisingEdge(dut.clk)
        cycle += 1
    if not read:
        log["ram"] = [ram.read(address, beats * data_width // 8).hex()
                      for address, beats in commands]
    log["busy"] = [log["busy"][0], log["busy"][-1], len(log["busy"])] if log["busy"] else []
    return log


@cocotb.test()
async def axi_bench(dut):
    """The cases of $DNNHW_AXI_BENCH in order on one RAM; their logs to ..._RESULT."""
    with open(os.environ["DNNHW_AXI_BENCH"]) as f:
        cfg = json.load(f)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for port in ["rd_cmd__valid", "wr_cmd__valid", "wr__valid", "rd__ready"]:
        getattr(dut, port).value = 0
    dut.rst.value = 1
    ram = (AxiRam if cfg["ram"] == "AxiRam" else LatencyAxiRam)(
        AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=RAM_BYTES)
    ram.write(0, ram_fill())
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    logs = {}
    for case in cfg["cases"]:
        logs[case["name"]] = await _run_case(dut, ram, case, cfg["address_width"],
                                             cfg["data_width"])
    with open(os.environ["DNNHW_AXI_BENCH_RESULT"], "w") as f:
        json.dump(logs, f)


# -- pytest side --------------------------------------------------------------------------------


def run_bench(bench, name, cases, ram="LatencyAxiRam"):
    """Build `bench` (cached) and play `cases` on it in one cocotb run on a `ram`
    ("LatencyAxiRam" or "AxiRam"): {case name: log}."""
    runner, build_dir = verilate(bench, name)
    for case in cases:
        case.setdefault("timeout", 400 + 40 * sum(beats for _, beats in case["commands"]))
    return run_json_test(runner, build_dir, name, __name__, "DNNHW_AXI_BENCH", {
        "address_width": bench.reader.address_width, "data_width": bench.reader.data_width,
        "ram": ram, "cases": cases})


def bench_of(max_burst=16, outstanding=4, data_width=DATA_WIDTH, id_width=0):
    return MemoryBench(
        AxiReader(ADDRESS_WIDTH, data_width, max_burst=max_burst, outstanding=outstanding,
                  id_width=id_width),
        AxiWriter(ADDRESS_WIDTH, data_width, max_burst=max_burst, outstanding=outstanding,
                  id_width=id_width))


def case(name, op, commands, seed=0, **extra):
    return {"name": name, "op": op, "commands": [list(c) for c in commands], "seed": seed,
            **extra}


HALF, QUARTER = [1, 2], [1, 4]
LONG = 512
# every transfer starts a few beats before a 4 KB boundary or has a length that is not a
# multiple of the burst length; reads from the low half of the RAM, writes to the high half
# (read back at the end)
TIMED = [
    case("read_full", "read", [(0x0FE8, 300)]),
    case("read_half", "read", [(0x1FE8, 300)], r_pause=HALF),
    case("read_quarter", "read", [(0x2FF0, 300)], r_pause=QUARTER),
    case("read_latency", "read", [(0x5FE8, LONG)], read_latency=24),
    case("write_full", "write", [(0x8FE8, 300)], seed=1),
    case("write_half", "write", [(0x9FE8, 300)], seed=2, w_pause=HALF),
    case("write_quarter", "write", [(0xAFF0, 300)], seed=3, w_pause=QUARTER),
    case("write_latency", "write", [(0xDFE8, LONG)], seed=4, write_latency=24),
]
STALLED = [   # back-to-back commands, random stalls on our side, pauses on theirs
    case("read_stalls", "read", [(0x3FF8, 37), (0x4200, 5), (0x4FD0, 200)], seed=5,
         stall=0.5, r_pause=[2, 3]),
    case("write_stalls", "write", [(0xBFF8, 37), (0xC200, 5), (0xCFD0, 200)], seed=6,
         stall=0.5, w_pause=[2, 3], b_pause=[1, 3]),
    case("read_back", "read", [(0x8FE8, 300), (0xBFF8, 37), (0xCFD0, 200)], seed=7, stall=0.2),
    # AWREADY low for the first 12 cycles: W must not wait for it (the RAM queues 2 W beats)
    case("write_aw_held", "write", [(0xEFF0, 40)], seed=8, aw_hold=12),
]
CASES = TIMED + STALLED


def timed(name):
    return next(c for c in TIMED if c["name"] == name)


@pytest.fixture(scope="module")
def logs():
    """Every case of `CASES` on the default bench (16-beat bursts, 4 outstanding)."""
    return run_bench(bench_of(), "axi_bench_b16_o4", [dict(c) for c in CASES])


def expected(cases, data_width=DATA_WIDTH):
    """{read case: the words it must read}, {write case: the bytes the RAM must then hold}, as
    the cases run in order on the filled RAM."""
    image, size = bytearray(ram_fill()), data_width // 8
    reads, writes = {}, {}
    for c in cases:
        if c["op"] == "read":
            reads[c["name"]] = [int.from_bytes(image[a + k * size:a + (k + 1) * size], "little")
                                for a, beats in c["commands"] for k in range(beats)]
        else:
            words = iter(write_words(c["seed"], sum(b for _, b in c["commands"]), data_width))
            writes[c["name"]] = []
            for a, beats in c["commands"]:
                data = b"".join(next(words).to_bytes(size, "little") for _ in range(beats))
                image[a:a + len(data)] = data
                writes[c["name"]].append(data.hex())
    return reads, writes


def check_transfers(cases, logs, max_burst, data_width=DATA_WIDTH):
    """Data bit-exact, bursts as `timing.bursts` makes them (INCR, full size, at most
    `max_burst` beats, none across 4 KB), last flags on the bursts' last beats, VALID held,
    R never stalled, full WSTRB, `busy` from the first command to `done`, one `done`."""
    reads, writes = expected(cases, data_width)
    for c in cases:
        log, name = logs[c["name"]], c["name"]
        if c["op"] == "read":
            assert log["words"] == reads[name], name
            assert log["r_stalled"] == 0, name
        else:
            assert log["ram"] == writes[name], name
            assert log["strobes"] and len(log["responses"]) == len(log["bursts"]), name
        want = [b for a, beats in c["commands"]
                for b in timing.bursts(a, beats, data_width, max_burst)]
        size = (data_width // 8).bit_length() - 1
        assert [(a, length + 1) for _, a, length, _, _ in log["bursts"]] == want, name
        assert all((s, kind) == (size, 1) for *_, s, kind in log["bursts"]), name
        assert all(a % 4096 + beats * data_width // 8 <= 4096 and beats <= max_burst
                   for a, beats in want), name
        lasts = [k for k, (_, last) in enumerate(log["beats"]) if last]
        assert lasts == [n - 1 for n in itertools.accumulate(b for _, b in want)], name
        assert len(log["beats"]) == sum(b for _, b in want), name
        assert log["held"], name
        assert len(log["done"]) == 1, name
        first, last, count = log["busy"]
        assert (first, last, count) == (log["cmd"][0] + 1, log["done"][0] - 1,
                                        log["done"][0] - log["cmd"][0] - 1), name


def test_transfers_bit_exact_and_bursts_legal(logs):
    check_transfers(CASES, logs, max_burst=16)
    log = logs["write_aw_held"]
    assert log["beats"][1][0] < log["bursts"][0][0]


def measured_cycles(c, log):
    """Command handshake to the last beat on `o` (reads) or to `done` (writes)."""
    end = log["stream"][-1] if c["op"] == "read" else log["done"][0]
    return end - log["cmd"][0]


def model_cycles(c, outstanding, max_burst=16, data_width=DATA_WIDTH):
    (address, beats), = c["commands"]
    pattern = c.get("r_pause") or c.get("w_pause") or [1, 1]
    if c["op"] == "read":
        return timing.read_cycles(address, beats, data_width, max_burst=max_burst,
                                  outstanding=outstanding, bandwidth=pattern[0] / pattern[1],
                                  latency=AXIRAM_LATENCY + c.get("read_latency", 0))
    return timing.write_cycles(address, beats, data_width, max_burst=max_burst,
                               outstanding=outstanding, bandwidth=pattern[0] / pattern[1],
                               latency=AXIRAM_LATENCY + c.get("write_latency", 0))


def model_rate(c, outstanding, max_burst=16):
    pattern = c.get("r_pause") or c.get("w_pause") or [1, 1]
    if c["op"] == "read":
        return timing.read_rate(max_burst=max_burst, outstanding=outstanding,
                                bandwidth=pattern[0] / pattern[1],
                                latency=AXIRAM_LATENCY + c.get("read_latency", 0))
    return timing.write_rate(max_burst=max_burst, outstanding=outstanding,
                             bandwidth=pattern[0] / pattern[1],
                             latency=AXIRAM_LATENCY + c.get("write_latency", 0))


def steady_rate(log):
    """Beats per cycle on R or W from the first beat of the third burst to the first beat of
    the last (past the start, before the short last burst)."""
    lengths = [length + 1 for _, _, length, _, _ in log["bursts"]]
    firsts = [0, *itertools.accumulate(lengths)]
    return sum(lengths[2:-1]) / (log["beats"][firsts[-2]][0] - log["beats"][firsts[2]][0])


def within_tolerance(got, want):
    return abs(got - want) <= max(TOLERANCE[0] * want, TOLERANCE[1])


@pytest.mark.parametrize("name", [c["name"] for c in TIMED])
def test_cycles_match_model(logs, name):
    """Full, half and quarter bandwidth, and 24 cycles of added latency that 4 outstanding
    bursts hide: the cycles of the whole transfer as `timing.read_cycles` / `write_cycles`
    say, the steady-state rate as `read_rate` / `write_rate` say (within `TOLERANCE`)."""
    c = timed(name)
    got, want = measured_cycles(c, logs[name]), model_cycles(c, outstanding=4)
    assert within_tolerance(got, want), (got, want)
    rate, want_rate = steady_rate(logs[name]), model_rate(c, outstanding=4)
    assert abs(rate - want_rate) <= TOLERANCE[0] * want_rate, (rate, want_rate)


def test_one_outstanding_request_pays_the_latency():
    """One outstanding burst: every burst waits the whole round trip, as the model says
    (0.36 beats per cycle with 24 added cycles instead of 1). Under a k-of-n pause pattern
    each burst then starts on an idle channel and may wait up to n − k cycles for a data
    cycle, which the model leaves out (see `timing`): the measured cycles lie between the
    model's and the model's plus n − k per burst."""
    cases = [dict(c) for c in TIMED]
    logs = run_bench(bench_of(outstanding=1), "axi_bench_b16_o1", cases)
    check_transfers(cases, logs, max_burst=16)
    for c in cases:
        log = logs[c["name"]]
        got, want = measured_cycles(c, log), model_cycles(c, outstanding=1)
        k, n = c.get("r_pause") or c.get("w_pause") or [1, 1]
        if k == n:
            assert within_tolerance(got, want), (c["name"], got, want)
            rate, want_rate = steady_rate(log), model_rate(c, outstanding=1)
            assert abs(rate - want_rate) <= TOLERANCE[0] * want_rate, (rate, want_rate)
        else:
            assert want - TOLERANCE[1] <= got <= want + (n - k) * len(log["bursts"]), (
                c["name"], got, want)
    slow = timed("read_latency")
    assert model_rate(slow, outstanding=1) < 0.37 and model_rate(slow, outstanding=4) == 1


def test_latency_wrapper_at_zero_is_axiram(logs):
    """`LatencyAxiRam` with no added latency moves data cycle for cycle as plain `AxiRam`
    does. (It takes every AR and AW at once, where `AxiRam` holds ARREADY/AWREADY low with
    two requests queued, so the AR/AW cycles themselves may differ.)"""
    cases = [dict(c) for c in TIMED if c["name"] in ("read_full", "write_full")]
    plain = run_bench(bench_of(), "axi_bench_b16_o4", cases, ram="AxiRam")
    for c in cases:
        ours, theirs = logs[c["name"]], plain[c["name"]]
        for key in ("beats", "stream", "done", "responses"):
            shift = ours["cmd"][0] - theirs["cmd"][0]
            assert [e[0] if isinstance(e, list) else e for e in ours[key]] == [
                (e[0] if isinstance(e, list) else e) + shift for e in theirs[key]], key


def random_cases(seed, data_width, max_burst):
    """Reads (low half of the RAM) and writes (high half) of random commands, each a few
    beats before a 4 KB boundary, under random stalls and pause patterns; then a read of
    everything written. Plus a full-rate read and write of one command, and the same with 24
    cycles of added latency, for the cycle model."""
    rng, size = random.Random(seed), data_width // 8

    def commands(base, count):
        out, cursor = [], base
        for _ in range(count):
            address = (cursor // 4096 + 1) * 4096 - size * rng.randint(0, 5)
            beats = rng.randint(1, min(700, 3000 // size))
            out.append((address, beats))
            cursor = address + beats * size + size * rng.randint(1, 40)
        assert cursor <= base + RAM_BYTES // 2
        return out

    def pattern():
        n = rng.choice([1, 2, 3, 4])
        return [rng.randint(1, n), n]

    reads, writes = commands(0, 5), commands(RAM_BYTES // 2, 5)
    cases = [case(f"read_{k}", "read", [c], seed=k, stall=rng.random() * 0.6, r_pause=pattern())
             for k, c in enumerate(reads)]
    cases += [case(f"write_{k}", "write", [c], seed=10 + k, stall=rng.random() * 0.6,
                   w_pause=pattern(), b_pause=pattern()) for k, c in enumerate(writes)]
    cases.append(case("read_back", "read", writes, seed=20, stall=0.3))
    long_read, long_write = max(reads, key=lambda c: c[1]), max(writes, key=lambda c: c[1])
    timed = [case("timed_read", "read", [long_read]),
             case("timed_write", "write", [long_write], seed=30),
             case("timed_read_latency", "read", [long_read], read_latency=24),
             case("timed_write_latency", "write", [long_write], seed=31, write_latency=24)]
    return cases, timed


@pytest.mark.slow
@pytest.mark.parametrize("data_width, max_burst, outstanding, id_width", [
    (32, 256, 2, 0), (128, 8, 3, 1), (64, 256, 8, 0), (8, 16, 4, 0), (1024, 256, 2, 0)])
def test_parameter_sweep(data_width, max_burst, outstanding, id_width):
    """Other widths, burst lengths, outstanding counts and an ID: random transfers bit-exact
    with legal bursts, and full-rate transfers in the model's cycles."""
    cases, timed = random_cases(data_width + max_burst, data_width, max_burst)
    name = f"axi_bench_{data_width}_b{max_burst}_o{outstanding}_id{id_width}"
    logs = run_bench(bench_of(max_burst, outstanding, data_width, id_width), name,
                     [dict(c) for c in cases + timed])
    check_transfers(cases + timed, logs, max_burst, data_width)
    for c in timed:
        got = measured_cycles(c, logs[c["name"]])
        want = model_cycles(c, outstanding, max_burst, data_width)
        assert within_tolerance(got, want), (c["name"], got, want)
