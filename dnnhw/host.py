"""The host side of the UART link: the frame protocol in Python, a pyserial driver, and `run`.

`encode_request`, `read_response` and `decode_response` speak the protocol whose byte layout
`dnnhw.link.protocol` documents (its constants and CRC are shared from there); `Link` sends
frames to a board programmed with `dnnhw.link.top.BoardTop` and reads the answers; `run` does
it for a build folder and a .npy of float frames, as `python -m dnnhw run` does.
"""

import io
import time
from typing import NamedTuple

import numpy as np
import serial

from . import golden, quant
from .boards import get_board
from .errors import UserError
from .link.protocol import MAX_LENGTH, SYNC, Status, crc16, value_bytes
from .link.top import board_link
from .sim.streams import from_beats, to_beats


__all__ = ["LinkError", "Response", "encode_request", "read_response", "decode_response", "Link",
           "run"]

#: Why the device may answer a request with an error, for messages.
_REASONS = {
    Status.BAD_LENGTH: "the request's frame size is not the design's: is the board programmed "
                       "with this build?",
    Status.BAD_CHECKSUM: "the request was corrupted on the serial line",
    Status.BAD_SYNC: "it received stray bytes that were not a request",
    Status.TIMEOUT: "the request stopped half-way",
    Status.BUSY: "it was still answering an earlier frame",
}


class LinkError(UserError):
    """The device answered with an error status, a malformed response, or not at all."""


class Response(NamedTuple):
    status: Status
    values: np.ndarray       # int64; empty unless status is OK


def _dtype(bits):
    return np.dtype(np.int8) if value_bytes(bits) == 1 else np.dtype("<i2")


def encode_request(values, bits):
    """The request carrying `values` (integers of `bits` bits, in stream order).

    Raises
    ------
    ValueError
        If `bits` is not 1..16, a value does not fit in `bits` signed bits, or the payload is
        longer than `MAX_LENGTH` bytes.
    """
    values = np.asarray(values, dtype=np.int64).ravel()
    dtype = _dtype(bits)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values {values.min()}..{values.max()} do not fit in {bits} signed bits "
                         f"({lo}..{hi})")
    payload = values.astype(dtype).tobytes()
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"a request carries at most {MAX_LENGTH} bytes, this one {len(payload)}")
    body = len(payload).to_bytes(2, "little") + payload
    return bytes(SYNC) + body + crc16(body).to_bytes(2, "big")


def _read(read, count, what):
    data = read(count)
    if not data and what == "sync":
        raise LinkError("no response from the device (check the port, the baud rate and that "
                        "the board is programmed)")
    if len(data) < count:
        raise LinkError(f"the device's response stopped in its {what} ({len(data)} of {count} "
                        "bytes came before the timeout)")
    return data


def read_response(read, bits):
    """One response from `read(n)` (returns up to `n` bytes; fewer means a timeout), with
    values of `bits` bits.

    Raises
    ------
    LinkError
        If the response is cut short, does not start with the sync bytes, has an unknown status,
        a payload that is not whole values, or a bad checksum.
    """
    sync = _read(read, 2, "sync")
    if tuple(sync) != SYNC:
        raise LinkError(f"the device's response starts with {sync.hex(' ')}, not the sync bytes "
                        f"{bytes(SYNC).hex(' ')}")
    header = _read(read, 3, "header")
    try:
        status = Status(header[0])
    except ValueError:
        raise LinkError(f"the device's response has an unknown status {header[0]}") from None
    length = int.from_bytes(header[1:], "little")
    payload = _read(read, length, "payload")
    check = int.from_bytes(_read(read, 2, "checksum"), "big")
    if crc16(header + payload) != check:
        raise LinkError("the device's response has a bad checksum (corrupted on the serial line)")
    dtype = _dtype(bits)
    if length % dtype.itemsize:
        raise LinkError(f"the device's response carries {length} bytes, not whole {bits}-bit values")
    return Response(status, np.frombuffer(payload, dtype).astype(np.int64))


