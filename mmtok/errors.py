"""User-facing errors.

Anything a user can cause (a bad file, the wrong tokenizer, an out-of-range id) raises
`MmtokError` with one line that names the file and says what to do. The CLI prints that
line and exits non-zero; Python callers can catch it.
"""


class MmtokError(Exception):
    """An error caused by the user's input, carrying a one-line, actionable message."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


def first_line(err: BaseException, limit: int = 200, typed: bool = False) -> str:
    """The first line of a third-party exception's message (or its type), for one-line errors;
    `typed`: prefixed with the exception's type ("OSError: ..."), where the type says more
    than the message (hub and file errors from transformers)."""
    text = str(err).strip()
    line = (text.splitlines()[0].strip() if text else type(err).__name__)[:limit]
    return f"{type(err).__name__}: {line}" if typed and text else line
