"""Cycle counts of `AxiReader` and `AxiWriter` transfers: a rate model in plain Python.

The memory is described by three numbers. `bandwidth` is the fraction of cycles it can move a
beat (k of n: R valid, or W ready, k cycles in every n). `latency` is, for reads, the cycles
from an AR handshake to that burst's first R beat when R is otherwise idle, and for writes the
cycles from a burst's last W beat to its B response. The memory is pipelined: it takes
requests while earlier bursts are in flight and answers them in order, so up to `outstanding`
bursts overlap their latency. The blocks' own cycles are the constants below (their
docstrings state them). The model is a max-plus recurrence over the bursts of one command,
the consumer (reads) or producer (writes) always ready:

    read:   ar[j]    = max(ar[j−1] + 1, ISSUE, rlast[j−O] + RETIRE, credit for burst j)
            first[j] = max(ar[j] + latency, rlast[j−1] + 1/bandwidth)
            rlast[j] = first[j] + (beats[j] − 1)/bandwidth
            cycles   = rlast[last] + OUTPUT                  # to the last beat's handshake on `o`

    write:  take[j]  = max(take[j−1] + 1, ISSUE, b[j−O] + RETIRE)    # burst leaves the splitter
            first[j] = max(take[j] + WRITE_DATA, wlast[j−1] + 1/bandwidth)
            wlast[j] = first[j] + (beats[j] − 1)/bandwidth
            b[j]     = max(wlast[j] + latency, b[j−1] + 1)
            cycles   = b[last] + DONE                        # to the `done` pulse

Times count from the command's handshake. The credit for burst j holds its AR until the
output queue has room: the beats requested but not yet out of `o`, plus burst j's, must fit
in `fifo_depth`; with the default depth (outstanding · max_burst) it binds before the
outstanding count does, OUTPUT + 1 cycles after an RLAST instead of RETIRE.

`run_cycles` combines these with an accelerator's own rate and latency into the cycles of a
`MemoryAccelerator` run, from START to DONE.

`bandwidth` is treated as a rate. A memory that gives data in a fixed k-of-n pattern makes
a burst starting on an idle channel wait up to n − k cycles for its first data cycle, which
the model does not count: its error is up to n − k cycles for every burst that does not
follow straight on the previous one (none when the latency is hidden; every burst with one
outstanding request). `read_rate` and `write_rate` give the steady state of long transfers
of full bursts, for the performance model. This module imports nothing from Amaranth.
"""

__all__ = ["PAGE_BYTES", "ISSUE", "OUTPUT", "RETIRE", "WRITE_DATA", "DONE", "START", "GEARBOX",
           "bursts", "read_cycles", "write_cycles", "read_rate", "write_rate", "run_cycles"]


PAGE_BYTES = 4096       # no burst crosses a 4 KB boundary
ISSUE = 1               # command handshake → first AR, or first burst taken (splitter register)
OUTPUT = 2              # R handshake → that beat's handshake on `o` (SyncFIFOBuffered)
RETIRE = 1              # RLAST or B handshake → the freed slot's AR, or burst taken (writes)
WRITE_DATA = 1          # burst taken → its AW and its first W beat (AW register, length queue)
DONE = 1                # last beat out of `o`, or last B → `done`
START = 1               # START pulse → the run's commands taken (`RunSequencer`)
GEARBOX = 1             # a word (beat) taken → its elements on `o` (`WordsToLanes`, `LanesToWords`)


