"""What the sandbox starts and stops (the OpenID provider, moto's Cognito, the whole sandbox) as context managers."""
from __future__ import annotations

from typing import Self


class StoppedOnExit:
    """For a class with `start() -> self` and `stop()`. `with thing:` runs `thing.start()` and, on leaving, `thing.stop()`. A start that fails half-way stops what it
    had started before the error goes on, so no child process or port outlives a failed start; `stop()` must
    therefore accept a half-started (or never started) state."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
