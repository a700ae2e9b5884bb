"""The UART's baud rate for a clock (plain Python: the performance model reads it too).

The baud rate rule (`baud_for`): the fastest of `BAUD_RATES` whose divisor
D = round(clock / baud) is at least 16 and whose rate, clock / D, is within 1.5% of the
nominal one. The receiver samples each bit once, near its middle; its sampling point is off by
at most 1/D bit (the start edge is seen to within a cycle) plus 9.5·(rate mismatch) by the stop
bit. With D ≥ 16 and 1.5% from the divisor plus 0.5% from the USB bridge, that is at most
0.0625 + 9.5 × 0.02 = 0.25 bit: half of the half bit either way is left for slow edges and
jitter. At 100 MHz (Arty) that gives 3 Mbaud, at 25 MHz (ULX3S) 1 Mbaud, at 12 MHz
(iCEBreaker) 460800 baud. The FT2232H bridges of Arty and iCEBreaker and the ULX3S's FT231X
all run 3 Mbaud; 115200 works everywhere.
"""


__all__ = ["BAUD_RATES", "MIN_OVERSAMPLING", "MAX_RATE_ERROR", "rate_error", "baud_for",
           "bytes_per_s"]

#: Standard rates USB-UART bridges (FTDI FT2232H, FT231X; pyserial on Linux) support, fastest first.
BAUD_RATES = (3_000_000, 2_000_000, 1_500_000, 1_000_000, 921_600, 460_800, 230_400, 115_200)

#: The smallest divisor (clock cycles per bit) `baud_for` picks.
MIN_OVERSAMPLING = 16

#: The largest relative difference between clock / divisor and the nominal rate.
MAX_RATE_ERROR = 0.015


def rate_error(clock_hz, baud):
    """(divisor, relative error of clock_hz / divisor from `baud`): the UART's nearest divisor."""
    divisor = round(clock_hz / baud)
    return divisor, abs(clock_hz / (divisor * baud) - 1)


def baud_for(clock_hz):
    """The fastest reliable standard baud rate at `clock_hz` (the module docstring's rule).

    Raises
    ------
    ValueError
        If no standard rate fits (a clock below 1.8432 MHz = 16 × 115200 Hz, or one a little
        above it that no divisor matches closely enough).
    """
    for baud in BAUD_RATES:
        divisor, error = rate_error(clock_hz, baud)
        if divisor >= MIN_OVERSAMPLING and error <= MAX_RATE_ERROR:
            return baud
    raise ValueError(f"no standard baud rate fits a {clock_hz / 1e6:g} MHz clock with at least "
                     f"{MIN_OVERSAMPLING} cycles per bit, within {MAX_RATE_ERROR:.1%}")


def bytes_per_s(baud):
    """Payload bytes per second one direction of a UART at `baud` carries: 10 bits per byte
    (start, 8 data, stop)."""
    return baud / 10
