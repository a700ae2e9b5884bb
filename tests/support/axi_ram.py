"""cocotbext-axi's `AxiRam` with a pipelined latency added, for benches of AXI4 masters.

`AxiRam` answers one AR at a time and starts its R beats a few cycles after the AR, so a
longer memory latency cannot be had from it by slowing a channel (a pause on AR only delays
the requests; every burst then waits the whole latency, none overlapped). `LatencyAxiRam`
wraps two of its channels: each read request reaches the RAM's read process `read_latency`
cycles after its AR handshake, and each write response leaves `write_latency` cycles after the
RAM produced it. Requests are still taken at once and answered in order, so bursts in flight
overlap their latency as a pipelined DRAM controller's do. Data, bursts and the 4 KB checks
are the RAM's own. `LatencyAxiRamRead` is the read half alone, for a read-only master's port
(give it the other RAM's `mem` to share its contents).
"""

import cocotb
from cocotb.queue import Queue
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiRam
from cocotbext.axi.axi_ram import AxiRamRead


__all__ = ["LatencyAxiRam", "LatencyAxiRamRead"]


class _Cycles:
    """Counts rising edges of `clock`."""

    def __init__(self, clock):
        self.clock, self.now = clock, 0
        cocotb.start_soon(self._count())

    async def _count(self):
        while True:
            await RisingEdge(self.clock)
            self.now += 1

    async def until(self, cycle):
        while self.now < cycle:
            await RisingEdge(self.clock)


class _DelayedSink:
    """A channel sink whose `recv` returns each transaction `latency` cycles after the sink
    took it; the sink itself takes transactions as fast as they come."""

    def __init__(self, sink, cycles, latency):
        self._sink, self._cycles, self.latency = sink, cycles, latency
        self._queue = Queue()
        cocotb.start_soon(self._take())

    async def _take(self):
        while True:
            item = await self._sink.recv()
            self._queue.put_nowait((self._cycles.now + self.latency, item))

    async def recv(self):
        due, item = await self._queue.get()
        await self._cycles.until(due)
        return item

    def __getattr__(self, name):
        return getattr(self._sink, name)


class _DelayedSource:
    """A channel source whose `send` returns at once and whose transactions go out
    `latency` cycles later, in order."""

    def __init__(self, source, cycles, latency):
        self._source, self._cycles, self.latency = source, cycles, latency
        self._queue = Queue()
        cocotb.start_soon(self._give())

    async def send(self, item):
        self._queue.put_nowait((self._cycles.now + self.latency, item))

    async def _give(self):
        while True:
            due, item = await self._queue.get()
            await self._cycles.until(due)
            await self._source.send(item)

    def __getattr__(self, name):
        return getattr(self._source, name)


class LatencyAxiRam(AxiRam):
    """`AxiRam(bus, clock, reset, size=...)` whose reads start `read_latency` cycles and whose
    write responses leave `write_latency` cycles later than the plain RAM's, pipelined. Both
    can be changed between transfers (`ram.read_latency = 20`)."""

    def __init__(self, bus, clock, reset=None, *, read_latency=0, write_latency=0, **kwargs):
        super().__init__(bus, clock, reset, **kwargs)
        cycles = _Cycles(clock)
        self.read_if.ar_channel = _DelayedSink(self.read_if.ar_channel, cycles, read_latency)
        self.write_if.b_channel = _DelayedSource(self.write_if.b_channel, cycles, write_latency)

    @property
    def read_latency(self):
        return self.read_if.ar_channel.latency

    @read_latency.setter
    def read_latency(self, cycles):
        self.read_if.ar_channel.latency = cycles

    @property
    def write_latency(self):
        return self.write_if.b_channel.latency

    @write_latency.setter
    def write_latency(self, cycles):
        self.write_if.b_channel.latency = cycles


class LatencyAxiRamRead(AxiRamRead):
    """`AxiRamRead(bus, clock, reset, size=..., mem=...)` (an `AxiReadBus`) whose reads start
    `read_latency` cycles later than the plain RAM's, pipelined, as `LatencyAxiRam`'s do."""

    def __init__(self, bus, clock, reset=None, *, read_latency=0, **kwargs):
        super().__init__(bus, clock, reset, **kwargs)
        self.ar_channel = _DelayedSink(self.ar_channel, _Cycles(clock), read_latency)

    @property
    def read_latency(self):
        return self.ar_channel.latency

    @read_latency.setter
    def read_latency(self, cycles):
        self.ar_channel.latency = cycles
