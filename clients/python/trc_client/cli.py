"""Command line over Client: `python3 -m trc_client [--url U] [--token T] COMMAND ...`.

Results are printed as JSON on stdout; errors as one line on stderr with exit status 1
(2 for usage errors, as argparse does).
"""

import argparse
import json
import math
import os
import shutil
import sys

from .client import Client, TRCError, check_url, loss_terms, polish_spec

# Training spec fields the CLI accepts: (flag, spec key, type; bool = a switch that sends true).
# Every wire option of GET /v1/catalog has one (tests/integration/test_python_client.py checks);
# values are checked by the server, whose error names the field.
SPEC_FIELDS = (
    ("--name", "name", str),
    ("--replace", "replace", bool),
    # the data
    ("--system", "system", str),
    ("--expert", "expert", str),
    ("--num-samples", "num_samples", int),
    ("--seed", "seed", int),
    # the network
    ("--arch", "arch", str),
    ("--model-size", "model_size", str),
    ("-K", "K", int),
    ("-n", "n", int),
    ("--bound", "bound", float),
    ("--feedback", "feedback", bool),
    ("--normalize", "normalize", str),
    ("--names", "names", str),
    # the optimisation
    ("--epochs", "epochs", int),
    ("--batch-size", "batch_size", int),
    ("--lr", "lr", float),
    ("--weight-decay", "weight_decay", float),
    ("--grad-clip", "grad_clip", float),
    ("--scheduler", "scheduler", str),
    ("--lr-min", "lr_min", float),
    ("--step-size", "step_size", int),
    ("--gamma", "gamma", float),
    ("--plateau-patience", "plateau_patience", int),
    ("--patience", "patience", int),
    ("--val-split", "val_split", float),
    ("--tails", "tails", int),
    # the objective and its terms' weights
    ("--objective", "objective", str),
    ("--terminal-weight", "terminal_weight", float),
    ("--state-weight", "state_weight", float),
    ("--control-weight", "control_weight", float),
    ("--imitation-weight", "imitation_weight", float),
    ("--process-weight", "process_weight", float),
    ("--process-variant", "process_variant", str),
    ("--process-q", "process_q", float),
    ("--process-r", "process_r", float),
    ("--process-qf", "process_qf", float),
)


