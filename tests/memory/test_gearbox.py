"""`WordsToLanes` and `LanesToWords` in amaranth.sim: frames in `layout`'s memory layout to
beats and back, under random stalls on both sides, at full rate on the narrower side, and no
path from one side's ready to the other's."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module, Value, signed
from amaranth.sim import Simulator

from dnnhw.memory import layout
from dnnhw.memory.gearbox import LanesToWords, WordsToLanes
from dnnhw.sim.amaranth_sim import PERIOD, collect, drive
from dnnhw.sim.stalls import Stalls
from dnnhw.sim.streams import pack, unpack


# blocks whose constructor raised are never elaborated
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

BATCH = 3
# (data_width, bits, lanes, frame_elements): lanes narrower and wider than a word, dividing
# it or not, frames that end mid-word, 8-, 12- and 16-bit elements
CASES = [
    (64, 8, 1, 27), (64, 8, 3, 36), (64, 8, 8, 40), (64, 8, 16, 48), (64, 8, 24, 72),
    (64, 16, 2, 18), (64, 16, 8, 24), (64, 16, 3, 21), (32, 12, 3, 15), (128, 8, 6, 18),
]


def frames_of(bits, elements, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), size=(BATCH, elements))


def words_of(data, data_width):
    size = data_width // 8
    return [int.from_bytes(data[k:k + size], "little") for k in range(0, len(data), size)]


def run(dut, words, count, stall, seed=1):
    """`words` (integers) into `dut.i`, `count` words out of `dut.o`, random stalls `stall` on
    both sides: (words out, cycles of the input transfers, cycles of the output ones)."""
    got, in_cycles, out_cycles = [], [], []
    top = Module()
    top.domains.sync = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(PERIOD)

    async def producer(ctx):
        await drive(ctx, dut.i, words, Stalls(stall, seed, "i"), in_cycles)

    async def consumer(ctx):
        extra = await collect(ctx, dut.o, count, Stalls(stall, seed, "o"), got, out_cycles,
                              lambda: len(in_cycles) == len(words), drain=8)
        assert extra == 0

    async def watchdog(ctx):
        await ctx.delay((100 + 20 * (len(words) + count)) * PERIOD)
        raise AssertionError(f"timeout: {len(in_cycles)} of {len(words)} in, {len(got)} of "
                             f"{count} out")

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_testbench(watchdog, background=True)
    sim.run()
    return got, in_cycles, out_cycles


@pytest.mark.parametrize("data_width, bits, lanes, elements", CASES)
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_words_to_lanes(data_width, bits, lanes, elements, stall):
    """The frames' words (their padding and the bits above each element filled with noise,
    which the reader ignores) → the frames' elements, `lanes` a beat."""
    frames = frames_of(bits, elements, seed=elements)
    data = bytearray(layout.pack(frames, bits, data_width))
    stride, size = layout.frame_bytes(elements, bits, data_width), layout.element_bytes(bits)
    rng = np.random.default_rng(0)
    for f in range(BATCH):
        data[f * stride + elements * size:(f + 1) * stride] = rng.bytes(
            stride - elements * size)
    if bits % 8:
        for j in range(size - 1, len(data), size):
            data[j] ^= rng.integers(1, 256) << (bits % 8) & 0xFF
    dut = WordsToLanes(data_width, bits, lanes, elements)
    beats = BATCH * elements // lanes
    got, in_cycles, out_cycles = run(dut, words_of(data, data_width), beats, stall)
    shape = signed(bits)
    np.testing.assert_array_equal(np.array([unpack(w, lanes, shape) for w in got]),
                                  frames.reshape(beats, lanes))
    if not stall:
        # full rate on the narrower side: a frame passes in max(words, beats) cycles
        per_frame = max(dut.words, elements // lanes)
        assert out_cycles[-1] - in_cycles[0] <= BATCH * per_frame + 1, (in_cycles, out_cycles)
        # latency 1: the first beat the cycle after the word completing it
        first_word = -(-lanes // dut.per_word) - 1                # the word completing beat 0
        assert out_cycles[0] == in_cycles[first_word] + 1


@pytest.mark.parametrize("data_width, bits, lanes, elements", CASES)
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_lanes_to_words(data_width, bits, lanes, elements, stall):
    """The frames' elements, `lanes` a beat → exactly `layout.pack`'s words (sign-extended
    elements, zero padding)."""
    frames = frames_of(bits, elements, seed=elements + 1)
    dut = LanesToWords(data_width, bits, lanes, elements)
    shape = signed(bits)
    beats = [pack(b, shape) for b in frames.reshape(-1, lanes)]
    want = words_of(layout.pack(frames, bits, data_width), data_width)
    got, in_cycles, out_cycles = run(dut, beats, len(want), stall)
    assert got == want
    if not stall:
        per_frame = max(dut.words, elements // lanes)
        assert out_cycles[-1] - in_cycles[0] <= BATCH * per_frame + 1, (in_cycles, out_cycles)


def test_readies_do_not_depend_on_the_other_side():
    """`i.ready` and `o.valid` are registers' functions: holding the other side's valid or
    ready low or high in the same cycle does not change them."""
    for dut in [WordsToLanes(64, 8, 3, 36), LanesToWords(64, 8, 3, 36)]:
        top = Module()
        top.domains.sync = ClockDomain()
        top.submodules.dut = dut
        sim = Simulator(top)
        sim.add_clock(PERIOD)

        async def testbench(ctx, dut=dut):
            rng = np.random.default_rng(2)
            for _ in range(200):
                ctx.set(dut.i.valid, int(rng.integers(2)))
                ctx.set(Value.cast(dut.i.payload), int(rng.integers(1 << 24)))
                seen = set()
                for ready in (0, 1):
                    ctx.set(dut.o.ready, ready)
                    seen.add(ctx.get(dut.i.ready))
                assert len(seen) == 1
                seen = set()
                for valid in (0, 1):
                    ctx.set(dut.i.valid, valid)
                    seen.add(ctx.get(dut.o.valid))
                assert len(seen) == 1
                ctx.set(dut.o.ready, int(rng.integers(2)))
                ctx.set(dut.i.valid, int(rng.integers(2)))
                await ctx.tick()

        sim.add_testbench(testbench)
        sim.run()


@pytest.mark.parametrize("block", [WordsToLanes, LanesToWords])
@pytest.mark.parametrize("args, message", [
    ((64, 8, 0, 12), "lanes must be at least 1, got 0"),
    ((64, 8, 5, 12), "lanes=5 must divide the frame's 12 elements"),
    ((64, 8, 4, 0), "lanes=4 must divide the frame's 0 elements"),
    ((8, 16, 1, 4), "16-bit elements take 2 bytes, which do not divide 8-bit words"),
    ((48, 8, 1, 4), "data width 48 is not a power of two from 8 to 1024 bits"),
])
def test_errors(block, args, message):
    with pytest.raises(ValueError) as error:
        block(*args)
    assert str(error.value) == f"{block.__name__}: {message}"
