"""The one exception type for bad user input.

Library code raises `UserError` with a single line that names the problem and the fix;
the CLI prints it and exits with status 2.
"""


import math


class UserError(Exception):
    """Bad input from the user: a one-line message saying what is wrong and how to fix it."""


class StopAndResume(Exception):
    """Ctrl-C or SIGTERM arrived during a run: the state after the last whole step is saved for
    `--resume`. `signal`: the signal's number (the CLI exits with 128 + it, as a shell does)."""

    def __init__(self, message: str, signal: int = 2):
        super().__init__(message)
        self.signal = signal


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite: the run stops and saves no model."""


def check_number(flag: str, value: float, low: float, inclusive: bool = True, high: float | None = None) -> None:
    """Refuse a numeric flag that is not finite, below `low` (or equal, unless `inclusive`) or at least `high`."""
    if not math.isfinite(value) or value < low or (value == low and not inclusive) or \
            (high is not None and value >= high):
        bound = f"in {'[' if inclusive else '('}{low}, {high})" if high is not None else (f"at least {low}" if inclusive
                                                                 else f"greater than {low}")
        raise UserError(f"--{flag} {value} is out of range; it must be a finite number {bound}")


def check_memory(flag: str, images: int, channels: int, size: int) -> None:
    """Refuse a batch whose float32 pixels alone would not fit in this machine's memory (the model's
    activations need many times more), with the estimate, rather than trying it."""
    import os

    needed = images * channels * size * size * 4
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return
    if needed > total:
        raise UserError(f"{flag} needs over {needed / 2 ** 30:,.0f} GiB for the pixels of one batch alone "
                        f"({images} images of {channels}x{size}x{size}); this machine has {total / 2 ** 30:.0f} GiB. "
                        "Use a smaller batch or image size")
