"""SIGINT and SIGTERM during a run: finish the chunk, save, write the outputs; twice aborts."""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["Interrupts"]


class Interrupts:
    """The first SIGINT or SIGTERM asks the run to stop after its chunk; a second one exits.

    Python runs signal handlers in the main thread between bytecodes, which a chunk running in
    XLA does not reach, so a watcher thread reads the signals from the wakeup fd that Python's
    C-level handler writes at once: it records the first and ends the process on the second.

    Args:
      enabled: install the handlers (not off the main thread, where Python cannot, nor in a
        multi-process run, whose processes would stop at different chunks and wait forever on
        each other's checkpoint).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: str | None = None

    def __enter__(self) -> Interrupts:
        if not self.enabled:
            return self
        read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, _noop) for signum in self.SIGNALS}
        self._watcher = threading.Thread(target=self._watch, args=(read_fd,), daemon=True)
        self._watcher.start()
        return self

    def _watch(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as signals:
            while byte := signals.read(1):
                if byte == b"\0":  # __exit__'s wake-up: signal numbers start at 1
                    return
                name = signal.Signals(byte[0]).name
                if self.received is None:
                    self.received = name
                    print(
                        f"\njaxnets train: {name}: stopping after this chunk, saving and writing "
                        "the outputs; send it again to abort at once",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    print(f"\njaxnets train: {name} again: aborted", file=sys.stderr, flush=True)
                    os._exit(128 + byte[0])

    def __exit__(self, *exc_info: object) -> None:
        if not self.enabled:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        os.write(self._write_fd, b"\0")
        self._watcher.join()
        os.close(self._write_fd)


def _noop(signum: int, frame: object) -> None:
    """A Python-level handler, so that Python's C handler writes the signal to the wakeup fd."""
