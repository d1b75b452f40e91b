"""User-facing errors: one line naming the file, key or value at fault and what was expected."""


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with status 2."""
