"""Errors the runner reports as one line and an exit code (the catalog CLI maps them to its own)."""


class RunnerError(Exception):
    """A run could not start or finish for a reason the user can act on. Exit code 1."""

    exit_code = 1


class RunnerUsageError(RunnerError):
    """The command was called wrongly (unknown name, bad ``--set``, unavailable device). Exit code 2."""

    exit_code = 2


class UnknownReproduction(RunnerUsageError):
    """No reproduction has that name; the message lists the known ones."""
