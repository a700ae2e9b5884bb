# amaranth: UnusedElaboratable=no
"""The UART host link: the protocol in pure Python, the protocol gateware in amaranth.sim (an
echo device, every status, 8- and 12-bit values), the UART and the accelerator behind it on a
simulated serial line in cocotb + Verilator (bit-exact against golden, errors answered and the
link resynchronised), the baud rule, board tops, and `host.run` against a stand-in device."""

import functools
import gc
import io
import json
import warnings

import numpy as np
import pytest
from amaranth.hdl import Module, UnusedElaboratable, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dnnhw import golden, host, record
from dnnhw.accel import Accelerator
from dnnhw.boards import get_board
from dnnhw.errors import UserError
from dnnhw.host import LinkError, decode_response, encode_request, read_response
from dnnhw.ir import Shape
from dnnhw.layers.fifo import StreamFIFO
from dnnhw.link.protocol import SYNC, RequestReceiver, ResponseSender, Status, crc16
from dnnhw.link.serial_bench import run_serial_bench
from dnnhw.link.top import BoardTop, UartAccelerator, baud_for
from dnnhw.link.uart import UARTReceiver, UARTTransmitter
from dnnhw.model import Folding
from dnnhw.sim import from_beats, to_beats
from dnnhw.sim.amaranth_sim import collect
from dnnhw.sim.stalls import Stalls
from support.graphs import conv_graph
from support.onnx_models import tiny_network


# -- helpers ------------------------------------------------------------------------------------


def response_bytes(status, values=(), bits=8):
    """A response as the device sends it (the protocol's table, written out independently)."""
    payload = np.asarray(values, np.int64).astype(np.int8 if bits <= 8 else "<i2").tobytes()
    body = bytes([status]) + len(payload).to_bytes(2, "little") + payload
    return bytes(SYNC) + body + crc16(body).to_bytes(2, "big")


def split_responses(data, bits):
    """Every response in `data`, in order."""
    buffer = io.BytesIO(bytes(data))
    responses = []
    while buffer.tell() < len(data):
        responses.append(read_response(buffer.read, bits))
    return responses


def statuses(responses):
    return [r.status for r in responses]


def random_values(rng, count, bits):
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), count)


def noise(rng, count):
    """Random bytes without a sync byte, so that they cannot start a request."""
    return bytes(int(b) for b in rng.choice([b for b in range(256) if b != SYNC[0]], count))


# -- the protocol in Python ---------------------------------------------------------------------


def test_crc16_is_ibm_3740():
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF
    request = encode_request([3, -4, 5], 8)
    assert crc16(request[2:]) == 0          # the check the device does


def test_encode_request_layout():
    assert encode_request([1, -1, 127, -128], 8) == bytes(
        [0xA5, 0x5A, 4, 0, 0x01, 0xFF, 0x7F, 0x80]) + crc16(bytes([4, 0, 1, 0xFF, 0x7F, 0x80])).to_bytes(2, "big")
    twelve = encode_request([-2048, 2047, -1], 12)
    assert twelve[2:10] == bytes([6, 0, 0x00, 0xF8, 0xFF, 0x07, 0xFF, 0xFF])
    assert len(encode_request(np.zeros((3, 2, 2), int), 4)) == 4 + 12 + 2


@pytest.mark.parametrize("bits", [2, 8, 12, 16])
def test_response_round_trip(bits):
    rng = np.random.default_rng(bits)
    values = random_values(rng, 50, bits)
    response = decode_response(response_bytes(Status.OK, values, bits), bits)
    assert response.status is Status.OK
    np.testing.assert_array_equal(response.values, values)
    error = decode_response(response_bytes(Status.BAD_CHECKSUM), bits)
    assert error.status is Status.BAD_CHECKSUM and error.values.size == 0


