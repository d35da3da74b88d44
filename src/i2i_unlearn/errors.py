"""The one exception type for bad user input.

Library code raises `UserError` with a single line that names the problem and the fix;
the CLI prints it and exits with status 2.
"""


class UserError(Exception):
    """Bad input from the user: a one-line message saying what is wrong and how to fix it."""
