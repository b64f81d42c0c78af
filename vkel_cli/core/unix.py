"""How a vkel process meets the shell around it: Ctrl-C and SIGTERM, a stdout that is full, closed or
whose reader went away, the temporary files of atomic writes, and the user's umask.

- SIGINT / SIGTERM: the main thread gets `Interrupted` (a BaseException, so no stage's `except
  Exception` swallows it) and unwinds, which removes the temporary file beside `-o`. In-flight HTTP
  calls are not waited for: a watchdog thread, woken at the C level by the signal (set_wakeup_fd, so
  even a main thread stuck in a long C call is covered), ends the process after GRACE seconds at most,
  removing the temporary files still registered. Exit 130 (SIGINT) or 143 (SIGTERM), one line.
- stdout: writes go through a guard that turns a broken pipe into `ReaderGone` (quiet exit 0, as
  `vkel ... | head` expects) and any other failure (disk full, closed descriptor) into `OutputFailed`
  (exit 1 with the reason), never an exit 0 with the output lost.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import threading

from .errors import VkelError

GRACE = 1.5  # seconds between a signal and the forced exit
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
MESSAGES = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: unwind (finally blocks remove temporary files) and exit."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.code = EXIT_CODES.get(signum, 128 + signum)
        self.message = f"vkel: {MESSAGES.get(signum, 'killed')} ({signal.Signals(signum).name})"


class ReaderGone(BaseException):
    """The reader of stdout went away (EPIPE): nothing more to do, and nothing went wrong."""


class OutputFailed(VkelError):
    """stdout could not be written (disk full, descriptor closed): the output is incomplete."""


# ------------------------------------------------------------------------------ temporary files

_temporary: set[str] = set()
_temporary_lock = threading.Lock()


def register_temporary(path: str) -> None:
    with _temporary_lock:
        _temporary.add(path)


def forget_temporary(path: str) -> None:
    with _temporary_lock:
        _temporary.discard(path)


def remove_temporaries() -> None:
    with _temporary_lock:
        paths = list(_temporary)
        _temporary.clear()
    for path in paths:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)
        except OSError:
            pass


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str) -> int:
    """The mode a plain `open(path, "w")` would give: the existing file's, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


# ------------------------------------------------------------------------------ stdout


def _failed(err: OSError):
    if err.errno == errno.EPIPE:
        raise ReaderGone() from None
    raise OutputFailed(f"cannot write records: {err.strerror or err}", "<stdout>") from None


class _Closed:
    """What sys.stdout is when descriptor 1 was closed (`vkel ... >&-`)."""

    def _refuse(self, *args, **kwargs):
        raise OutputFailed("stdout is closed: redirect it, or give -o FILE", "<stdout>")

    write = flush = _refuse

    @property
    def buffer(self):
        return self

    def isatty(self) -> bool:
        return False


class _Guarded:
    """A stream proxy whose write/flush failures become ReaderGone or OutputFailed."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, data):
        try:
            return self._stream.write(data)
        except OSError as err:
            _failed(err)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            self._stream.flush()
        except OSError as err:
            _failed(err)

    @property
    def buffer(self):
        return _Guarded(self._stream.buffer)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def guard_stdout() -> object:
    """Put the guard around sys.stdout; returns what to restore."""
    original = sys.stdout
    if original is None:
        sys.stdout = _Closed()
    elif not isinstance(original, (_Guarded, _Closed)):
        sys.stdout = _Guarded(original)
    return original


def silence_stdout() -> None:
    """Point descriptor 1 at /dev/null, so that the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


# ------------------------------------------------------------------------------ signals

_installed = False


def _watchdog(read_fd: int) -> None:
    while True:
        try:
            data = os.read(read_fd, 1)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        signum = data[0]
        if signum not in EXIT_CODES:
            continue
        threading.Event().wait(GRACE)
        # The main thread did not finish unwinding in time (waiting on in-flight calls, a long C call).
        force_exit(Interrupted(signum))


def force_exit(interrupted: Interrupted) -> None:
    """Remove what is half-written, say why in one line, and end the process now (threads included)."""
    remove_temporaries()
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: BLE001 - the output may be the thing that failed
        pass
    try:
        sys.stderr.write(interrupted.message + "\n")
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    os._exit(interrupted.code)


def _on_signal(signum, frame):
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise Interrupted in the main thread and arm the watchdog. A signal that was
    ignored when vkel started (nohup, a background job of a non-interactive shell) stays ignored."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    handled = [s for s in EXIT_CODES if signal.getsignal(s) is not signal.SIG_IGN]
    if not handled:
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watchdog, args=(read_fd,), name="vkel-signals", daemon=True).start()
    for signum in handled:
        signal.signal(signum, _on_signal)
