"""The stream harness (dnnhw/sim): the stall model, and the producer and consumer coroutines in
amaranth.sim and in cocotb + Verilator, which for one design and seed make the same transfers."""

import numpy as np
import pytest
from amaranth import Module, Signal, signed
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from dnnhw.layers.fifo import StreamFIFO
from dnnhw.layers.fork import Fork
from dnnhw.sim import run_stream_bench
from dnnhw.sim.runner import readmem
from dnnhw.sim.amaranth_sim import run_stream_sim
from dnnhw.sim.stalls import Stalls


def draws(stalls, n=2000):
    return [stalls() for _ in range(n)]


def test_stalls_seeded_per_port():
    """The same seed and port stall on the same cycles; another port or seed on others."""
    assert draws(Stalls(0.3, 7, "i")) == draws(Stalls(0.3, 7, "i"))
    assert draws(Stalls(0.3, 7, "i")) != draws(Stalls(0.3, 7, "o"))
    assert draws(Stalls(0.3, 7, "i")) != draws(Stalls(0.3, 8, "i"))
    assert abs(np.mean(draws(Stalls(0.3, 7, "i"))) - 0.3) < 0.05
    assert not any(draws(Stalls(0.0, 7, "i")))


def test_stalls_probability_checked():
    with pytest.raises(ValueError, match=r"^stall probability of port 'o' must be in \[0, 1\), got 1$"):
        Stalls(1, 0, "o")


def fork_run(run, stall, **kwargs):
    x = np.random.default_rng(1).integers(-128, 128, (120, 2))
    return x, run(Fork(8, 2, 3), {"i": x}, {f"o{k}": len(x) for k in range(3)},
                  stall_in=stall, stall_out=stall, seed=11, **kwargs)


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_simulators_agree(stall):
    """A three-output fork in both simulators: every beat on every output, and the same cycle
    for every transfer on every port (the build is test_fork.py's)."""
    x, ours = fork_run(run_stream_sim, stall)
    _, theirs = fork_run(run_stream_bench, stall, name="fork_3x2_q8")
    for result in (ours, theirs):
        assert result.extra == {"o0": 0, "o1": 0, "o2": 0}
        for k in range(3):
            np.testing.assert_array_equal(result.outputs[f"o{k}"], x)
    assert (ours.in_cycles, ours.out_cycles, ours.cycles) == (theirs.in_cycles, theirs.out_cycles,
                                                               theirs.cycles)
    if stall:
        assert ours.cycles > len(x) + 20
    else:
        assert ours.in_cycles["i"] == list(range(len(x))) and ours.cycles == len(x)


def test_extra_beats_counted():
    """Beats beyond the expected ones, while the input is still sending or in the drain, count."""
    x = np.arange(10).reshape(10, 1)
    result = run_stream_sim(StreamFIFO(8, 1, 4), {"i": x}, {"o": 6}, stall_in=0.2, stall_out=0.2)
    assert result.extra == {"o": 4}
    np.testing.assert_array_equal(result.outputs["o"], x[:6])


def test_timeout():
    """Waiting for a beat that never comes fails after `timeout` cycles."""
    x = np.arange(5).reshape(5, 1)
    with pytest.raises(AssertionError, match=r"^timeout after 300 cycles: got \{'o': 5\} of \{'o': 6\}"):
        run_stream_sim(StreamFIFO(8, 1, 4), {"i": x}, {"o": 6}, timeout=300)


class _ROMReader(wiring.Component):
    """Streams out every word of a ROM, in address order."""

    def __init__(self, contents, width):
        self._contents = contents
        super().__init__({"o": Out(stream.Signature(signed(width)))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = Memory(shape=self.o.payload.shape(), depth=len(self._contents),
                                        init=self._contents)
        read = rom.read_port(domain="comb")
        address = Signal(range(len(self._contents) + 1))
        m.d.comb += [read.addr.eq(address), self.o.payload.eq(read.data),
                     self.o.valid.eq(address < len(self._contents))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += address.eq(address + 1)
        return m


def test_memory_contents_in_verilator(tmp_path):
    """Initialised memories reach Verilator as $readmemh files (`readmem`), words intact: a
    ROM of random signed words streams out as it was written."""
    words = [int(w) for w in np.random.default_rng(3).integers(-2**11, 2**11, 300)]
    component = _ROMReader(words, 12)
    text = verilog.convert(component, name="rom_300x12", emit_src=False)
    assert "$readmemh" in readmem(text, tmp_path)
    result = run_stream_bench(component, {}, {"o": len(words)}, name="rom_300x12", stall_out=0.3)
    np.testing.assert_array_equal(result.outputs["o"][:, 0], words)
