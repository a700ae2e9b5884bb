"""Errors that end a command with a message for the user (exit status 2), not a traceback."""


class UserError(Exception):
    """Bad input or a request dnnhw cannot carry out: the message says what and where."""


class DoesNotFit(UserError):
    """The synthesized design is larger than the device, or nextpnr found no room to place it.

    `used`: the Yosys counts of what was synthesized (a dict with lut, ff, dsp, bram)."""

    def __init__(self, message, used):
        super().__init__(message)
        self.used = used


class StillTooLarge(UserError):
    """Synthesis found the design too large, and every plan made again too.

    `reserve`: the resources the last plan held back for what the model had missed."""

    def __init__(self, message, reserve):
        super().__init__(message)
        self.reserve = reserve
