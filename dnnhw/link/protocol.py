"""The frame protocol between a host and the accelerator behind a UART: requests in, responses out.

This docstring is the contract the gateware here and the host driver (`dnnhw.host`) share.

Request (host → device)::

    offset   size  field
    0        1     0xA5         sync
    1        1     0x5A         sync
    2        2     N            payload length in bytes, little-endian
    4        N     payload      the input frame's values in stream order
    4 + N    2     CRC          CRC-16 of bytes 2 .. 3 + N, high byte first

Response (device → host)::

    offset   size  field
    0        1     0xA5         sync
    1        1     0x5A         sync
    2        1     status       `Status`: 0 OK, 1 bad length, 2 bad checksum, 3 bad sync,
                                4 timeout, 5 busy
    3        2     M            payload length in bytes, little-endian (0 unless OK)
    5        M     payload      the output frame's values in stream order
    5 + M    2     CRC          CRC-16 of bytes 2 .. 4 + M, high byte first

Values travel in stream order (pixel by pixel, row-major, channels innermost), each as a two's
complement integer of one byte when the tensor has at most 8 bits, else of two bytes,
little-endian (at most 16 bits). So N = (input C·H·W) × bytes per value and M likewise.

The checksum is CRC-16/IBM-3740 (also called CRC-16/CCITT-FALSE: polynomial 0x1021, initial
value 0xFFFF, no reflection, no final XOR; the CRC of b"123456789" is 0x29B1). Sent high byte
first, it makes the CRC of the length, payload and checksum together 0, which is what the device
checks. It is chosen over CRC-8 because frames are hundreds to thousands of bytes, where an
8-bit check misses 1 in 256 corrupted frames; and over Fletcher-16 because Fletcher's sums
modulo 255 cannot tell a byte 0x00 from 0xFF, the two commonest values of quantized activations
(zero and −1). CRC-16 detects every burst of up to 16 flipped bits, any odd number of them,
every error of up to three bits in frames of up to 4093 bytes, and all but 1 in 65536 other
errors. A byte the UART drops or adds shifts everything after it, which the length or the CRC
then catches. In gateware it is 16 flip-flops and an XOR network taking a byte per cycle.

What the device does:

- It looks for the two sync bytes. A byte that is neither a sync nor part of a request is
  garbage; the first garbage byte after a good request (or after reset) gets a `BAD_SYNC`
  response.
- After the length it answers `BAD_LENGTH` if N is not the design's input frame size, and
  `BUSY` if the previous frame's response has not been sent yet: one frame at a time.
- The payload goes into a frame buffer (one input frame); the frame is passed to the
  accelerator only once its CRC is good, else the answer is `BAD_CHECKSUM`.
- A request whose next byte does not come within `timeout` cycles of the one before (from the
  second sync byte on) ends with `TIMEOUT`.
- After an error it discards bytes silently until the next sync (the rest of a rejected
  request, or a run of garbage, gets no responses of its own), then starts afresh.
- At most one status waits while a response is being sent: an error arising while another
  waits gets no response. A host that sends one request at a time and waits for its answer
  never sees this.
- A good frame gets an `OK` response: its header is sent at once, its payload as the
  accelerator produces it.
"""

import functools
import operator

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import enum, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..layers.common import pixel_layout


__all__ = ["SYNC", "Status", "CRC_INIT", "MAX_LENGTH", "crc16", "crc16_step", "value_bytes",
           "RequestReceiver", "ResponseSender"]

#: The two bytes that start every request and response.
SYNC = (0xA5, 0x5A)

#: The largest payload a length field can state.
MAX_LENGTH = 0xFFFF

CRC_INIT = 0xFFFF
_CRC_POLY = 0x1021


class Status(enum.IntEnum, shape=8):
    """The status byte of a response."""
    OK = 0
    BAD_LENGTH = 1
    BAD_CHECKSUM = 2
    BAD_SYNC = 3
    TIMEOUT = 4
    BUSY = 5


