"""Errors that the CLI turns into one line and exit code 2 (bad input)."""


class InputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""


class StoreError(InputError):
    """The store at a path cannot be used (damaged, foreign, not a database): one line naming
    the file and how to inspect it."""