def decode_response(data, bits):
    """The response that is all of `data` (bytes); `read_response` says what is checked.

    Raises
    ------
    LinkError
        As `read_response`, and if bytes follow the response.
    """
    stream = io.BytesIO(data)
    response = read_response(stream.read, bits)
    rest = stream.read()
    if rest:
        raise LinkError(f"{len(rest)} bytes follow the device's response")
    return response


class Link:
    """A serial connection to a board serving an accelerator (`dnnhw.link.top.BoardTop`).

    Parameters
    ----------
    port : str
        A serial port (``/dev/ttyUSB1``, ``COM3``) or a pyserial URL.
    baud : int
        The board's baud rate (`dnnhw.link.baud.baud_for` of its clock).
    bits_in, bits_out : int
        Bits of the design's input and output values.
    timeout : float
        Seconds to wait for a response beyond the time its bytes take on the line.
    retries : int
        Requests sent again after an error a resend can cure (all but `BAD_LENGTH`).
    settle : float
        Seconds to wait before a resend, for the device to abandon a broken request (its
        timeout is 0.1 s by default).

    Raises
    ------
    UserError
        If the port cannot be opened.
    """

    def __init__(self, port, baud, *, bits_in, bits_out, timeout=2.0, retries=2, settle=0.3):
        self.baud, self.bits_in, self.bits_out = baud, bits_in, bits_out
        self.timeout, self.retries, self.settle = timeout, retries, settle
        try:
            self.serial = serial.serial_for_url(port, baudrate=baud, timeout=timeout)
        except (serial.SerialException, ValueError) as error:
            raise UserError(f"cannot open serial port '{port}': {error}") from None

    def infer(self, values):
        """The output values (int64, stream order) the device computes for the input `values`.

        Raises
        ------
        LinkError
            If the device does not answer `OK` after `retries` resends.
        """
        request = encode_request(values, self.bits_in)
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.settle)
            self.serial.reset_input_buffer()
            self.serial.write(request)
            try:
                response = read_response(self._reader(len(request)), self.bits_out)
            except LinkError as error:
                failure = error
                continue
            if response.status == Status.OK:
                return response.values
            failure = LinkError(f"the device answered {response.status.name}: "
                                f"{_REASONS[response.status]}")
            if response.status == Status.BAD_LENGTH:
                break
        raise failure

    def _reader(self, sent):
        """`read(n)` whose timeout allows for the bytes in flight at this baud rate."""
        def read(count):
            self.serial.timeout = self.timeout + 20 * (sent + count) / self.baud
            return self.serial.read(count)
        return read

    def close(self):
        self.serial.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(folder, port, inputs_npy, baud=None, *, timeout=2.0):
    """Run the float frames of `inputs_npy` (N, ...ONNX input shape without batch...) on the
    board serving the build in `folder`; returns the outputs as floats, (N, ...ONNX output
    shape without batch...), as `golden.run` gives them.

    Each frame is quantized to the input's format, sent, and its answer dequantized from the
    output's format. `baud` defaults to the rate `BoardTop` chose for the build's board.

    Raises
    ------
    UserError
        If `folder` is not a build, the inputs do not fit the network, the board has no UART
        link, the port cannot be opened, or the device does not answer correctly.
    """
    from .build import load_design        # the compiler's modules: only when a build is read

    report, _, graph = load_design(folder)
    frames = quant.load_frames(graph, inputs_npy)
    if not len(frames):
        raise UserError(f"{inputs_npy}: holds no frames")
    if baud is None:
        _, baud = board_link(get_board(report["board"]), report.get("clock_mhz"))
    fmt_in, fmt_out = graph.formats[graph.input], graph.formats[graph.output]
    shape_out = graph.shapes[graph.output]
    outputs = []
    with Link(port, baud, bits_in=fmt_in.bits, bits_out=fmt_out.bits, timeout=timeout) as link:
        for frame in frames:
            x = golden.quantize(golden.input_to_chw(graph, frame), fmt_in)
            values = link.infer(to_beats(x, 1))
            if values.size != shape_out.size:
                raise LinkError(f"the device answered {values.size} values, the network has "
                                f"{shape_out.size} outputs: is the board programmed with this build?")
            y = golden.dequantize(from_beats(values, tuple(shape_out)), fmt_out)
            outputs.append(golden.output_to_onnx(graph, y))
    return np.stack(outputs)