def crc16_step(crc, byte):
    """The CRC-16 register `crc` after one more `byte` (the one definition, bit by bit)."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ (_CRC_POLY if crc & 0x8000 else 0)) & 0xFFFF
    return crc


_CRC_TABLE = [crc16_step(0, byte) for byte in range(256)]


def crc16(data, crc=CRC_INIT):
    """CRC-16/IBM-3740 of `data` (bytes), continuing from `crc`."""
    for byte in data:
        crc = _CRC_TABLE[(crc >> 8) ^ byte] ^ ((crc << 8) & 0xFFFF)
    return crc


def value_bytes(bits):
    """Bytes per value on the wire for a `bits`-bit tensor.

    Raises
    ------
    ValueError
        If `bits` is more than 16.
    """
    if not 1 <= bits <= 16:
        raise ValueError(f"the UART protocol carries values of 1 to 16 bits, got {bits}")
    return 1 if bits <= 8 else 2


def _crc16_next(crc, byte):
    """The gateware of `crc16_step`: each next CRC bit is the XOR of the input bits that set it,
    found by running `crc16_step` on each input bit alone (the step is linear over GF(2))."""
    inputs = Cat(crc, byte)
    columns = [crc16_step(1 << i, 0) for i in range(16)] + [crc16_step(0, 1 << i) for i in range(8)]
    return Cat(*(functools.reduce(operator.xor, [inputs[i] for i, col in enumerate(columns)
                                                 if col >> j & 1])
                 for j in range(16)))


def _frame_bytes(count, bits, what):
    length = count * value_bytes(bits)
    if length > MAX_LENGTH:
        raise ValueError(f"the {what} frame of {count} values takes {length} bytes, more than a "
                         f"request's length field can state ({MAX_LENGTH})")
    return length


class RequestReceiver(wiring.Component):
    """Parses requests from a byte stream into a frame buffer; streams good frames out.

    The payload of a request is written into a memory of `count` values as it arrives, while the
    CRC runs. A good frame is then read out on `o`, one value per cycle (first value two cycles
    after the last CRC byte), and an `OK` goes on `status`. Every error of the module docstring
    puts its `Status` on `status` instead. The frame counts as in flight from its CRC until
    `done`; a request arriving meanwhile gets `BUSY`, so the buffer is never overwritten
    while it is read.

    Parameters
    ----------
    count : int
        Values per input frame.
    bits : int
        Bits per value, at most 16.
    timeout : int
        Cycles a request may pause between two bytes after its sync before it is abandoned.

    Members
    -------
    i : In(stream.Signature(8))
        Received bytes. Always ready.
    o : Out(stream.Signature(pixel_layout(bits, 1)))
        The values of each good frame, in the order they came.
    status : Out(stream.Signature(Status))
        One status per request (and per run of garbage). Holds up to two: an error enters it
        only when it is empty (otherwise the error is dropped), an `OK` always.
    done : In(1)
        Strobe: the response to the frame in flight has been sent.

    Raises
    ------
    ValueError
        If `bits` is more than 16 or the frame takes more than `MAX_LENGTH` bytes.
    """

    def __init__(self, count, bits, timeout):
        self.count, self.bits, self.timeout = count, bits, timeout
        self.length = _frame_bytes(count, bits, "input")
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(pixel_layout(bits, 1))),
                          "status": Out(stream.Signature(Status)),
                          "done": In(1)})

    def elaborate(self, platform):
        m = Module()
        byte, got = self.i.payload, self.i.valid
        crc, next_crc = Signal(16), Signal(16)
        index = Signal(range(max(self.length, 2)))   # byte of the field being received
        low = Signal(8)                               # the byte before this one
        quiet, in_flight = Signal(), Signal()
        report, code = self._status_queue(m)
        timed_out = self._idle_timer(m)
        write, feeding = self._frame_buffer(m, index, low)
        m.d.comb += [self.i.ready.eq(1), next_crc.eq(_crc16_next(crc, byte))]
        with m.If(self.done):
            m.d.sync += in_flight.eq(0)

        def reject(status):
            m.d.comb += [report.eq(1), code.eq(status)]
            m.d.sync += quiet.eq(1)
            m.next = "HUNT"

        def garbage():
            with m.If(~quiet):
                reject(Status.BAD_SYNC)
            m.next = "HUNT"

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got & (byte == SYNC[0])):
                    m.next = "SYNC"
                with m.Elif(got):
                    garbage()
            with m.State("SYNC"):
                with m.If(got & (byte == SYNC[1])):
                    m.d.sync += [crc.eq(CRC_INIT), quiet.eq(0), index.eq(0)]
                    m.next = "LENGTH"
                with m.Elif(got & (byte != SYNC[0])):
                    garbage()
            with m.State("LENGTH"):
                with m.If(got):
                    m.d.sync += [crc.eq(next_crc), low.eq(byte), index.eq(1)]
                    with m.If(index == 1):
                        m.d.sync += index.eq(0)
                        with m.If(Cat(low, byte) != self.length):
                            reject(Status.BAD_LENGTH)
                        with m.Elif(in_flight):
                            reject(Status.BUSY)
                        with m.Else():
                            m.next = "PAYLOAD"
                with m.Elif(timed_out):
                    reject(Status.TIMEOUT)
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.sync += [crc.eq(next_crc), low.eq(byte), index.eq(index + 1)]
                    last = index[0] if value_bytes(self.bits) == 2 else 1    # a value's last byte
                    m.d.comb += write.en.eq(last)
                    with m.If(index == self.length - 1):
                        m.d.sync += index.eq(0)
                        m.next = "CHECK"
                with m.Elif(timed_out):
                    reject(Status.TIMEOUT)
            with m.State("CHECK"):
                with m.If(got):
                    m.d.sync += [crc.eq(next_crc), index.eq(1)]
                    with m.If(index == 1):
                        with m.If(next_crc == 0):
                            m.d.comb += [report.eq(1), code.eq(Status.OK)]
                            m.d.sync += [in_flight.eq(1), feeding.eq(1)]
                            m.next = "HUNT"
                        with m.Else():
                            reject(Status.BAD_CHECKSUM)
                with m.Elif(timed_out):
                    reject(Status.TIMEOUT)
        return m

    def _idle_timer(self, m):
        """Counts the cycles since the last received byte; returns a flag set once they reach
        `timeout` (and held until the next byte)."""
        idle = Signal(range(self.timeout + 1))
        with m.If(self.i.valid):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout):
            m.d.sync += idle.eq(idle + 1)
        return idle == self.timeout

    def _frame_buffer(self, m, index, low):
        """The memory of one input frame and its reader (`_feeder`); returns its write port,
        addressed by the payload's byte `index` and carrying the value that ends with the
        received byte (after `low`, for two-byte values), whose `en` the parser sets on a
        value's last byte, and the feeder's flag."""
        m.submodules.buffer = buffer = memory.Memory(shape=unsigned(self.bits), depth=self.count,
                                                     init=[])
        write = buffer.write_port()
        per_value = value_bytes(self.bits)
        m.d.comb += [write.addr.eq(index >> (per_value - 1)),
                     write.data.eq((Cat(low, self.i.payload) if per_value == 2
                                    else self.i.payload)[:self.bits])]
        return write, self._feeder(m, buffer)

    def _status_queue(self, m):
        """The queue behind `status`; returns (report, code): `code` enters it in a cycle where
        `report` is set, an error only when the queue is empty."""
        report, code = Signal(), Signal(Status)
        m.submodules.queue = queue = fifo.SyncFIFO(width=8, depth=2)
        m.d.comb += [queue.w_data.eq(code),
                     queue.w_en.eq(report & ((code == Status.OK) | (queue.level == 0))),
                     self.status.payload.eq(queue.r_data), self.status.valid.eq(queue.r_rdy),
                     queue.r_en.eq(self.status.ready)]
        return report, code

    def _feeder(self, m, buffer):
        """Reads the buffer out on `o` while the returned flag is set: one value per cycle under
        the register handshake, the read port's data register serving as the output register."""
        read = buffer.read_port()
        feeding = Signal()
        m.d.comb += [read.en.eq(~self.o.valid | self.o.ready), self.o.payload[0].eq(read.data)]
        with m.If(read.en):
            m.d.sync += self.o.valid.eq(feeding)
            with m.If(feeding):
                m.d.sync += read.addr.eq(read.addr + 1)
                with m.If(read.addr == self.count - 1):
                    m.d.sync += [feeding.eq(0), read.addr.eq(0)]
        return feeding