def test_flipped_bit_detected():
    """Every single-bit error in a response is caught by the host, in a request by the device's
    CRC check."""
    good = response_bytes(Status.OK, [5, -7, 0, -1, 100], 8)
    for position in range(len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[position] ^= 1 << bit
            with pytest.raises(LinkError):
                decode_response(bytes(bad), 8)
    request = encode_request([0, -1, 0, -1, 64], 8)
    for position in range(2, len(request)):
        for bit in range(8):
            bad = bytearray(request)
            bad[position] ^= 1 << bit
            assert crc16(bytes(bad[2:])) != 0


def test_decode_errors():
    good = response_bytes(Status.OK, [1, 2, 3], 8)
    with pytest.raises(LinkError) as info:
        decode_response(b"", 8)
    assert str(info.value) == ("no response from the device (check the port, the baud rate and "
                               "that the board is programmed)")
    with pytest.raises(LinkError) as info:
        decode_response(good[:-3], 8)
    assert str(info.value) == ("the device's response stopped in its payload (2 of 3 bytes came "
                               "before the timeout)")
    with pytest.raises(LinkError) as info:
        decode_response(good + b"\x00", 8)
    assert str(info.value) == "1 bytes follow the device's response"
    with pytest.raises(LinkError) as info:
        decode_response(b"\x5a" + good[1:], 8)
    assert str(info.value) == "the device's response starts with 5a 5a, not the sync bytes a5 5a"
    with pytest.raises(LinkError) as info:
        decode_response(response_bytes(Status.OK, [1, 2, 3], 8), 12)
    assert str(info.value) == "the device's response carries 3 bytes, not whole 12-bit values"


def test_encode_request_errors():
    with pytest.raises(ValueError) as info:
        encode_request([0, 8], 4)
    assert str(info.value) == "values 0..8 do not fit in 4 signed bits (-8..7)"
    with pytest.raises(ValueError) as info:
        encode_request([0], 17)
    assert str(info.value) == "the UART protocol carries values of 1 to 16 bits, got 17"
    with pytest.raises(ValueError) as info:
        encode_request(np.zeros(40000, int), 12)
    assert str(info.value) == "a request carries at most 65535 bytes, this one 80000"


# -- the protocol gateware in amaranth.sim: an echo device ----------------------------------------


class Echo(wiring.Component):
    """`RequestReceiver` → `ResponseSender` on byte streams: a good frame's values come back."""

    def __init__(self, count, bits, timeout):
        self.request = RequestReceiver(count, bits, timeout)
        self.response = ResponseSender(count, bits)
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.request, m.submodules.response = self.request, self.response
        wiring.connect(m, wiring.flipped(self.i), self.request.i)
        wiring.connect(m, self.request.o, self.response.i)
        wiring.connect(m, self.request.status, self.response.status)
        wiring.connect(m, self.response.o, wiring.flipped(self.o))
        m.d.comb += self.request.done.eq(self.response.done)
        return m


def echo_sim(dut, segments, expect, stall=0.3, seed=0):
    """Send `segments` ((wait for this many bytes back, gap in cycles, bytes)) into `dut` one
    byte per cycle, take its `expect` bytes under random ready stalls (`dnnhw.sim.amaranth_sim.
    collect`); returns them, after checking that no byte more comes."""
    got, sent, extra = [], [], []

    async def host(ctx):
        for wait_rx, gap, data in segments:
            while len(got) < wait_rx:
                await ctx.tick()
            for _ in range(gap):
                await ctx.tick()
            for byte in data:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, byte)
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
        sent.append(True)
        for _ in range(20 * expect + 200):
            if extra:
                return
            await ctx.tick()
        raise AssertionError(f"{len(got)} of {expect} bytes came back")

    async def device(ctx):
        extra.append(await collect(ctx, dut.o, expect, Stalls(stall, seed, "o"), got, [],
                                   lambda: bool(sent), drain=16))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(device)
    sim.run()
    assert extra == [0]
    return bytes(got)


