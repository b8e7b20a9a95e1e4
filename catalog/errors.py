"""Errors the CLI turns into one line on stderr and an exit code."""


class DigestError(Exception):
    """A failure the user can act on (bad input, missing file, network). Exit code 1."""

    exit_code = 1


class UsageError(DigestError):
    """The command was called wrongly (unknown name, bad option value). Exit code 2."""

    exit_code = 2
