"""The run sequencer of `MemoryAccelerator`: from START to DONE."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .bursts import command_layout


__all__ = ["RunSequencer"]


class RunSequencer(wiring.Component):
    """Turns a START into the transfer commands of one run and reports when they are done.

    On `start` (ignored while a run is on) it offers, each until taken, the commands
    {`input_address`, `batch` · `input_words`} to the input reader, {`output_address`, `batch`
    · `output_words`} to the output writer and, if `load` is high with `start` and the design
    has a weights reader (`load_beats` > 0), {`weights_address`, `load_beats`} to it. The three
    are offered together, the cycle after `start`. `done` is a one-cycle pulse in the first
    cycle in which every command has been taken and every master's `busy` is low: for the
    writer, the cycle after the last write response. A run with nothing to move (a batch of 0,
    no load) is done 2 cycles after `start`. `batch` · words is truncated to the commands' `beats` field: a batch must
    fit the address space.

    Parameters
    ----------
    address_width, data_width : int
        Of the AXI4 masters (`command_layout`).
    input_words, output_words : int
        Bus words of one input frame, one output frame (`layout.frame_words`).
    load_beats : int
        Bus words of a weight load; 0 for a design without a weights port.

    Members
    -------
    start, load : In(1)
        A run starts; it loads weights first (MODE bit 0), sampled with `start`.
    batch : In(32)
    input_address, output_address, weights_address : In(address_width)
        Byte addresses, aligned to a bus word.
    input, output : Out(stream.Signature(command_layout(address_width, data_width)))
        To the input reader's and the output writer's `cmd`.
    weights : Out(stream.Signature(command_layout(address_width, data_width)))
        To the weights reader's `cmd` (only if `load_beats` > 0).
    input_busy, output_busy : In(1)
        The reader's and writer's `busy`.
    weights_busy : In(1)
        The weights reader's `busy` (only if `load_beats` > 0).
    running : Out(1)
        From the cycle after `start` to the `done` pulse.
    done : Out(1)
    """

    def __init__(self, address_width, data_width, input_words, output_words, load_beats=0):
        self.address_width, self.data_width = address_width, data_width
        self.input_words, self.output_words, self.load_beats = (input_words, output_words,
                                                                load_beats)
        command = stream.Signature(command_layout(address_width, data_width))
        members = {
            "start": In(1), "load": In(1), "batch": In(32),
            "input_address": In(address_width), "output_address": In(address_width),
            "input": Out(command), "output": Out(command),
            "input_busy": In(1), "output_busy": In(1),
            "running": Out(1), "done": Out(1),
        }
        if load_beats:
            members.update({"weights_address": In(address_width), "weights": Out(command),
                            "weights_busy": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        commands = [(self.input, self.input_address, self.input_words, self.input_busy),
                    (self.output, self.output_address, self.output_words, self.output_busy)]
        if self.load_beats:
            commands.append((self.weights, self.weights_address, None, self.weights_busy))
        begin = self.start & ~self.running
        with m.If(begin):
            m.d.sync += self.running.eq(1)
        idle = self.running
        for port, address, words, busy in commands:
            with m.If(port.valid & port.ready):
                m.d.sync += port.valid.eq(0)
            with m.If(begin):
                beats = self.batch * words if words is not None else self.load_beats
                m.d.sync += [port.payload.address.eq(address), port.payload.beats.eq(beats),
                             port.valid.eq(1 if words is not None else self.load)]
            idle &= ~port.valid & ~busy
        m.d.comb += self.done.eq(idle)
        with m.If(self.done):
            m.d.sync += self.running.eq(0)
        return m