@pytest.mark.parametrize("bits", [8, 12])
def test_echo_frames_and_errors(bits):
    """Good frames come back whole; a wrong length, a bad checksum, garbage, a stalled request
    and a request while the previous answer is still going out are each answered once with
    their status, and the next good request is answered correctly."""
    count, timeout = 6, 60
    rng = np.random.default_rng(bits)
    frames = [random_values(rng, count, bits) for _ in range(7)]
    good = [encode_request(f, bits) for f in frames]
    wrong_length = encode_request(frames[0][:-1], bits)
    bad_crc = bytearray(good[1])
    bad_crc[7] ^= 0x10
    per = 7 + count * (1 if bits <= 8 else 2)       # bytes in an OK response
    segments = [
        (0, 0, good[0]),
        (per, 0, wrong_length),
        (per + 7, 0, good[1]),
        (2 * per + 7, 0, bytes(bad_crc)),
        (2 * per + 14, 0, good[2]),
        (3 * per + 14, 0, noise(rng, 9) + good[3]),         # garbage, then at once a request
        (4 * per + 21, 0, good[4][:5]),                     # stops half-way...
        (4 * per + 21, timeout + 5, good[4]),               # ...and is sent again later
        (5 * per + 28, 0, good[5] + good[6]),               # the second while the first is busy
    ]
    dut = Echo(count, bits, timeout)
    responses = split_responses(echo_sim(dut, segments, 6 * per + 35), bits)
    assert statuses(responses) == [
        Status.OK, Status.BAD_LENGTH, Status.OK, Status.BAD_CHECKSUM, Status.OK, Status.BAD_SYNC,
        Status.OK, Status.TIMEOUT, Status.OK, Status.OK, Status.BUSY]
    oks = [r.values for r in responses if r.status is Status.OK]
    for got, want in zip(oks, frames[:6]):
        np.testing.assert_array_equal(got, want)


# -- the UART -----------------------------------------------------------------------------------


def line(frames, divisor, idle=2):
    """Levels of rx, one per cycle: `idle` bits high, then each (byte, stop bit) as 8N1."""
    bits = [1] * idle
    for byte, stop in frames:
        bits += [0, *((byte >> i) & 1 for i in range(8)), stop]
    return [b for b in bits for _ in range(divisor)] + [1] * (2 * divisor)


def receive_sim(levels, divisor):
    """Drive `levels` into a `UARTReceiver`; returns the bytes it offers (always ready)."""
    dut = UARTReceiver(divisor)
    got = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        for level in levels:
            ctx.set(dut.rx, level)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return got


