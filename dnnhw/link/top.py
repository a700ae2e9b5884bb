"""The accelerator behind a serial line, and a board top level around it.

`UartAccelerator` wires UART receiver → `RequestReceiver` → lane packing → `Accelerator` →
lane unpacking → `ResponseSender` → UART transmitter (`dnnhw.link.protocol` states the protocol).
`BoardTop` puts it on a board's UART pins, clocked by the board's oscillator or a PLL on it.

The baud rate follows the clock by `dnnhw.link.baud.baud_for`.
"""

import math

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..layers.lanes import LaneConverter
from .baud import BAUD_RATES, MAX_RATE_ERROR, MIN_OVERSAMPLING, baud_for, rate_error
from .pll import PLL, PLL_FAMILIES, plan
from .protocol import RequestReceiver, ResponseSender
from .uart import UARTReceiver, UARTTransmitter


__all__ = ["BAUD_RATES", "MIN_OVERSAMPLING", "MAX_RATE_ERROR", "baud_for", "board_clock",
           "board_link", "UartAccelerator", "BoardTop"]

def board_clock(board, clock_mhz=None):
    """(Hz, `pll.PLLPlan` or None) of `BoardTop` on `board`: its oscillator, or for another
    `clock_mhz` the nearest frequency its PLL (MMCM on 7-series) makes."""
    oscillator = board.platform_class()().default_clk_frequency
    if clock_mhz is None or board.family not in PLL_FAMILIES or abs(
            clock_mhz * 1e6 - oscillator) < 1:
        return oscillator, None
    setting = plan(board.family, oscillator, clock_mhz * 1e6)
    return setting.f_out, setting


def board_link(board, clock_mhz=None):
    """(clock_hz, baud) of `BoardTop` on `board` at `clock_mhz` (`board_clock`): its clock
    and `baud_for` of it.

    Raises
    ------
    UserError
        If the board's host link is not a UART, or amaranth-boards has no platform for it.
    """
    if board.host_link != "uart":
        raise UserError(f"board '{board.name}' talks to its host over {board.host_link}, not a UART")
    clock_hz, _ = board_clock(board, clock_mhz)
    return clock_hz, baud_for(clock_hz)


class UartAccelerator(wiring.Component):
    """An `Accelerator` served over a serial line with the protocol of `dnnhw.link.protocol`.

    The request's payload is buffered (a memory of one input frame), checked, then fed to the
    accelerator one value per cycle, packed `input_lanes` to a beat; output beats are unpacked
    and sent as the UART takes them. The serial line sets the pace: a frame takes about
    10 · D · (N + M + 13) cycles (N, M payload bytes, D the divisor) plus the accelerator's
    latency.

    Parameters
    ----------
    accel : accel.Accelerator or cascade_accel.CascadeAccelerator
    clock_hz : float
        The clock frequency.
    baud : int
        The bit rate; clock_hz / baud is rounded to the divisor.
    timeout : float
        Seconds a request may pause between two bytes before the device abandons it.

    Members
    -------
    rx : In(1)
        Serial data from the host.
    tx : Out(1)
        Serial data to the host (high when idle).

    Raises
    ------
    ValueError
        If clock_hz / divisor is more than `MAX_RATE_ERROR` off `baud`, the divisor is below
        `uart.MIN_DIVISOR`, a tensor has more than 16 bits, or a frame takes more than 65535
        bytes.
    """

    def __init__(self, accel, clock_hz, baud, *, timeout=0.1):
        self.divisor, error = rate_error(clock_hz, baud)
        if error > MAX_RATE_ERROR:
            raise ValueError(f"UartAccelerator: {baud} baud at {clock_hz / 1e6:g} MHz needs a divisor "
                             f"of {clock_hz / baud:.2f}; {self.divisor} is {error:.1%} off (at most "
                             f"{MAX_RATE_ERROR:.1%})")
        self.accel, self.clock_hz, self.baud = accel, clock_hz, baud
        shape_in, shape_out, bits_in, bits_out = (accel.in_shape, accel.out_shape, accel.in_bits,
                                                  accel.out_bits)
        self.uart_rx, self.uart_tx = UARTReceiver(self.divisor), UARTTransmitter(self.divisor)
        self.request = RequestReceiver(shape_in.size, bits_in, max(1, math.ceil(timeout * clock_hz)))
        self.response = ResponseSender(shape_out.size, bits_out)
        self.pack = LaneConverter(shape_in.c, bits_in, 1, accel.input_lanes)
        self.unpack = LaneConverter(shape_out.c, bits_out, accel.output_lanes, 1)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx, m.submodules.uart_tx = self.uart_rx, self.uart_tx
        m.submodules.request, m.submodules.response = self.request, self.response
        m.submodules.pack, m.submodules.unpack = self.pack, self.unpack
        m.submodules.accel = self.accel
        m.d.comb += [self.uart_rx.rx.eq(self.rx), self.tx.eq(self.uart_tx.tx),
                     self.request.done.eq(self.response.done)]
        wiring.connect(m, self.uart_rx.o, self.request.i)
        wiring.connect(m, self.request.o, self.pack.i)
        wiring.connect(m, self.pack.o, self.accel.i)
        wiring.connect(m, self.accel.o, self.unpack.i)
        wiring.connect(m, self.unpack.o, self.response.i)
        wiring.connect(m, self.request.status, self.response.status)
        wiring.connect(m, self.response.o, self.uart_tx.i)
        return m


