"""Errors that end a command with a message for the user (exit status 2), not a traceback."""


class UserError(Exception):
    """Bad input or a request dnnhw cannot carry out: the message says what and where."""
