"""SIGTERM as an exception, so that stopping a measurement runs in ordinary control flow.

Vertex AI preemption and ``kubectl delete`` send SIGTERM, then SIGKILL after a grace period. The
handler installed here does no measuring and takes no lock: it notes that the signal came and
raises :class:`StepTerminated` (a ``SystemExit`` with code 143) on the main thread, where Python
runs signal handlers. ``with`` blocks unwind and the record is written by ordinary code: a
tracker's ``__exit__``, ``track()``'s ``finally``, or the tracker's ``atexit`` hook when it was
used without ``with``. Because nothing runs inside the handler, no sensor has to be re-entrant.

The rules of :class:`SigtermGuard`:

* It can only be installed on the main thread (Python allows no other). On another thread
  :meth:`~SigtermGuard.install` installs nothing and returns False when SIGTERM has its default
  action there, i.e. when a SIGTERM would end the process without unwinding anything.
* A Python handler that was installed before (the user's checkpoint handler, another tracker's
  guard) is chained to: on SIGTERM it runs instead of the raise. If it exits (``sys.exit``) the
  block unwinds in the same way; if it returns, the work goes on. SIG_IGN is left in place.
* While :meth:`~SigtermGuard.held` (a record being written, a sensor being read on the main
  thread), a SIGTERM is remembered and acted on when the hold ends: no record is written halfway,
  no sensor is left half-updated.
* :meth:`~SigtermGuard.remove` puts the previous handler back when called on the main thread
  (skipping the handlers of guards removed meanwhile, when trackers stop out of order).
  From another thread, where ``signal.signal`` cannot be called, the guard stays installed but
  hands every later SIGTERM to the previous handler, and puts that handler back then.
* In a forked child the guard hands SIGTERM on in the same way: the child is not the process
  whose block it guards.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

#: Exit status of a process ended by :class:`StepTerminated` (128 + 15, as a shell reports it).
SIGTERM_EXIT_CODE = 128 + signal.SIGTERM


class StepTerminated(SystemExit):
    """SIGTERM arrived while measuring: unwinds ``with`` blocks so the record is written; exits
    143 when nothing catches it."""


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class SigtermGuard:
    """Turns SIGTERM into :class:`StepTerminated` on the main thread (see the module docstring).

    Attributes:
        received: a SIGTERM arrived while the guard was installed (in this process).
    """

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = signal.SIG_DFL
        self._installed = False
        self._removed = False
        self._holds = 0  # main thread only: the handler runs there, so no lock is needed
        self._pending = False
        self._pid = os.getpid()  # the process whose block is guarded; set again by install()

    def install(self) -> bool:
        """Install the handler if this is the main thread and SIGTERM is not ignored.

        Returns:
            False when a SIGTERM would end the process without unwinding: called on another
            thread while SIGTERM has its default action. True otherwise.
        """
        current = signal.getsignal(signal.SIGTERM)
        if not _on_main_thread():
            return current not in (signal.SIG_DFL, None)
        if current is signal.SIG_IGN:
            return True
        self._previous = signal.SIG_DFL if current is None else current  # None: set outside Python
        self._pid = os.getpid()
        signal.signal(signal.SIGTERM, self._handle)
        self._installed = True
        return True

    def held(self) -> _Held:
        """A context manager that holds SIGTERM back while its block runs on the main thread (a
        no-op on other threads); a SIGTERM that came meanwhile is acted on when it ends."""
        return _Held(self)

    def remove(self) -> None:
        """Stop guarding (see the module docstring). Idempotent; never raises."""
        if not self._installed or self._removed:
            return
        self._removed = True
        if not _on_main_thread():
            return  # the handler hands later signals on; a held one is handed on by _Held
        if signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self._restorable())
        if self._pending:  # held by a block that raised: deliver it to the previous handler
            self._pending = False
            os.kill(os.getpid(), signal.SIGTERM)

    def _restorable(self) -> Any:
        """The previous handler, skipping guards removed meanwhile (out-of-order stops)."""
        previous = self._previous
        while isinstance(guard := getattr(previous, "__self__", None), SigtermGuard):
            if not guard._removed:
                break
            previous = guard._previous
        return previous

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._removed or os.getpid() != self._pid:
            self._hand_on(signum, frame)
            return
        self.received = True
        if self._holds:
            self._pending = True
            return
        self._act(signum, frame)

    def _act(self, signum: int, frame: FrameType | None) -> None:
        if callable(self._previous):
            self._previous(signum, frame)
            return
        raise StepTerminated(SIGTERM_EXIT_CODE)

    def _hand_on(self, signum: int, frame: FrameType | None) -> None:
        """After removal, or in a forked child: let the previous handler act, and put it back
        if this guard is still the installed handler."""
        installed = signal.getsignal(signal.SIGTERM) == self._handle
        if installed:
            signal.signal(signal.SIGTERM, self._previous)
        if callable(self._previous):
            self._previous(signum, frame)
        elif installed:
            os.kill(os.getpid(), signum)  # the default action, now that it is back
        else:  # a handler installed later chained to this one: unwind, as the default would end
            raise StepTerminated(SIGTERM_EXIT_CODE)

    def _release(self) -> None:
        """End of a hold on the main thread: act on a SIGTERM that came during it."""
        self._holds -= 1
        if self._holds or not self._pending:
            return
        self._pending = False
        if self._removed or os.getpid() != self._pid:
            self._hand_on(signal.SIGTERM, None)
        else:
            self._act(signal.SIGTERM, None)


class _Held:
    """:meth:`SigtermGuard.held`: a class rather than a generator, so entering it is one call."""

    __slots__ = ("_counted", "_guard")

    def __init__(self, guard: SigtermGuard) -> None:
        self._guard = guard
        self._counted = False

    def __enter__(self) -> None:
        if _on_main_thread():
            self._guard._holds += 1
            self._counted = True

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if not self._counted:
            return
        if exc_type is not None:  # do not replace the block's exception; remove() delivers it
            self._guard._holds -= 1
            return
        self._guard._release()
