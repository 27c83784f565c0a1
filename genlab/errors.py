"""Errors that the CLI turns into one line and exit code 2 (bad input)."""


class InputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""
