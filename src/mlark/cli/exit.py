"""Exit statuses of the mlark command, one named enum (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1  # an unexpected error: a bug, reported with its traceback
    USAGE = 2  # bad input: a name, path, ref, option or message mlark refuses
    NOT_FOUND = 3  # no such artifact, version, alias or file
    NOT_A_REPOSITORY = 4  # no .mlark/ here or above
    UNSUPPORTED_FORMAT = 5  # the repository was written by a format this mlark does not understand
    CONFLICT = 6  # the request contradicts what is stored (e.g. removing a version an alias holds)
    INTEGRITY = 7  # stored bytes do not match their digests; fsck found problems
    STORAGE = 8  # the disk or database could not be read or written
    DIFFERS = 9  # status/diff --exit-code: the two sides differ
    MISSING_DEPENDENCY = 10  # an optional library the command needs is not installed (the message says what to install)
    INTERRUPTED = 130  # stopped by Ctrl-C


def status_for(exc: BaseException) -> ExitStatus:
    from mlark import errors

    if isinstance(exc, errors.MlarkError) and isinstance(exc, ImportError):
        return ExitStatus.MISSING_DEPENDENCY
    table: list[tuple[type[BaseException], ExitStatus]] = [
        (errors.NotARepository, ExitStatus.NOT_A_REPOSITORY),
        (errors.InvalidInput, ExitStatus.USAGE),
        (errors.NotFound, ExitStatus.NOT_FOUND),
        (errors.UnsupportedFormat, ExitStatus.UNSUPPORTED_FORMAT),
        (errors.Conflict, ExitStatus.CONFLICT),
        (errors.IntegrityError, ExitStatus.INTEGRITY),
        (errors.StorageError, ExitStatus.STORAGE),
    ]
    for kind, status in table:
        if isinstance(exc, kind):
            return status
    return ExitStatus.FAILURE
