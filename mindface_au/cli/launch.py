"""`mindface-au launch`: data-parallel training, or detect over a folder of videos, under msrun from the installed
package (no repository needed).

msrun starts `python SCRIPT ARGS` once per worker; the script is this package's `__main__.py`, so every worker
runs `mindface-au train --distributed` with the arguments after `--`, or, when they start with `detect`,
`mindface-au detect --shard auto ...`: each rank takes its share of the videos (`--shard RANK/WORLD`, from
msrun's RANK_ID and MS_WORKER_NUM). When every worker of a one-machine run has finished, launch merges the shards'
summaries into OUT/summary.json (on several machines: `mindface-au detect --merge-summaries OUT` once all are done).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import List, Optional, Sequence

import mindface_au
from mindface_au.engine.distributed import check_local_workers
from mindface_au.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", type=int, required=True, help="total number of workers (devices)")
    parser.add_argument("--local-workers", type=int, default=0, help="workers on this machine (default: --workers)")
    parser.add_argument("--port", type=int, default=8118, help="msrun --master_port (default 8118)")
    parser.add_argument(
        "--log-dir",
        default=None,
        help="msrun --log_dir: one log per worker (default: msrun_log in the run directory, train's --out or "
        "train.out_dir, or in detect's --out; runs/msrun_log when the command does not tell)",
    )
    parser.add_argument(
        "--msrun-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra msrun argument, repeatable, e.g. --msrun-arg=--node_rank=1 --msrun-arg=--master_addr=ADDR",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the msrun command instead of running it")
    parser.add_argument(
        "train_args",
        nargs=argparse.REMAINDER,
        help="-- then `mindface-au train` arguments, or `detect` and its arguments (a folder of videos)",
    )


def msrun_command(
    workers: int,
    train_args: Sequence[str],
    local_workers: int = 0,
    port: int = 8118,
    log_dir: Optional[str] = None,
    msrun_args: Sequence[str] = (),
) -> List[str]:
    """The msrun command line that runs `mindface-au train --distributed TRAIN_ARGS` on `workers` workers, or
    `mindface-au detect --shard auto DETECT_ARGS` when `train_args` start with "detect"; the worker logs go to
    `log_dir`, by default `default_log_dir` (under the run's output folder)."""
    if workers < 1 or local_workers < 0:
        raise UserError(f"--workers {workers} / --local-workers {local_workers}: expected positive worker counts")
    if local_workers > workers:
        raise UserError(f"--local-workers {local_workers}: more than --workers {workers} (the total over all machines)")
    if not 1 <= port <= 65535:
        raise UserError(f"--port {port}: expected a TCP port, 1..65535")
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    msrun = msrun if os.path.isfile(msrun) else shutil.which("msrun")
    if not msrun:
        raise UserError("msrun not found beside this Python or on PATH (it is installed with MindSpore)")
    args = list(train_args)
    command, args = (args[0], args[1:]) if args[:1] in (["train"], ["detect"]) else ("train", args)
    if command == "detect":
        check_detect_args(args)
        given = [a for a in args if a == "--shard" or a.startswith("--shard=")]
        if given and _flag_value(args, "--shard") != "auto":
            raise UserError("launch detect: each rank takes its own shard (--shard auto); drop --shard")
        if (local_workers or workers) < workers and not any(a.startswith("--node_rank") for a in msrun_args):
            raise UserError(
                "launch detect on several machines: give each machine its --msrun-arg=--node_rank=K, so every "
                "rank knows its shard before it starts"
            )
        extra = [] if given else ["--shard", "auto"]
    else:
        extra = [] if "--distributed" in args else ["--distributed"]
    check_local_workers(local_workers or workers, _flag_value(args, "--device") or "auto")  # GPU/Ascend: <= devices
    log_dir = log_dir or default_log_dir(command, args)
    script = os.path.join(os.path.dirname(os.path.abspath(mindface_au.__file__)), "__main__.py")
    return [
        msrun, f"--worker_num={workers}", f"--local_worker_num={local_workers or workers}", f"--master_port={port}",
        f"--log_dir={log_dir}", "--join=True", *msrun_args,
        script, command, *extra, *args,
    ]  # fmt: skip


LOG_DIR_NAME = "msrun_log"
FALLBACK_LOG_DIR = os.path.join("runs", LOG_DIR_NAME)


def default_log_dir(command: str, args: Sequence[str]) -> str:
    """Where msrun writes the worker logs unless --log-dir says: LOG_DIR_NAME inside the run's output folder, so
    the logs stay with the run they belong to. For train that is --resume RUN_DIR, else --out, else the config's
    train.out_dir (after --set); for detect its --out. FALLBACK_LOG_DIR when the command does not tell (e.g. a
    config that does not load here: the workers report that themselves)."""
    if command == "detect":
        out = _flag_value(args, "--out") or _flag_value(args, "--output")
    else:
        out = _train_out_dir(args)
    return os.path.join(out, LOG_DIR_NAME) if out else FALLBACK_LOG_DIR


def _train_out_dir(train_args: Sequence[str]) -> Optional[str]:
    """The run directory a `mindface-au train` command line writes to, or None when it cannot be known here."""
    from mindface_au.cli import train

    parser = _QuietParser(prog="mindface-au train", add_help=False)
    train.add_arguments(parser)
    try:
        args, _ = parser.parse_known_args(list(train_args))
        if args.resume or args.out:
            return args.resume or args.out
        from mindface_au.config import load_config

        return load_config(args.config, train.split_overrides(args, fold=False)).train.out_dir or None
    except UserError:
        return None


class _QuietParser(argparse.ArgumentParser):
    """An argument parser whose errors are a UserError (one line, exit 2) instead of usage and exit."""

    prefix = "launch"

    def error(self, message: str):
        raise UserError(f"{self.prefix}: {message}")


class _DetectParser(_QuietParser):
    """detect's own parser, with its errors (unknown flag, bad value) as a UserError: one line, exit 2."""

    prefix = "launch detect"


def check_detect_args(detect_args: Sequence[str]) -> None:
    """Parse and check the detect arguments in the launch process, with detect's own parser and checks, so a
    missing model or input, an unknown flag or a missing --out is one line before msrun starts any worker."""
    from mindface_au.cli import detect

    parser = _DetectParser(prog="mindface-au detect", add_help=False)
    detect.add_arguments(parser)
    args = parser.parse_args(list(detect_args))
    if args.merge_summaries:
        raise UserError(
            "launch detect: --merge-summaries runs once, not on every worker: run `mindface-au detect "
            "--merge-summaries FOLDER` itself (launch merges a one-machine run's shards by itself)"
        )
    detect.check_args(args)


def _flag_value(args: Sequence[str], flag: str):
    """The value of `flag` in an argument list (`--flag V` or `--flag=V`), the last one given; None if absent."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def run(args: argparse.Namespace) -> int:
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    cmd = msrun_command(args.workers, train_args, args.local_workers, args.port, args.log_dir, args.msrun_arg)
    print(" ".join(cmd), flush=True)
    if args.dry_run:
        return 0
    code = run_process_group(cmd, worker_env())
    if train_args[:1] != ["detect"]:
        return code
    return _after_detect(code, train_args[1:], args.workers, args.local_workers)


def worker_env(environ=None) -> dict:
    """The workers' environment: `environ` (default os.environ) with this interpreter first on PATH (msrun starts
    each worker with the `python` found there) and the collective timeouts the sharded validation relies on
    (engine.distributed.COLLECTIVE_TIMEOUTS) where the user has not set them."""
    from mindface_au.engine.distributed import collective_timeout_env

    environ = dict(os.environ if environ is None else environ)
    path = os.path.dirname(sys.executable) + os.pathsep + environ.get("PATH", "")
    return {**environ, **collective_timeout_env(environ), "PATH": path}


def _after_detect(code: int, detect_args: Sequence[str], workers: int, local_workers: int) -> int:
    """After msrun's detect workers: merge the shard summaries (one machine), print the JSON summary on stdout."""
    import json

    from mindface_au.inference.detect.collection import merge_summaries

    out = _flag_value(detect_args, "--out") or _flag_value(detect_args, "--output")
    if code != 0:
        print(f"launch detect: msrun exited with {code}; see the worker logs. Finished videos are kept: run the "
              "same command again (with --resume to continue the partial ones)", file=sys.stderr)  # fmt: skip
        return code
    if (local_workers or workers) < workers:
        print(f"launch detect: this machine's shards are done; when every machine's are, run "
              f"`mindface-au detect --merge-summaries {out}`", file=sys.stderr)  # fmt: skip
        return 0
    summary = merge_summaries(out, overwrite="--overwrite" in detect_args)
    print(json.dumps(summary), flush=True)
    return 1 if summary.get("failed") else 0


def run_process_group(cmd: List[str], env: dict, grace_s: float = 120.0) -> int:
    """Run `cmd` in its own process group; SIGINT or SIGTERM here is passed on as SIGTERM to the whole group.

    msrun kills its workers outright on SIGINT and leaves them running on SIGTERM; sending SIGTERM to every
    process of the group instead lets each worker stop as `train` does on SIGTERM (the run stays resumable:
    checkpoints/resume.ckpt of the last finished epoch or step). Waits up to `grace_s` for them, then kills.
    """
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(proc.pid):
            proc.poll()  # reap msrun itself once it exits
            time.sleep(0.2)
        if _group_alive(proc.pid):
            _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
