"""Drive an interactive command in a pseudo-terminal, as a person at a keyboard would.

Used to record the guided-deploy transcripts (docs/deploy-guided-transcript.md): the
command believes it talks to a terminal (click and ``input()`` prompt as they do for a
person), each prompt is answered by ``answer_for(last line)``, and what the screen showed
comes back as text (colours removed, line ends normalised). The standard library's
``pty`` only: no pexpect. POSIX only.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import time
from collections.abc import Callable, Mapping, Sequence

__all__ = ["PROMPT", "converse"]

# A line that waits for an answer: click's "Name [default]: " and "[y/N]: " (SAM), and
# scripts/deploy-guided's "  Name [default]: ". Nothing else ends in "]: ".
PROMPT = re.compile(r"\]: ?$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _clean(raw: bytes) -> str:
    return _ANSI.sub("", raw.decode("utf-8", errors="replace")).replace("\r\n", "\n").replace("\r", "\n")


def converse(
    argv: Sequence[str],
    answer_for: Callable[[str], str | None],
    *,
    env: Mapping[str, str],
    cwd: str,
    stop_at: str | None = None,
    timeout: float = 120.0,
    idle: float = 0.1,
) -> str:
    """Run ``argv``; answer each prompt with ``answer_for(prompt line)`` (None: stop there).

    The answer is typed, then Enter. Returns the screen text up to the command's end, the
    prompt ``answer_for`` declined, the first line holding ``stop_at`` (the command is then
    killed), or ``timeout``.
    """
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command (or ends at once, 127, if it cannot)
        try:
            os.chdir(cwd)
            os.execvpe(argv[0], list(argv), dict(env))
        finally:
            os._exit(127)
    screen = b""
    answered_at = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:  # read while output comes; answer once it pauses
            ready, _, _ = select.select([fd], [], [], idle)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # the command ended (EIO on Linux)
                    break
                if not chunk:
                    break
                screen += chunk
                continue
            pending = _clean(screen[answered_at:])
            if stop_at is not None and stop_at in pending:
                break
            last = pending.rstrip("\n").rsplit("\n", 1)[-1] if pending.strip() else ""
            if not last or not PROMPT.search(last):
                continue
            answer = answer_for(last)
            if answer is None:
                break
            os.write(fd, answer.encode() + b"\r")
            answered_at = len(screen)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
        os.close(fd)
    return _clean(screen)
