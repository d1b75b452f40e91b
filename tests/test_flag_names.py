"""Library messages name parameters, the CLI spells them as flags (errors.param / errors.render, cli/flags.py)."""

import ast
import pathlib
import re

import pytest

import mindface_au
from mindface_au.cli.flags import FLAG_NAMES
from mindface_au.errors import UserError, param, parameter_names

PACKAGE = pathlib.Path(mindface_au.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
LOG_CALLS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}


def _library_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] != "cli":
            yield path


def _messages(tree):
    """The expressions a module raises, prints or logs."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            yield node.exc
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "print" or name in LOG_CALLS:
                yield node


def _text(node) -> str:
    """A string literal's text, an f-string's with {} for each value."""
    if isinstance(node, ast.Constant):
        return node.value
    return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)


def _flags_named(expr):
    """The `--flag` tokens of the string literals in `expr`, outside `backticked` command lines (a whole command
    line that answers the error names its flags as argv, not as parameters)."""
    for node in ast.walk(expr):
        if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            text = re.sub(r"`[^`]*`", "", _text(node))
            yield from ((node, flag) for flag in FLAG.findall(text))


def test_library_messages_name_no_command_line_flag():
    found = []
    for path in _library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for expr in _messages(tree):
            for node, flag in _flags_named(expr):
                if id(node) not in inner:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {flag}")
    assert not found, "library messages naming flags (use errors.param): " + ", ".join(sorted(set(found)))


def test_every_parameter_a_message_names_has_its_flag_in_the_cli_table():
    named = set()
    for path in _library_modules():
        named |= set(re.findall(r"""\bparam\(["']([\w.]+)["']\)""", path.read_text(encoding="utf-8")))
    assert named, "no errors.param in the library: the scan is broken"
    assert sorted(named - set(FLAG_NAMES)) == []


def test_a_python_user_reads_the_parameter_the_cli_user_the_flag():
    from mindface_au.inference.detect.options import DetectOptions

    with pytest.raises(UserError) as caught:
        DetectOptions(start_time=-1.0)
    assert str(caught.value) == "start_time: got -1.0, expected a finite number of seconds >= 0"
    with parameter_names(FLAG_NAMES):
        assert str(caught.value) == "--start: got -1.0, expected a finite number of seconds >= 0"
    assert str(UserError(f"out.csv: exists; pass {param('overwrite')} to replace")) == (
        "out.csv: exists; pass overwrite to replace"
    )
