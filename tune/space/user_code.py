"""The user's code run while a search space is checked (a model factory, a dataset loader):
whatever it prints is kept, not shown, and a failure becomes one line. `--verbose` shows what
was kept (`kept()`): the code's own output and the traceback behind that line."""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Iterator

_kept: list[str] = []


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within: stdout and stderr go to a buffer, kept with the traceback of any exception."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield
    except Exception as e:
        cause = e.__cause__ or e
        out.write("".join(traceback.format_exception(cause)))
        raise
    finally:
        if out.getvalue():
            _kept.append(out.getvalue())


def kept() -> str:
    """What the user's code printed, and the tracebacks of its failures, so far."""
    return "".join(_kept)