def bursts(address, beats, data_width, max_burst):
    """The bursts `BurstSplitter` makes of a command: [(byte address, beats)], each as long
    as the beats left, `max_burst` and the 4 KB boundary allow."""
    size = data_width // 8
    address -= address % size
    out = []
    while beats:
        length = min(beats, max_burst, (PAGE_BYTES - address % PAGE_BYTES) // size)
        out.append((address, length))
        address, beats = address + length * size, beats - length
    return out


def read_cycles(address, beats, data_width, *, max_burst=16, outstanding=4, fifo_depth=None,
                latency, bandwidth=1.0):
    """Cycles from an `AxiReader` command's handshake to its last beat's handshake on `o`,
    the reader idle before and `o` always ready."""
    fifo_depth = outstanding * max_burst if fifo_depth is None else fifo_depth
    step = 1 / bandwidth
    ar, first, last, beat_times = [], [], [], []          # beat_times: each R beat's cycle
    for j, (_, length) in enumerate(bursts(address, beats, data_width, max_burst)):
        start = max(ar[-1] + 1 if ar else ISSUE,
                    last[j - outstanding] + RETIRE if j >= outstanding else 0)
        freed = len(beat_times) + length - fifo_depth      # beats that must have left `o`
        if freed > 0:
            start = max(start, beat_times[freed - 1] + OUTPUT + 1)
        ar.append(start)
        first.append(max(start + latency, last[-1] + step if last else 0))
        last.append(first[-1] + (length - 1) * step)
        beat_times += [first[-1] + k * step for k in range(length)]
    return last[-1] + OUTPUT if last else 0


def write_cycles(address, beats, data_width, *, max_burst=16, outstanding=4, latency,
                 bandwidth=1.0):
    """Cycles from an `AxiWriter` command's handshake to its `done` pulse, the writer idle
    before and `i` always valid."""
    step = 1 / bandwidth
    take, wlast, b = [], [], []
    for j, (_, length) in enumerate(bursts(address, beats, data_width, max_burst)):
        take.append(max(take[-1] + 1 if take else ISSUE,
                        b[j - outstanding] + RETIRE if j >= outstanding else 0))
        first = max(take[-1] + WRITE_DATA, wlast[-1] + step if wlast else 0)
        wlast.append(first + (length - 1) * step)
        b.append(max(wlast[-1] + latency, b[-1] + 1 if b else 0))
    return b[-1] + DONE if b else 0


def read_rate(*, max_burst=16, outstanding=4, fifo_depth=None, latency, bandwidth=1.0):
    """Beats per cycle of a long `AxiReader` transfer in bursts of `max_burst`: the memory's
    `bandwidth`, unless the outstanding bursts, or the bursts the output queue's credits
    cover, do not span a burst's round trip."""
    fifo_depth = outstanding * max_burst if fifo_depth is None else fifo_depth
    data = latency + (max_burst - 1) / bandwidth       # AR to RLAST of one burst
    return min(bandwidth,
               outstanding * max_burst / (data + RETIRE),
               fifo_depth // max_burst * max_burst / (data + OUTPUT + 1))


def write_rate(*, max_burst=16, outstanding=4, latency, bandwidth=1.0):
    """Beats per cycle of a long `AxiWriter` transfer in bursts of `max_burst`: the memory's
    `bandwidth`, unless the outstanding bursts do not span a burst's round trip (taken to B)."""
    trip = WRITE_DATA + (max_burst - 1) / bandwidth + latency + RETIRE
    return min(bandwidth, outstanding * max_burst / trip)


def run_cycles(batch, *, cycles_per_frame, latency, first_output, input_wait=0,
               input_address, input_words, input_beats, output_address, output_words,
               output_beats, data_width, max_burst=16, outstanding=4, read_latency,
               write_latency, read_bandwidth=1.0, write_bandwidth=1.0):
    """Cycles of a `MemoryAccelerator` run of `batch` ≥ 1 frames, from the START pulse to DONE: the
    slowest of three bounds, each the time the run would take if that stage alone set the
    pace, its fill and drain through the others added.

    - compute: the first input beat reaches the accelerator `lead` = START + ISSUE +
      `read_latency` + OUTPUT + GEARBOX cycles after START; the accelerator waits
      `input_wait` cycles before it takes it (a first window that starts with padding), then
      takes (batch − 1) · `cycles_per_frame` + `latency` cycles to its last output beat; the
      last word then goes on W a GEARBOX later and DONE follows its B by `write_latency` +
      DONE.
    - reads: the input words arrive as `read_cycles` says at `read_bandwidth`; the last
      word's beats leave `WordsToLanes` by GEARBOX + beats per word − 1 later; the
      accelerator's last output follows its last input beat by `latency` − (`input_beats` −
      1), as in its batch-1 timeline; then the write tail as above.
    - writes: the first output word is ready after the accelerator's `first_output` and
      the beats completing it; from its W beat to DONE takes `write_cycles` at
      `write_bandwidth`, less the writer's own start (ISSUE + WRITE_DATA).

    `cycles_per_frame`, `latency` and `first_output` are the accelerator's (`model.network`,
    counted from its first input transfer); `input_beats`, `output_beats` are beats per frame
    of its `i` and `o`, `input_words`, `output_words` bus words per frame. The bounds treat
    the stages as independent: when two run at nearly the same rate, the jitter of one costs
    the other cycles the model does not count (docs/memory.md gives the measured error)."""
    lead = START + ISSUE + read_latency + OUTPUT + GEARBOX
    tail = GEARBOX + write_latency + DONE
    compute = lead + input_wait + (batch - 1) * cycles_per_frame + latency + tail
    beats_per_word = -(-input_beats // input_words)
    read = read_cycles(input_address, batch * input_words, data_width, max_burst=max_burst,
                       outstanding=outstanding, latency=read_latency, bandwidth=read_bandwidth)
    reads = (START + read + GEARBOX + beats_per_word - 1 + latency - (input_beats - 1) + tail)
    write = write_cycles(output_address, batch * output_words, data_width,
                         max_burst=max_burst, outstanding=outstanding, latency=write_latency,
                         bandwidth=write_bandwidth)
    first_word = (lead + input_wait + first_output + -(-output_beats // output_words) - 1
                  + GEARBOX)
    writes = first_word + write - ISSUE - WRITE_DATA
    return max(compute, reads, writes)