def floats(text):
    """'1,0.5' -> [1.0, 0.5]"""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def server_url(text):
    """--url (and TRC_URL): http(s)://HOST[:PORT][/PREFIX]."""
    try:
        return check_url(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def polish_arg(text):
    """--polish EXPERT[:ITERS] -> the request's polish object (the server checks the values)."""
    try:
        return polish_spec(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(text):
    """A whole number >= 1."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return v


def seconds(text):
    """A poll interval: a finite number of seconds > 0."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return v


def parser():
    p = argparse.ArgumentParser(prog="python3 -m trc_client", description="Client for trcd.")
    p.add_argument("--url", type=server_url,
                   default=os.environ.get("TRC_URL", "http://127.0.0.1:8080"),
                   help="server URL (env TRC_URL; default %(default)s)")
    p.add_argument("--token", default=os.environ.get("TRC_API_TOKEN"),
                   help="bearer token for state-changing routes (env TRC_API_TOKEN)")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("control", help="controls for a state and target (POST /v1/control)")
    c.add_argument("--state", type=floats, action="append", required=True,
                   help="initial state, e.g. 1,0.5 (repeat for a batch)")
    c.add_argument("--target", type=floats, action="append", required=True,
                   help="target state, e.g. 0,0 (repeat for a batch)")
    c.add_argument("--model", help="model name (default: the server's default model)")
    c.add_argument("--trajectory", action="store_true", help="also return the simulated states")
    c.add_argument("--iterations", action="store_true", help="also return every refinement iterate")
    c.add_argument("--polish", metavar="EXPERT[:ITERS]", type=polish_arg,
                   help="polish the model's answer with an iterative expert, e.g. ilqr:5")
    c.add_argument("--steps-left", type=positive_int, metavar="L",
                   help="plan the last L steps of the horizon only (a model trained with tails)")

    t = sub.add_parser("train", help="submit a training job (POST /v1/train)",
                       description="Submits a training job. Each flag sets the spec field it "
                       "names; the others take the server's defaults. `catalog` prints every "
                       "field's meaning, default and range (GET /v1/catalog).")
    for flag, key, typ in SPEC_FIELDS:
        if typ is bool:
            t.add_argument(flag, dest=key, action="store_const", const=True,
                           help=f"{key}: true")
        else:
            t.add_argument(flag, dest=key, type=typ, metavar=typ.__name__.upper(),
                           help=key)
    t.add_argument("--wait", action="store_true", help="wait for the job, showing a progress bar")
    t.add_argument("--poll", type=seconds, default=0.5, help="seconds between polls with --wait")

    j = sub.add_parser("jobs", help="list jobs (GET /v1/jobs)")
    j.add_argument("--status", help="only jobs in this status (queued, running, ...)")
    j.add_argument("--limit", type=positive_int, metavar="N",
                   help="only the newest N (default: all, page after page)")
    sub.add_parser("job", help="one job (GET /v1/jobs/ID)").add_argument("id")
    w = sub.add_parser("wait", help="wait for a job to finish, showing a progress bar")
    w.add_argument("id")
    w.add_argument("--poll", type=seconds, default=0.5, help="seconds between polls (0.5)")
    sub.add_parser("cancel", help="cancel a job (POST /v1/jobs/ID/cancel)").add_argument("id")
    sub.add_parser("resume", help="resume a failed or cancelled job from its saved state "
                   "(POST /v1/jobs/ID/resume)").add_argument("id")
    sub.add_parser("delete", help="forget a finished job (DELETE /v1/jobs/ID)").add_argument("id")
    sub.add_parser("models", help="list loaded models (GET /v1/models)")
    sub.add_parser("catalog", help="systems, experts, architectures, objectives and every "
                   "training option with its default and range (GET /v1/catalog)")
    ld = sub.add_parser("load", help="load a checkpoint as model NAME (POST /v1/models/NAME/load)")
    ld.add_argument("name")
    ld.add_argument("file", help="file name inside the server's models directory")
    ld.add_argument("--upload", action="store_true",
                    help="FILE is a local file: send its bytes instead of its name")
    ld.add_argument("--dt", type=float, metavar="DT",
                    help="with --upload: the time step of a checkpoint that records none")
    sub.add_parser("unload", help="unload model NAME (DELETE /v1/models/NAME)").add_argument("name")
    sub.add_parser("health", help="liveness (GET /healthz)")
    sub.add_parser("ready", help="readiness (GET /readyz): exit 0 when ready, 1 when not")
    return p


def terms_text(terms):
    """{"imitation": 0.0123, "terminal": 0.5} -> "(imitation 0.0123, terminal 0.5)"."""
    parts = [f"{k} {v:.3g}" if v is not None else f"{k} -" for k, v in terms.items()]
    return "(" + ", ".join(parts) + ")"


class ProgressBar:
    """One-line progress bar on a terminal; one line per new epoch otherwise (logs, pipes).
    The losses are the latest epoch's, each followed by its terms when the objective has
    several (loss_terms)."""

    def __init__(self, stream=sys.stderr, width=30):
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.last = None

    def __call__(self, job):
        prog = job.get("progress") or {}
        metrics = job.get("metrics") or {}
        epoch, epochs = prog.get("epoch", 0), prog.get("epochs", 0)
        frac = prog.get("fraction") or 0.0
        filled = int(round(self.width * min(max(frac, 0.0), 1.0)))
        bar = "#" * filled + "." * (self.width - filled)
        parts = [f"[{bar}] {100 * frac:5.1f}%", f"{job.get('status', '?'):9s}",
                 f"epoch {epoch}/{epochs}"]
        terms = loss_terms(job)
        if metrics.get("train_loss") is not None:
            parts.append(f"train {metrics['train_loss']:.3g}" +
                         (" " + terms_text(terms["train"]) if terms else ""))
        if metrics.get("val_loss") is not None:
            parts.append(f"val {metrics['val_loss']:.3g}" +
                         (" " + terms_text(terms["val"]) if terms and terms["val"] else ""))
        if prog.get("eta_seconds") is not None and not job.get("terminal"):
            parts.append(f"eta {prog['eta_seconds']:.0f}s")
        line = "  ".join(parts)
        if self.tty:
            cols = max(40, shutil.get_terminal_size((100, 20)).columns - 1)
            self.stream.write("\r" + line.ljust(cols)[:cols])
            if job.get("terminal"):
                self.stream.write("\n")
        elif (job.get("status"), epoch) != self.last:
            self.stream.write(line + "\n")
        self.last = (job.get("status"), epoch)
        self.stream.flush()


def run(args, client, out=sys.stdout):
    """Executes one parsed command; returns the process exit status."""
    cmd = args.command
    if cmd == "control":
        kw = dict(model=args.model, trajectory=args.trajectory, iterations=args.iterations,
                  polish=args.polish, steps_left=args.steps_left)
        if len(args.state) == 1:
            result = client.control(args.state[0], args.target[0], **kw)
        else:
            result = client.control_batch(args.state, args.target, **kw)
    elif cmd == "train":
        spec = {key: getattr(args, key) for _f, key, _t in SPEC_FIELDS
                if getattr(args, key) is not None}
        result = client.train(**spec)
        if args.wait:
            result = client.wait(result["job_id"], on_progress=ProgressBar(), poll=args.poll)
    elif cmd == "wait":
        result = client.wait(args.id, on_progress=ProgressBar(), poll=args.poll)
    elif cmd == "jobs":
        result = client.jobs(args.status, limit=args.limit)
    elif cmd == "job":
        result = client.job(args.id)
    elif cmd == "cancel":
        result = client.cancel(args.id)
    elif cmd == "resume":
        result = client.resume(args.id)
    elif cmd == "delete":
        result = client.delete_job(args.id)
    elif cmd == "unload":
        result = client.delete_model(args.name)
    elif cmd == "health":
        result = client.health()
    elif cmd == "ready":
        result = {"ready": client.ready()}
    elif cmd == "models":
        result = client.models()
    elif cmd == "catalog":
        result = client.catalog()
    elif cmd == "load":
        if args.upload:
            with open(args.file, "rb") as f:
                result = client.load(args.name, f.read(), dt=args.dt)
        else:
            result = client.load(args.name, args.file, dt=args.dt)  # a dt: the server's 400
    else:  # argparse rejects unknown commands before this point
        raise SystemExit(f"unknown command {cmd}")
    json.dump(result, out, indent=2)
    out.write("\n")
    # A job that ended badly is a failed command for scripts using --wait.
    if cmd in ("train", "wait") and isinstance(result, dict) and result.get("terminal"):
        return 0 if result.get("status") == "succeeded" else 1
    if cmd == "ready":
        return 0 if result["ready"] else 1
    return 0


def join_vectors(argv):
    """`--state -1,0` -> `--state=-1,0`: argparse would take "-1,0" for an option."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("--state", "--target") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main(argv=None):
    p = parser()
    args = p.parse_args(join_vectors(sys.argv[1:] if argv is None else argv))
    if args.command == "control" and len(args.state) != len(args.target):
        p.error(f"control: give as many --target as --state (got {len(args.state)} --state, "
                f"{len(args.target)} --target)")
    client = Client(args.url, token=args.token)
    try:
        return run(args, client)
    except TRCError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
