"""Errors that the CLI turns into one line and exit code 2 (bad input)."""


class InputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""


def did_you_mean(name: str, choices: "list[str] | tuple[str, ...] | set[str]") -> str:
    """``" did you mean 'x'?"`` for the nearest of ``choices`` (difflib), or ``""`` when none is near."""
    import difflib

    close = difflib.get_close_matches(str(name), sorted(map(str, choices)), n=1, cutoff=0.6)
    return f" did you mean {close[0]!r}?" if close else ""
class StoreError(InputError):
    """The store at a path cannot be used (damaged, foreign, not a database): one line naming
    the file and how to inspect it."""