class ResponseSender(wiring.Component):
    """Turns each status into a response on the byte stream `o`.

    An error response (header, CRC) follows its status at once. For `OK` the header follows at
    once and the payload as values arrive on `i`, exactly `count` of them, each sign-extended
    to its bytes; then the CRC, and `done` pulses as its last byte is taken. One byte per cycle
    when `o` is ready, so the UART transmitter sets the pace.

    Parameters
    ----------
    count : int
        Values per output frame.
    bits : int
        Bits per value, at most 16.

    Members
    -------
    status : In(stream.Signature(Status))
    i : In(stream.Signature(pixel_layout(bits, 1)))
        Output values in stream order.
    o : Out(stream.Signature(8))
        Response bytes.
    done : Out(1)
        Strobe: the last byte of an `OK` response has been taken.

    Raises
    ------
    ValueError
        If `bits` is more than 16 or the frame takes more than `MAX_LENGTH` bytes.
    """

    def __init__(self, count, bits):
        self.count, self.bits = count, bits
        self.length = _frame_bytes(count, bits, "output")
        super().__init__({"status": In(stream.Signature(Status)),
                          "i": In(stream.Signature(pixel_layout(bits, 1))),
                          "o": Out(stream.Signature(8)),
                          "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        per_value = value_bytes(self.bits)
        code, crc = Signal(Status), Signal(16)
        index = Signal(range(max(self.length, 5)))
        ok = code == Status.OK
        length = Signal(16)
        value = Signal(signed(8 * per_value))
        sent = self.o.valid & self.o.ready
        next_crc = _crc16_next(crc, self.o.payload)
        m.d.comb += [length.eq(Mux(ok, self.length, 0)), value.eq(self.i.payload[0])]
        header = Cat(Const(SYNC[0], 8), Const(SYNC[1], 8), code, length)
        with m.If(sent):
            m.d.sync += index.eq(index + 1)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.status.ready.eq(1)
                with m.If(self.status.valid):
                    m.d.sync += [code.eq(self.status.payload), index.eq(0)]
                    m.next = "HEADER"
            with m.State("HEADER"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(header.word_select(index, 8))]
                with m.If(sent):
                    m.d.sync += crc.eq(Mux(index < 2, CRC_INIT, next_crc))
                    with m.If(index == 4):
                        m.d.sync += index.eq(0)
                        m.next = "PAYLOAD"
                        with m.If(~ok):
                            m.next = "CHECK"
            with m.State("PAYLOAD"):
                last = index[0] if per_value == 2 else 1           # a value's last byte
                m.d.comb += [self.o.valid.eq(self.i.valid),
                             self.o.payload.eq(value.word_select(index[0], 8) if per_value == 2
                                               else value),
                             self.i.ready.eq(self.o.ready & last)]
                with m.If(sent):
                    m.d.sync += crc.eq(next_crc)
                    with m.If(index == self.length - 1):
                        m.d.sync += index.eq(0)
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(Mux(index == 0, crc[8:], crc[:8]))]
                with m.If(sent):
                    with m.If(index == 1):
                        m.d.comb += self.done.eq(ok)
                        m.next = "IDLE"
        return m