@pytest.mark.parametrize("divisor", [4, 5, 8])
def test_receiver_rejects_glitches_and_bad_stop_bits(divisor):
    levels = line([(0x3C, 1), (0x55, 0), (0xFF, 1)], divisor, idle=3)
    glitch = [1] * (4 * divisor) + [0] * ((divisor - 1) // 2) + [1] * (4 * divisor)
    # 0x55 ends in a low stop bit (dropped); the line rises at 0xFF's stop bit only, so 0xFF
    # is lost too: the receiver waits for an idle line after a framing error
    assert receive_sim(glitch + levels + line([(0xA7, 1)], divisor), divisor) == [0x3C, 0xA7]


def test_divisor_checked():
    with pytest.raises(ValueError) as info:
        UARTReceiver(3)
    assert str(info.value) == ("UARTReceiver: divisor must be an integer of at least 4 clock "
                               "cycles per bit, got 3")


class Loopback(wiring.Component):
    """UART receiver → FIFO → UART transmitter: every byte received is sent back."""

    def __init__(self, divisor, depth=16):
        self.receiver, self.transmitter = UARTReceiver(divisor), UARTTransmitter(divisor)
        self.queue = StreamFIFO(None, None, depth, layout=unsigned(8))
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver, m.submodules.transmitter = self.receiver, self.transmitter
        m.submodules.queue = self.queue
        m.d.comb += [self.receiver.rx.eq(self.rx), self.tx.eq(self.transmitter.tx)]
        wiring.connect(m, self.receiver.o, self.queue.i)
        wiring.connect(m, self.queue.o, self.transmitter.i)
        return m


@pytest.mark.parametrize("skew", [-0.03, 0.0, 0.03])
def test_uart_round_trip(skew):
    """Every byte value and random bytes, back to back, from a host whose bit rate is off by
    `skew`, come back unchanged; a frame with a low stop bit is dropped; bytes the transmitter
    has queued leave exactly 10 bit times apart."""
    divisor = 8
    rng = np.random.default_rng(7)
    first = [int(b) for b in rng.permutation(256)]
    second = [int(b) for b in rng.integers(0, 256, 64)]
    segments = [{"bytes": first}, {"gap": 30 * divisor, "bytes": [0x42], "stop": 0},
                {"gap": 20 * divisor, "bytes": second}]
    result = run_serial_bench(Loopback(divisor), "uart_loopback", divisor, segments,
                              len(first) + len(second), skew=skew)
    assert result["bytes"] == first + second
    assert result["framing_errors"] == [] and result["extra"] == 0
    gaps = np.diff(result["starts"])[:len(first) - 1]
    if skew <= 0:         # the transmitter always has the next byte: it sends at the full rate
        assert (gaps == 10 * divisor).all()
    else:                 # it waits for the slower host
        assert gaps.min() >= 10 * divisor


# -- the accelerator behind the serial line -----------------------------------------------------

DIVISOR = 8
CLOCK_HZ = 8_000_000
BAUD = CLOCK_HZ // DIVISOR
TIMEOUT_CYCLES = 40 * 10 * DIVISOR


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    return tiny_network(tmp_path_factory.mktemp("tiny"))


def uart_accelerator(graph):
    """The tiny network at 2 input lanes and 3 output lanes (so bytes are packed and unpacked)."""
    conv, fc = graph.layers
    accel = Accelerator(graph, {conv.name: Folding(2, 4, 3), fc.name: Folding(4, 3)})
    assert (accel.input_lanes, accel.output_lanes) == (2, 3)
    return UartAccelerator(accel, CLOCK_HZ, BAUD, timeout=TIMEOUT_CYCLES / CLOCK_HZ)


def frame_values(graph, frame):
    """A float frame as the integers a request carries (stream order), and golden's answer."""
    x = golden.quantize(golden.input_to_chw(graph, frame), graph.formats[graph.input])
    return to_beats(x, 1).ravel(), golden.run_fixed(graph, x)[graph.output]


def ok_bytes(graph):
    return 7 + graph.shapes[graph.output].size


def test_accelerator_over_uart(network):
    """Frames sent as the host encodes them, each after the previous answer: every answer is
    bit-exact against golden."""
    graph, frames = network
    sent = [frame_values(graph, f) for f in frames[:4]]
    per = ok_bytes(graph)
    segments = [{"wait_rx": k * per, "bytes": list(encode_request(x, 8))} for k, (x, _) in enumerate(sent)]
    result = run_serial_bench(uart_accelerator(graph), "uart_accel", DIVISOR, segments,
                              len(sent) * per, skew=0.01)
    assert result["framing_errors"] == [] and result["extra"] == 0
    responses = split_responses(result["bytes"], 8)
    assert statuses(responses) == [Status.OK] * len(sent)
    out_shape = tuple(graph.shapes[graph.output])
    for response, (_, want) in zip(responses, sent):
        np.testing.assert_array_equal(from_beats(response.values, out_shape), want)


def test_accelerator_rejects_bad_requests(network):
    """A wrong length, a bad checksum, garbage before a request and a request that stops
    half-way: each answered with its status, and the next request answered bit-exactly."""
    graph, frames = network
    rng = np.random.default_rng(11)
    sent = [frame_values(graph, f) for f in frames[4:9]]
    good = [list(encode_request(x, 8)) for x, _ in sent]
    wrong_length = list(encode_request(np.concatenate([sent[0][0], [1, 2]]), 8))
    bad_crc = list(good[1])
    bad_crc[20] ^= 0x01
    per = ok_bytes(graph)
    segments = [
        {"bytes": good[0]},
        {"wait_rx": per, "bytes": wrong_length},
        {"wait_rx": per + 7, "bytes": good[1]},
        {"wait_rx": 2 * per + 7, "bytes": bad_crc},
        {"wait_rx": 2 * per + 14, "bytes": good[2]},
        {"wait_rx": 3 * per + 14, "bytes": list(noise(rng, 12)) + good[3]},
        {"wait_rx": 4 * per + 21, "bytes": good[4][:9]},
        {"wait_rx": 4 * per + 21, "gap": TIMEOUT_CYCLES + 200, "bytes": good[4]},
    ]
    result = run_serial_bench(uart_accelerator(graph), "uart_accel", DIVISOR, segments,
                              5 * per + 28, skew=-0.01)
    assert result["framing_errors"] == [] and result["extra"] == 0
    responses = split_responses(result["bytes"], 8)
    assert statuses(responses) == [Status.OK, Status.BAD_LENGTH, Status.OK, Status.BAD_CHECKSUM,
                                   Status.OK, Status.BAD_SYNC, Status.OK, Status.TIMEOUT, Status.OK]
    out_shape = tuple(graph.shapes[graph.output])
    oks = [r for r in responses if r.status is Status.OK]
    for response, (_, want) in zip(oks, sent):
        np.testing.assert_array_equal(from_beats(response.values, out_shape), want)


# -- baud rate and board tops -------------------------------------------------------------------


@pytest.mark.parametrize("clock_hz, baud", [(100e6, 3_000_000), (25e6, 1_000_000),
                                            (12e6, 460_800), (48e6, 3_000_000), (1.8432e6, 115_200)])
def test_baud_for(clock_hz, baud):
    assert baud_for(clock_hz) == baud


def unused_on_purpose(test):
    """For a test that builds blocks only to see their construction or elaboration fail: the
    blocks (reference cycles keep them alive) are collected at its end, without Amaranth's
    warning that they were never elaborated."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            test(*args, **kwargs)
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnusedElaboratable)
                gc.collect()
    return run


@unused_on_purpose
def test_baud_errors(network):
    with pytest.raises(ValueError) as info:
        baud_for(2e6)
    assert str(info.value) == ("no standard baud rate fits a 2 MHz clock with at least 16 cycles "
                               "per bit, within 1.5%")
    with pytest.raises(ValueError) as info:
        UartAccelerator(Accelerator(network[0]), 25e6, 3_000_000)
    assert str(info.value) == ("UartAccelerator: 3000000 baud at 25 MHz needs a divisor of 8.33; 8 "
                               "is 4.2% off (at most 1.5%)")


@pytest.mark.parametrize("board, files, pins", [
    ("arty", "top.xdc", ["LOC A9", "LOC D10"]),
    ("ulx3s-12f", "top.lpf", ['"M1"', '"L4"']),
    ("icebreaker", "top.pcf", [" 6", " 9"]),
])
def test_board_top_prepares(network, board, files, pins):
    """The platform emits the design and its constraints (no vendor tool runs)."""
    board = get_board(board)
    top = BoardTop(Accelerator(network[0]), board)
    plan = board.platform_class()().prepare(top)
    uart = [line_ for line_ in plan.files[files].splitlines() if "uart" in line_]
    assert all(any(pin in line_ for line_ in uart) for pin in pins), uart
    assert top.baud == baud_for(top.clock_hz)


@unused_on_purpose
def test_board_top_errors(network):
    accel = Accelerator(network[0])
    board = get_board("orangecrab-25f")
    with pytest.raises(UserError) as info:
        board.platform_class()().prepare(BoardTop(accel, board))
    assert str(info.value) == (
        "board 'orangecrab-25f': amaranth-boards' OrangeCrabR0_2_25FPlatform has no 'uart' "
        "resource; add one with platform.add_resources([UARTResource(0, rx=..., tx=..., "
        "conn=...)]) for a USB-UART cable")
    with pytest.raises(UserError) as info:
        BoardTop(accel, get_board("pynq-z1"))
    assert str(info.value) == "board 'pynq-z1' talks to its host over axi-stream, not a UART"


# -- the host driver against a stand-in device --------------------------------------------------


class StandIn:
    """A pyserial port with a device behind it that answers as the gateware does (golden
    outputs for good requests); `fail_first` statuses answer the first requests instead."""

    def __init__(self, graph, fail_first=()):
        self.graph, self.fail = graph, list(fail_first)
        self.pending, self.timeout, self.requests = b"", None, 0

    def write(self, data):
        assert data[:2] == bytes(SYNC) and crc16(data[2:]) == 0
        self.requests += 1
        if self.fail:
            self.pending += response_bytes(self.fail.pop(0))
            return
        values = np.frombuffer(data[4:-2], np.int8)
        x = from_beats(values, tuple(self.graph.shapes[self.graph.input]))
        y = golden.run_fixed(self.graph, x)[self.graph.output]
        self.pending += response_bytes(Status.OK, to_beats(y, 1).ravel())

    def read(self, count):
        data, self.pending = self.pending[:count], self.pending[count:]
        return data

    def reset_input_buffer(self):
        self.pending = b""

    def close(self):
        pass


def build_folder(tmp_path, graph):
    """The files of a build folder `host.run` reads."""
    folder = tmp_path / "tiny-arty"
    (folder / "design").mkdir(parents=True)
    (folder / "rtl").mkdir()
    (folder / "report.json").write_text(json.dumps({"board": "arty"}))
    (folder / "design" / "design.json").write_text("{}")
    (folder / "rtl" / "dnnhw_accel.v").write_text("")
    record.write(folder / "design", record.Record(
        source="tiny.onnx", bits=8, calibration=None, float_error={}, graph=graph,
        frames=np.zeros((1, *graph.input_frame_shape)), board="arty", clock_mhz=100.0, search={},
        plan={layer.name: Folding() for layer in graph.layers}))
    return folder


def test_run_matches_golden(network, tmp_path, monkeypatch):
    graph, frames = network
    opened = {}

    def serial_for_url(port, baudrate, timeout):
        opened.update(port=port, baud=baudrate)
        return StandIn(graph)

    monkeypatch.setattr(host.serial, "serial_for_url", serial_for_url)
    np.save(tmp_path / "x.npy", frames[:5])
    out = host.run(build_folder(tmp_path, graph), "/dev/ttyUSB1", tmp_path / "x.npy")
    assert opened == {"port": "/dev/ttyUSB1", "baud": 3_000_000}     # arty: 100 MHz
    assert out.shape == (5, 6)
    np.testing.assert_array_equal(out, golden.run(graph, frames[:5]))


def test_link_resends_after_curable_errors(network, monkeypatch):
    graph, frames = network
    device = StandIn(graph, fail_first=[Status.BAD_CHECKSUM, Status.TIMEOUT])
    monkeypatch.setattr(host.serial, "serial_for_url", lambda *a, **k: device)
    x, want = frame_values(graph, frames[0])
    with host.Link("loop://", BAUD, bits_in=8, bits_out=8, settle=0) as link:
        np.testing.assert_array_equal(link.infer(x), to_beats(want, 1).ravel())
    assert device.requests == 3
    device = StandIn(graph, fail_first=[Status.BAD_LENGTH])
    monkeypatch.setattr(host.serial, "serial_for_url", lambda *a, **k: device)
    with host.Link("loop://", BAUD, bits_in=8, bits_out=8, settle=0) as link:
        with pytest.raises(LinkError) as info:
            link.infer(x)
    assert str(info.value) == ("the device answered BAD_LENGTH: the request's frame size is not the "
                               "design's: is the board programmed with this build?")
    assert device.requests == 1


def test_missing_port():
    with pytest.raises(UserError) as info:
        host.Link("/dev/dnnhw-no-such-port", BAUD, bits_in=8, bits_out=8)
    assert str(info.value).startswith("cannot open serial port '/dev/dnnhw-no-such-port': ")


@pytest.mark.slow
def test_twelve_bit_accelerator_over_uart():
    """Two bytes per value both ways, at 16 cycles per bit from a host 1.5% slow."""
    graph, frames = conv_graph(Shape(2, 3, 3), 4, (3, 3), (1, 1), (1, 1, 1, 1), act="relu",
                               bits=12, seed=3)
    divisor = 16
    link = UartAccelerator(Accelerator(graph), divisor * 1_000_000, 1_000_000, timeout=1e-3)
    sent = [frame_values(graph, f) for f in frames[:3]]
    good = [list(encode_request(x, 12)) for x, _ in sent]
    bad_crc = list(good[1])
    bad_crc[-1] ^= 0x80
    per = 7 + 2 * graph.shapes[graph.output].size
    segments = [{"bytes": good[0]}, {"wait_rx": per, "bytes": bad_crc},
                {"wait_rx": per + 7, "bytes": good[1]}, {"wait_rx": 2 * per + 7, "bytes": good[2]}]
    result = run_serial_bench(link, "uart_accel_q12", divisor, segments, 3 * per + 7, skew=0.015)
    responses = split_responses(result["bytes"], 12)
    assert statuses(responses) == [Status.OK, Status.BAD_CHECKSUM, Status.OK, Status.OK]
    oks = [r for r in responses if r.status is Status.OK]
    out_shape = tuple(graph.shapes[graph.output])
    for response, (_, want) in zip(oks, sent):
        np.testing.assert_array_equal(from_beats(response.values, out_shape), want)
