"""An AXI4 burst read master: transfer commands in, a stream of data words out."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, CACHE_NORMAL, AxiSignature
from .bursts import BurstSplitter, check_burst_parameters, command_layout


__all__ = ["AxiReader"]


class AxiReader(wiring.Component):
    """Reads transfers of consecutive beats from an AXI4 slave as INCR bursts and streams the
    words out in address order.

    A command (base byte address, beats) is split into bursts of at most `max_burst` beats
    that never cross a 4 KB boundary (`BurstSplitter`). A burst's AR is issued while fewer
    than `outstanding` bursts await their last R beat and the output queue has room for every
    beat requested and not yet streamed out (the credit check), so R is never stalled:
    RREADY is the queue's write ready, which the credits keep high. The next command is taken
    when the previous one's last burst is issued, so transfers queue back to back.

    Timing: the AR of a command's first burst goes out the cycle after the command is taken;
    ARs follow one per cycle; an R beat reaches `o` 2 cycles after its handshake (the
    `SyncFIFOBuffered`'s latency); an outstanding slot is free again the cycle after a
    burst's RLAST, and each beat's credit the cycle after it leaves `o` (with the default FIFO
    depth the credits bind first: with `o` ready, 3 cycles after RLAST). Rate: one beat per cycle when the memory and the consumer allow, provided
    `outstanding` bursts cover the memory's latency (`timing.read_cycles`). RRESP is not
    checked: an error response's data is streamed like any other.

    Parameters
    ----------
    address_width : int
        Byte address bits, 12 to 64.
    data_width : int
        Bits of a beat (RDATA and `o`), a power of two from 8 to 1024.
    max_burst : int
        Beats of the longest burst: 16 for an AXI3 slave (Zynq HP ports), up to 256 for AXI4.
    outstanding : int
        Bursts that may await data at once.
    fifo_depth : int, optional
        Beats the output queue holds, at least `max_burst`; `outstanding · max_burst` if not
        given. A consumer slower than the memory fills it and the credits then pace the ARs.
    id_width : int
        ARID and RID bits; ARID is always 0 (one ID, so R arrives in order).

    Members
    -------
    cmd : In(stream.Signature(command_layout(address_width, data_width)))
        `address` (aligned to a beat; the low bits are ignored) and `beats`.
    o : Out(stream.Signature(data_width))
        The words read, in order.
    m_axi : Out(AxiSignature(address_width, data_width, id_width, write=False))
    busy : Out(1)
        Commands taken whose beats have not all left `o`.
    done : Out(1)
        One-cycle pulse in the cycle after the last such beat leaves `o` (a command of 0
        beats does nothing and gives no pulse).

    Raises
    ------
    ValueError
        If a width, `max_burst`, `outstanding` or `fifo_depth` is out of range.
    """

    def __init__(self, address_width, data_width, *, max_burst=16, outstanding=4,
                 fifo_depth=None, id_width=0):
        check_burst_parameters("AxiReader", address_width, data_width, max_burst, outstanding,
                               id_width)
        fifo_depth = outstanding * max_burst if fifo_depth is None else fifo_depth
        if fifo_depth < max_burst:
            raise ValueError(f"AxiReader: FIFO depth {fifo_depth} is less than the burst "
                             f"length {max_burst}")
        self.address_width, self.data_width = address_width, data_width
        self.max_burst, self.outstanding, self.fifo_depth = max_burst, outstanding, fifo_depth
        super().__init__({
            "cmd": In(stream.Signature(command_layout(address_width, data_width))),
            "o": Out(stream.Signature(data_width)),
            "m_axi": Out(AxiSignature(address_width, data_width, id_width, write=False)),
            "busy": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.m_axi
        m.submodules.split = split = BurstSplitter(self.address_width, self.data_width,
                                                   self.max_burst)
        m.submodules.queue = queue = fifo.SyncFIFOBuffered(width=self.data_width,
                                                           depth=self.fifo_depth)
        wiring.connect(m, wiring.flipped(self.cmd), split.i)

        reserved = Signal(range(self.fifo_depth + 1))     # beats requested, not yet out of `o`
        waiting = Signal(range(self.outstanding + 1))     # bursts awaiting their RLAST
        beats = split.o.payload.length + 1
        issue = (reserved + beats <= self.fifo_depth) & (waiting < self.outstanding)
        m.d.comb += [
            axi.araddr.eq(split.o.payload.address), axi.arlen.eq(split.o.payload.length),
            axi.arsize.eq(split.offset), axi.arburst.eq(BURST_INCR),
            axi.arcache.eq(CACHE_NORMAL), axi.arvalid.eq(split.o.valid & issue),
            split.o.ready.eq(axi.arready & issue),
            queue.w_stream.payload.eq(axi.rdata), queue.w_stream.valid.eq(axi.rvalid),
            axi.rready.eq(queue.w_stream.ready),
            self.o.payload.eq(queue.r_stream.payload), self.o.valid.eq(queue.r_stream.valid),
            queue.r_stream.ready.eq(self.o.ready),
        ]
        requested = axi.arvalid & axi.arready
        streamed = self.o.valid & self.o.ready
        m.d.sync += [
            reserved.eq(reserved + Mux(requested, beats, 0) - streamed),
            waiting.eq(waiting + requested - (axi.rvalid & axi.rready & axi.rlast)),
        ]
        self._status(m, streamed)
        return m

    def _status(self, m, streamed):
        """`busy` while beats of the commands taken are still to leave `o`; `done` after."""
        pending = Signal(len(self.cmd.payload.beats) + 1)
        was_busy = Signal()
        taken = self.cmd.valid & self.cmd.ready
        m.d.sync += [pending.eq(pending + Mux(taken, self.cmd.payload.beats, 0) - streamed),
                     was_busy.eq(self.busy)]
        m.d.comb += [self.busy.eq(pending != 0), self.done.eq(was_busy & ~self.busy)]
