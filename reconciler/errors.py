"""Exit codes and the one exception type the command turns into a clean message."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # plan --detailed-exitcode: the plan has changes
EXIT_BLOCKED = 3  # the plan holds a blocked change


class RegistryError(Exception):
    """An error a user can act on: printed as `error: <message>` without a traceback.

    The message must never contain a secret; callers build it from names, not values.
    """

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
