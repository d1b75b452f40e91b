"""User-facing errors: one line naming the file, key or value at fault and what was expected."""


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with status 2."""


def listing(names, limit: int = 8) -> str:
    """'a, b, c (+N more)': a short, sorted list of names for a one-line error."""
    names = sorted(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def fit_problems(missing, unexpected, mismatched, limit: int = 8, mismatch_limit: int = 8) -> str:
    """'missing N: ... | unexpected N: ... | shape mismatch N: ...' for the non-empty groups ('' if all fit)."""
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {listing(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {listing(unexpected, limit)}")
    if mismatched:
        problems.append(f"shape mismatch {len(mismatched)}: {'; '.join(mismatched[:mismatch_limit])}")
    return " | ".join(problems)