class BoardTop(wiring.Component):
    """`UartAccelerator` on a board: the platform's `uart` pins, clocked at `clock_mhz`.

    At the board's oscillator (`clock_mhz` None or equal) the `sync` domain is the platform's
    own, made from its default clock with its reset (`create_missing_domain`); otherwise a PLL
    makes it from the oscillator (`pll.PLL`, at the nearest frequency it can: `clock_hz`).
    `baud` is the rate `board_link` picks for `clock_hz`.
    Use it as ``board.platform_class()().build(BoardTop(accel, board))`` (or `prepare`).

    Raises
    ------
    UserError
        If the board's host link is not a UART, or (at elaboration) its platform has no `uart`
        resource.
    ValueError
        At elaboration, if the platform's default clock is not the board's oscillator.
    """

    def __init__(self, accel, board, *, clock_mhz=None, timeout=0.1):
        self.board = board
        self.clock_hz, self.baud = board_link(board, clock_mhz)
        self.pll = board_clock(board, clock_mhz)[1]
        self.link = UartAccelerator(accel, self.clock_hz, self.baud, timeout=timeout)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        if self.pll is not None:
            if self.pll.f_in != platform.default_clk_frequency:
                raise ValueError(f"BoardTop: its PLL takes a {self.pll.f_in / 1e6:g} MHz clock, "
                                 f"the platform's is {platform.default_clk_frequency / 1e6:g} MHz")
            pad = platform.request(platform.default_clk, dir="-" if self.board.family == "ice40"
                                   else "i")
            m.domains.sync = ClockDomain("sync")
            m.submodules.pll = PLL(self.pll, pad.io if self.board.family == "ice40" else pad.i)
        elif platform.default_clk_frequency != self.clock_hz:
            raise ValueError(f"BoardTop: built for a {self.clock_hz / 1e6:g} MHz clock, the platform's "
                             f"is {platform.default_clk_frequency / 1e6:g} MHz")
        try:
            uart = platform.request("uart", 0, dir="-")
        except ResourceError:
            raise UserError(f"board '{self.board.name}': amaranth-boards' {type(platform).__name__} "
                            "has no 'uart' resource; add one with platform.add_resources("
                            "[UARTResource(0, rx=..., tx=..., conn=...)]) for a USB-UART cable")
        m.submodules.link = self.link
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [self.link.rx.eq(rx.i), tx.o.eq(self.link.tx)]
        return m
