"""A UART: serial 8N1 frames ↔ byte streams.

A frame on the line is a start bit (0), eight data bits, least significant first, and a stop bit
(1); the line idles at 1. Both directions run at `divisor` clock cycles per bit.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


__all__ = ["UARTReceiver", "UARTTransmitter", "MIN_DIVISOR"]

#: The smallest divisor the receiver can sample with (it needs a cycle between the start edge
#: and the middle of the start bit).
MIN_DIVISOR = 4


def _check_divisor(block, divisor):
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise ValueError(f"{block}: divisor must be an integer of at least {MIN_DIVISOR} clock "
                         f"cycles per bit, got {divisor!r}")


class UARTReceiver(wiring.Component):
    """Receives 8N1 frames from `rx` and offers each byte on `o`.

    `rx` passes through a two-flop synchroniser (it may change at any time). A falling edge
    starts a frame; the start bit is sampled (divisor − 1) // 2 cycles later, near its middle,
    and the frame is dropped if it is high again (a glitch). The data bits and the stop bit are
    sampled every `divisor` cycles from there. A frame whose stop bit is low (a framing error or
    a break) is dropped, and the receiver waits for the line to go high before it looks for the
    next start bit.

    The sampling point moves by at most one cycle against the start edge, so a sender whose
    bit rate differs from clock / divisor by ε still has its stop bit sampled inside the bit
    while 1/divisor + 9.5·|ε| < 0.5 (`dnnhw.link.baud.baud_for` keeps a wide margin).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least `MIN_DIVISOR`.

    Members
    -------
    rx : In(1)
        The serial line.
    o : Out(stream.Signature(8))
        Received bytes. A byte is offered from the cycle after its stop bit is sampled, about
        9.5 bit times and 3 cycles (2 of them the synchroniser's) after its start edge on `rx`;
        the consumer must take it before the next byte's stop bit is sampled, 10 bit times
        later, or that next byte is dropped (an overrun).

    Raises
    ------
    ValueError
        If `divisor` is not an integer of at least `MIN_DIVISOR`.
    """

    def __init__(self, divisor):
        _check_divisor("UARTReceiver", divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1, stages=2)
        timer = Signal(range(self.divisor))
        bits = Signal(range(8))
        shift = Signal(8)
        tick = timer == 0
        with m.If(~tick):
            m.d.sync += timer.eq(timer - 1)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq((self.divisor - 1) // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(tick & rx):
                    m.next = "IDLE"
                with m.Elif(tick):
                    m.d.sync += [timer.eq(self.divisor - 1), bits.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(tick):
                    m.d.sync += [timer.eq(self.divisor - 1), shift.eq(Cat(shift[1:], rx)),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(tick):
                    with m.If(~rx):
                        m.next = "BREAK"
                    with m.Else():
                        with m.If(~self.o.valid | self.o.ready):
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Sends each byte taken from `i` as an 8N1 frame on `tx`.

    A byte is taken when the line is idle, or in the last cycle of the previous stop bit, so
    bytes offered back to back leave exactly 10·divisor cycles apart: the line's full rate.
    `tx` goes low (the start bit) the cycle after the byte is taken.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least `MIN_DIVISOR`.

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1, init=1)
        The serial line (a registered output, high when idle).

    Raises
    ------
    ValueError
        If `divisor` is not an integer of at least `MIN_DIVISOR`.
    """

    def __init__(self, divisor):
        _check_divisor("UARTTransmitter", divisor)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        left = Signal(range(11))          # bits of the frame still on the line, this one included
        shift = Signal(9)                 # the bits after the one on the line, next lowest
        m.d.comb += self.i.ready.eq((left == 0) | ((left == 1) & (timer == 0)))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.tx.eq(0), shift.eq(Cat(self.i.payload, Const(1, 1))),
                         left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [self.tx.eq(shift[0]), shift.eq(Cat(shift[1:], Const(1, 1))),
                             left.eq(left - 1), timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
