"""`mindface-au` command line: one thin module per subcommand under mindface_au/cli/.

Each subcommand module defines `add_arguments(parser)` and `run(args) -> int` and calls one package
function that Python users can call too. Modules are imported lazily so `--help` stays fast.

Exit codes (docs/errors.md): 0 done, 1 the environment failed (disk full, permissions, encoding), 2 bad input
(a `UserError`), 130 interrupted by SIGINT, 143 by SIGTERM; any other exception is a bug and keeps its traceback.
"""

import argparse
import importlib
import os
import signal
import sys
from typing import List, Optional

from mindface_au.cli.flags import FLAG_NAMES
from mindface_au.errors import UserError, parameter_names
from mindface_au.utils.guard import (
    EnvironmentFailure,
    Interrupted,
    environment_message,
    install_signal_handlers,
    pending_signal,
    restore_signal_handlers,
)

# name -> (module under mindface_au.cli, one-line help)
COMMANDS = {
    "convert": ("convert", "convert a PyTorch Glint360K IResNet checkpoint to MindSpore"),
    "synth": ("synth", "generate the SynthAU procedural dataset (--format affwild2, bp4d, disfa or list)"),
    "check-data": ("check_data", "validate a dataset of any data.format and print a summary"),
    "folds": ("folds", "write Aff-Wild2's 4-fold cross-validation video lists (Aff-Wild2 only)"),
    "train": ("train", "train an AU model (GRAPH mode, Model + callbacks)"),
    "launch": ("launch", "data-parallel `train` under msrun: launch --workers N -- TRAIN_ARGS"),
    "cv": ("cv", "train every fold of the data format, print per-fold per-AU F1 and the mean"),
    "eval": ("evaluate", "evaluate a checkpoint on validation data, with smoothing"),
    "predict": ("predict", "write ABAW challenge-format predictions, voting over checkpoints"),
    "score": ("score", "score a prediction folder against annotation files"),
    "detect": ("detect", "detect AUs on an image, a folder or a video into a CSV"),
    "export": ("export", "export a trained model to MindIR"),
    "bench": ("bench", "time the forward pass of each installed inference backend on this machine"),
    "demo": ("demo", "end-to-end demo on SynthAU: generate, train, evaluate, predict, plot"),
    "models": ("models", "list the registered models"),
    "configs": ("configs", "list the packaged configs (--config NAME) or --dump one for editing"),
    "doctor": ("doctor", "check MindSpore, device plugins, msrun, cores and one compiled training step here"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mindface-au", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser = build_parser()
        if argv and argv[0] not in ("-h", "--help"):
            parser.print_usage(sys.stderr)
            print(f"mindface-au: error: unknown command {argv[0]!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
            return 2
        parser.print_help()
        return 0
    name = argv[0]
    # MindSpore logs every missing device plugin as a warning; keep the user's terminal to our own messages
    # unless they asked for MindSpore's log level themselves. Must be set before MindSpore is imported.
    os.environ.setdefault("GLOG_v", "3")
    previous = install_signal_handlers()  # from the start: a signal during the imports ends the command cleanly too
    try:
        with parameter_names(FLAG_NAMES):  # library messages name parameters (errors.param); the user typed flags
            return _parse_and_run(name, argv)
    finally:
        restore_signal_handlers(previous)  # an in-process caller (a test, a notebook) gets its own handlers back


def _parse_and_run(name: str, argv: List[str]) -> int:
    """Import the subcommand, parse its arguments and run it."""
    try:
        module = importlib.import_module(f"mindface_au.cli.{COMMANDS[name][0]}")
        parser = argparse.ArgumentParser(prog=f"mindface-au {name}", description=COMMANDS[name][1])
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
    except KeyboardInterrupt as exc:
        return _interrupted(name, exc, "")
    return _run(name, module, args)


def _interrupted(name: str, exc: BaseException, hint: str) -> int:
    signum = getattr(exc, "signum", signal.SIGINT)
    print(f"mindface-au {name}: interrupted ({signal.Signals(signum).name}){hint}", file=sys.stderr)
    return 128 + signum


def _run(name: str, module, args: argparse.Namespace) -> int:
    """Run a subcommand, mapping its exceptions to one line and an exit code (see the module docstring)."""
    hint = ", run again with --resume" if hasattr(args, "resume") or name in ("cv", "launch") else ""
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt as exc:
        return _interrupted(name, exc, hint)
    except Exception as exc:  # noqa: BLE001 - a pending signal first; _error re-raises what it does not know
        if pending_signal():  # a library turned the signal into its own error (a failed read): still the signal
            return _interrupted(name, Interrupted(pending_signal()), hint)
        return _error(name, exc)


def _error(name: str, exc: Exception) -> int:
    """The user's and the environment's errors as one line and an exit code; any other exception is re-raised."""
    if isinstance(exc, UserError):
        print(f"mindface-au {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    if isinstance(exc, EnvironmentFailure):
        print(f"mindface-au {name}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    message = environment_message(exc) if isinstance(exc, (OSError, UnicodeError)) else None
    if message is None:
        raise exc  # a bug: keep the traceback
    print(f"mindface-au {name}: error: {message}", file=sys.stderr)
    return 1


def _one_line(exc: BaseException, limit: int = 2000) -> str:
    """The message of `exc` on one line, cut to `limit` characters."""
    text = " ".join(str(exc).split("\n"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
