"""An AXI4 burst write master: transfer commands and a stream of data words in."""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import BURST_INCR, CACHE_NORMAL, AxiSignature
from .bursts import BurstSplitter, check_burst_parameters, command_layout


__all__ = ["AxiWriter"]


class AxiWriter(wiring.Component):
    """Writes the words of `i` to an AXI4 slave as INCR bursts, at consecutive addresses from
    each command's base.

    A command (base byte address, beats) is split into bursts of at most `max_burst` beats
    that never cross a 4 KB boundary (`BurstSplitter`). A burst is taken while fewer than
    `outstanding` bursts await their B response, without waiting for its data: its AW goes
    into a register that drives AW, its length into a small queue from which W sends that
    many beats of `i` (WSTRB all ones, WLAST on the last). AWVALID and WVALID thus rise in the
    same cycle and neither waits for the other's READY. `i` is passed to W combinationally:
    WVALID is `i.valid` and `i.ready` is WREADY while a burst's data is due, so a slow
    producer holds W (and the slave's write channel) mid-burst; there is no store-and-forward.
    The next command is taken when the previous one's last burst is. BRESP is not checked.

    Timing: a command's first burst is taken the cycle after the command, and its AW and
    first W beat go out the cycle after that; bursts are taken one per cycle (while AW keeps
    up), W beats go one per cycle; an outstanding slot is free again the cycle after a B
    response. Rate: one beat per cycle when
    the memory and the producer allow, provided `outstanding` bursts cover the slave's write
    response latency (`timing.write_cycles`).

    Parameters
    ----------
    address_width : int
        Byte address bits, 12 to 64.
    data_width : int
        Bits of a beat (WDATA and `i`), a power of two from 8 to 1024.
    max_burst : int
        Beats of the longest burst: 16 for an AXI3 slave (Zynq HP ports), up to 256 for AXI4.
    outstanding : int
        Bursts that may await their B response at once.
    id_width : int
        AWID and BID bits; AWID is always 0.

    Members
    -------
    cmd : In(stream.Signature(command_layout(address_width, data_width)))
        `address` (aligned to a beat; the low bits are ignored) and `beats`.
    i : In(stream.Signature(data_width))
        The words to write, in order.
    m_axi : Out(AxiSignature(address_width, data_width, id_width, read=False))
    busy : Out(1)
        Commands taken whose bursts have not all been answered on B.
    done : Out(1)
        One-cycle pulse in the cycle after the last B response of those commands (a command
        of 0 beats does nothing and gives no pulse).

    Raises
    ------
    ValueError
        If a width, `max_burst` or `outstanding` is out of range.
    """

    def __init__(self, address_width, data_width, *, max_burst=16, outstanding=4, id_width=0):
        check_burst_parameters("AxiWriter", address_width, data_width, max_burst, outstanding,
                               id_width)
        self.address_width, self.data_width = address_width, data_width
        self.max_burst, self.outstanding = max_burst, outstanding
        super().__init__({
            "cmd": In(stream.Signature(command_layout(address_width, data_width))),
            "i": In(stream.Signature(data_width)),
            "m_axi": Out(AxiSignature(address_width, data_width, id_width, read=False)),
            "busy": Out(1), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        axi = self.m_axi
        m.submodules.split = split = BurstSplitter(self.address_width, self.data_width,
                                                   self.max_burst)
        # lengths of the bursts taken whose W has not all gone: at most the bursts awaiting
        # B, so the queue never fills
        m.submodules.lengths = lengths = fifo.SyncFIFO(width=8, depth=self.outstanding)
        wiring.connect(m, wiring.flipped(self.cmd), split.i)

        # a burst is taken from the splitter into the AW register and, at the same time, its
        # length into the queue W reads: AWVALID and WVALID then rise together, neither
        # waiting for the other channel's READY, as AXI requires of a master
        waiting = Signal(range(self.outstanding + 1))     # bursts taken, awaiting B
        take = split.o.valid & split.o.ready
        m.d.comb += [
            split.o.ready.eq((waiting < self.outstanding) & (~axi.awvalid | axi.awready)),
            axi.awsize.eq(split.offset), axi.awburst.eq(BURST_INCR), axi.awcache.eq(CACHE_NORMAL),
            lengths.w_data.eq(split.o.payload.length), lengths.w_en.eq(take),
        ]
        with m.If(take):
            m.d.sync += [axi.awaddr.eq(split.o.payload.address),
                         axi.awlen.eq(split.o.payload.length), axi.awvalid.eq(1)]
        with m.Elif(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        beat = Signal(8)                                  # beat of the burst on W
        m.d.comb += [
            axi.wdata.eq(self.i.payload), axi.wstrb.eq(-1), axi.wlast.eq(beat == lengths.r_data),
            axi.wvalid.eq(self.i.valid & lengths.r_rdy),
            self.i.ready.eq(axi.wready & lengths.r_rdy),
            lengths.r_en.eq(axi.wvalid & axi.wready & axi.wlast),
            axi.bready.eq(1),
        ]
        with m.If(axi.wvalid & axi.wready):
            m.d.sync += beat.eq(beat + 1)
            with m.If(axi.wlast):
                m.d.sync += beat.eq(0)
        m.d.sync += waiting.eq(waiting + lengths.w_en - (axi.bvalid & axi.bready))

        was_busy = Signal()
        m.d.sync += was_busy.eq(self.busy)
        m.d.comb += [self.busy.eq(split.o.valid | (waiting != 0)),
                     self.done.eq(was_busy & ~self.busy)]
        return m
