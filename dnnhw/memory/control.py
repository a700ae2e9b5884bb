"""The AXI4-Lite register file a host runs the accelerator through."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import RESP_OKAY, AxiLiteSignature


__all__ = ["ControlRegisters"]


CONTROL, STATUS, BATCH, BUFFERS = 0x00, 0x04, 0x08, 0x10       # byte offsets
MODE_SHIFT = 8                                                  # CONTROL bit of MODE's LSB


class ControlRegisters(wiring.Component):
    """An AXI4-Lite slave (32-bit data) holding the registers a host writes to run the
    accelerator, and the status it polls.

    Register map (byte offsets; 32-bit registers; unlisted offsets read 0 and ignore writes):

    ======================  ======  ======================================================
    offset                  access  contents
    ======================  ======  ======================================================
    0x00 CONTROL            R/W     bit 0 START: writing 1 starts a run (a one-cycle
                                    `start` pulse); reads 0. Bits 8 to 8 + `mode_bits` − 1
                                    MODE (`mode`), kept until rewritten.
    0x04 STATUS             R       bit 0 BUSY: from START until `done`. Bit 1 DONE: set
                                    by `done`, kept until the next START.
    0x08 BATCH              R/W     `batch`, 32 bits.
    0x10 + s · k            R/W     buffer k's address (`<name>_address`), s = 4 for 32-bit
                                    addresses; s = 8 for 64-bit ones, low word first
                                    (0x10 + 8k bits 31..0, 0x14 + 8k bits 63..32).
    ======================  ======  ======================================================

    With the default buffers ("input", "output", "weights") and 32-bit addresses, these are
    at 0x10, 0x14 and 0x18; with 64-bit ones at 0x10, 0x18 and 0x20. `offsets` has them.
    Writes honour WSTRB byte by byte. Every response is OKAY.

    Timing: AW and W are taken in any order, one of each held at a time; the write happens in
    the first cycle both are held and no B is pending, and its B is offered the cycle after. A read
    answers the cycle after its AR. A write to START gives `start` (and the new MODE) the
    cycle after the write; STATUS shows BUSY from the cycle after `start`.

    Parameters
    ----------
    buffers : sequence of str
        Names of the buffer address registers, in register order.
    address_bits : int
        Bits of a buffer address, 32 or 64.
    mode_bits : int
        Bits of MODE, 0 to 24.
    address_width : int
        AXI4-Lite address bits; the slave decodes these, so its window is 2**address_width
        bytes (4 KB by default).

    Members
    -------
    s_axil : In(AxiLiteSignature(address_width))
    start : Out(1)
        One-cycle pulse: a run starts.
    mode : Out(mode_bits)
    batch : Out(32)
    <name>_address : Out(address_bits)
        One per buffer, e.g. `input_address`.
    busy : Out(1)
        STATUS.BUSY.
    done : In(1)
        A pulse from the design: the run has finished.

    Attributes
    ----------
    offsets : dict
        Register name ("control", "status", "batch", each buffer's name) → byte offset.

    Raises
    ------
    ValueError
        If `address_bits`, `mode_bits` or `address_width` is out of range, or a buffer name is
        not an identifier or is repeated.
    """

    def __init__(self, buffers=("input", "output", "weights"), *, address_bits=32, mode_bits=8,
                 address_width=12):
        if address_bits not in (32, 64):
            raise ValueError(f"ControlRegisters: buffer addresses must be 32 or 64 bits, got "
                             f"{address_bits}")
        if not 0 <= mode_bits <= 32 - MODE_SHIFT:
            raise ValueError(f"ControlRegisters: a MODE of {mode_bits} bits does not fit "
                             f"CONTROL bits {MODE_SHIFT} to 31")
        for k, name in enumerate(buffers):
            if not name.isidentifier():
                raise ValueError(f"ControlRegisters: buffer name {name!r} is not an identifier")
            if name in buffers[:k]:
                raise ValueError(f"ControlRegisters: buffer {name!r} is listed twice")
        self.buffers, self.address_bits, self.mode_bits = tuple(buffers), address_bits, mode_bits
        stride = address_bits // 8
        self.offsets = {"control": CONTROL, "status": STATUS, "batch": BATCH,
                        **{name: BUFFERS + stride * k for k, name in enumerate(buffers)}}
        end = BUFFERS + stride * len(buffers)
        if end > 1 << address_width:
            raise ValueError(f"ControlRegisters: address width {address_width} is too small "
                             f"for the register map's {end:#x} bytes")
        super().__init__({
            "s_axil": In(AxiLiteSignature(address_width)),
            "start": Out(1), "mode": Out(mode_bits), "batch": Out(32),
            **{f"{name}_address": Out(address_bits) for name in buffers},
            "busy": Out(1), "done": In(1),
        })

    def _words(self, finished):
        """[(byte offset, 32-bit read value, the register bits behind it or None)]."""
        words = [(CONTROL, Cat(Const(0, MODE_SHIFT), self.mode), None),
                 (STATUS, Cat(self.busy, finished), None),
                 (BATCH, self.batch, self.batch)]
        for name in self.buffers:
            address = getattr(self, f"{name}_address")
            for half in range(self.address_bits // 32):
                bits = address[32 * half:32 * (half + 1)]
                words.append((self.offsets[name] + 4 * half, bits, bits))
        return words

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil
        finished = Signal()                                       # STATUS.DONE
        words = self._words(finished)
        address, wdata, wstrb, write = self._write_channel(m)
        word = address[2:]

        def merged(old):
            """`old` (32 bits) with the bytes WSTRB selects replaced by WDATA's."""
            old = Cat(old, Const(0, 32 - len(old)))
            return Cat(*(Mux(wstrb[b], wdata[8 * b:8 * b + 8], old[8 * b:8 * b + 8])
                         for b in range(4)))

        for offset, _, bits in words:
            if bits is not None:
                with m.If(write & (word == offset >> 2)):
                    m.d.sync += bits.eq(merged(bits))
        control = write & (word == CONTROL >> 2)
        with m.If(control):
            m.d.sync += self.mode.eq(merged(Cat(Const(0, MODE_SHIFT), self.mode))[MODE_SHIFT:])
        m.d.sync += self.start.eq(control & wstrb[0] & wdata[0])
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), finished.eq(0)]
        with m.Elif(self.done):
            m.d.sync += [self.busy.eq(0), finished.eq(1)]

        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0)]
            for offset, value, _ in words:
                with m.If(bus.araddr[2:] == offset >> 2):
                    m.d.sync += bus.rdata.eq(value)
        m.d.comb += [bus.arready.eq(~bus.rvalid), bus.rresp.eq(RESP_OKAY)]
        return m

    def _write_channel(self, m):
        """Hold one AW and one W; returns (address, data, strobes, "write now")."""
        bus = self.s_axil
        address, wdata, wstrb = Signal.like(bus.awaddr), Signal(32), Signal(4)
        have_address, have_data = Signal(), Signal()
        write = have_address & have_data & ~bus.bvalid
        m.d.comb += [bus.awready.eq(~have_address), bus.wready.eq(~have_data),
                     bus.bresp.eq(RESP_OKAY)]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [address.eq(bus.awaddr), have_address.eq(1)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [wdata.eq(bus.wdata), wstrb.eq(bus.wstrb), have_data.eq(1)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(write):
            m.d.sync += [have_address.eq(0), have_data.eq(0), bus.bvalid.eq(1)]
        return address, wdata, wstrb, write

