"""What the sandbox starts and stops (the OpenID provider, moto's Cognito, the whole sandbox) as context managers."""
from __future__ import annotations

from typing import Any, Callable, Self


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


def run_demo_section(narrator: Any, world: StoppedOnExit, body: Callable[[Any], None], *, step: str,
                     gateway: str) -> None:
    """Start a demo section's own `world`, run `body(world)` and stop it. A world that cannot start is reported as
    the failed expectation `step` (like a gateway that cannot start) and the rest of the demo stands."""
    try:
        world.start()
    except Exception as exc:  # noqa: BLE001 - reported, never raised: the other sections still run
        world.stop()
        narrator.expect(step, gateway, "running", "unavailable", f"{type(exc).__name__}: {exc}")
        return
    try:
        body(world)
    finally:
        world.stop()
