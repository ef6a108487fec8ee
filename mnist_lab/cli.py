"""`mnist-lab`: the lab from a terminal. Output for people by default, `--json` for scripts.

Exit codes: 0 succeeded, 1 an experiment or study failed or was cancelled, 2 usage, 3 refused
by the service (its message on stderr).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnist_lab.client import METRICS, Lab, LabError, Run, summary_text

OK, FAILED, USAGE, REFUSED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-lab",
        description="Train Keras nets on the MNIST lab service from a terminal.",
        epilog="MNIST_LAB_URL and MNIST_LAB_TOKEN stand for --url and --token. Exit codes: 0 "
        "succeeded, 1 failed or cancelled, 2 usage, 3 refused by the service.",
    )
    parser.add_argument("--url", help="the service (MNIST_LAB_URL; http://127.0.0.1:8000)")
    parser.add_argument("--token", help="the API token (MNIST_LAB_TOKEN)")
    parser.add_argument("--json", action="store_true", help="JSON output, for scripts")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    submit = commands.add_parser("submit", help="queue a .json spec, a .py cell or an .ipynb")
    submit.add_argument("file", type=Path)
    submit.add_argument(
        "--name", help="the experiment's name (else a .json spec's own, else the file's)"
    )
    submit.add_argument("--epochs", type=int, help="override fit.epochs")
    submit.add_argument("--train-size", type=int, help="override fit.train_size")
    submit.add_argument("--follow", action="store_true", help="show progress until it ends")
    submit.add_argument("--dry-run", action="store_true", help="show what is read; queue nothing")

    listing = commands.add_parser("ls", help="list experiments, newest first")
    listing.add_argument("--status", help="queued, running, succeeded, failed, cancelled")
    listing.add_argument("--tag", action="append", help="only with this tag (repeatable)")
    listing.add_argument("--mine", action="store_true", help="only those sent with my token")
    listing.add_argument("--limit", type=int, default=50)

    show = commands.add_parser("show", help="one experiment, with its summary")
    show.add_argument("id")

    history = commands.add_parser("history", help="an experiment's metrics per epoch")
    history.add_argument("id")
    history.add_argument("--csv", action="store_true", help="as CSV")

    predict = commands.add_parser("predict", help="recognise digits in PNG or JPEG files")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--model", default="best", help="best, latest, an alias or an id")

    study = commands.add_parser("study", help="run a preset study (optimizers, batchnorm, ...)")
    study.add_argument("preset")
    study.add_argument("--epochs", type=int)
    study.add_argument("--train-size", type=int)
    study.add_argument("--follow", action="store_true", help="show progress until it ends")

    cancel = commands.add_parser("cancel", help="cancel a queued or running experiment")
    cancel.add_argument("id")

    people = commands.add_parser("people", help="the class (a teacher's token)")
    people_commands = people.add_subparsers(dest="people_command", required=True, metavar="ACTION")
    add = people_commands.add_parser(
        "add", help="add people; prints the name-token sheet to hand out (tokens shown once)"
    )
    add.add_argument("names", nargs="+", help="their names")
    add.add_argument("--teacher", action="store_true", help="as teachers (else students)")
    return parser


class Output:
    """What a command prints: for people, or one JSON document with --json."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: Any, text: str) -> None:
        print(json.dumps(data, indent=2) if self.as_json else text)


def _runs_line(run: Run) -> str:
    data = run.data
    score = data.get("test_accuracy")
    shown = f" test accuracy {score:.4f}" if isinstance(score, float) else ""
    return f"{run.id}  {data['status']:<9}  {data['name']}{shown}"


def _ended(runs: Sequence[Run]) -> int:
    return OK if all(run.status == "succeeded" for run in runs) else FAILED


def _submit(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"mnist-lab: no such file: {path}", file=sys.stderr)
        return USAGE
    fit = {"epochs": args.epochs, "train_size": args.train_size}
    overridden = {key: value for key, value in fit.items() if value is not None}
    suffix = path.suffix.lower()
    if suffix == ".ipynb":
        if overridden:
            print("mnist-lab: --epochs and --train-size apply to .json and .py", file=sys.stderr)
            return USAGE
        read = lab.request(
            "POST",
            "/notebooks",
            params={"dry_run": str(args.dry_run).lower()},
            files={"file": (path.name, path.read_bytes(), "application/x-ipynb+json")},
        )
        return _read(lab, read, args, out)
    if suffix == ".py":
        code = path.read_text()
        if args.dry_run or not overridden:
            read = lab.request(
                "POST",
                "/experiments/from-code",
                params={"dry_run": str(args.dry_run).lower(), "name": args.name or path.stem},
                content=code.encode(),
                headers={"content-type": "text/x-python"},
            )
            return _read(lab, read, args, out)
        model: Any = code
    elif suffix == ".json":
        model = json.loads(path.read_text())
    else:
        print(f"mnist-lab: submit takes .json, .py or .ipynb, not {path.name}", file=sys.stderr)
        return USAGE
    if args.dry_run:
        body = lab.spec_of(model)
        if overridden:
            body["fit"] = {**(body.get("fit") or {}), **overridden}
        validated = lab.request("POST", "/experiments/validate", json=body | {"name": "dry-run"})
        out.emit(validated, json.dumps(validated["spec"], indent=2))
        return OK
    # A .json spec that names itself keeps its name; the file's stands in for a missing one.
    named = isinstance(model, dict) and model.get("name")
    run = lab.submit(model, name=args.name or named or path.stem, **overridden)
    return _follow(args, out, [run])


def _read(lab: Lab, read: dict[str, Any], args: argparse.Namespace, out: Output) -> int:
    runs = [Run(lab, item["experiment"]) for item in read["experiments"] if item["experiment"]]
    if read["dry_run"]:
        lines = [
            f"{item['name']}: {item['summary']['total_params']:,} parameters, "
            f"{len(item['spec']['layers'])} layers, {item['spec']['fit']['epochs']} epochs"
            for item in read["experiments"]
        ]
        lines += [f"skipped line {s['line']}: {s['code']} ({s['why']})" for s in read["skipped"]]
        out.emit(read, "\n".join(lines))
        return OK
    return _follow(args, out, runs)


def _follow(args: argparse.Namespace, out: Output, runs: list[Run]) -> int:
    if not args.follow:
        out.emit([run.data for run in runs], "\n".join(_runs_line(run) for run in runs))
        return OK
    for run in runs:
        run.wait(progress=not out.as_json)
    out.emit([run.data for run in runs], "\n".join(_runs_line(run) for run in runs))
    return _ended(runs)


def _ls(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    params: dict[str, Any] = {"limit": args.limit, "mine": str(args.mine).lower()}
    if args.status:
        params["status"] = args.status
    if args.tag:
        params["tag"] = args.tag
    data = lab.request("GET", "/experiments", params=params)["data"]
    out.emit(data, "\n".join(_runs_line(Run(lab, item)) for item in data) or "(none)")
    return OK


def _show(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    run = lab.experiment(args.id)
    text = _runs_line(run)
    if run.data.get("summary"):
        text += "\n" + summary_text(run.data["summary"], run.name)
    if run.data.get("error"):
        text += f"\nerror: {run.data['error']}"
    out.emit(run.data, text)
    return OK


def _history(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    epochs = lab.request("GET", f"/experiments/{args.id}/history")["epochs"]
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["epoch", *METRICS, "seconds"])
        for epoch in epochs:
            row = [epoch["epoch"], *(epoch[m] for m in METRICS), epoch["seconds"]]
            writer.writerow(["" if value is None else value for value in row])
        print(buffer.getvalue(), end="")
        return OK
    lines = [
        f"epoch {epoch['epoch']}: "
        + ", ".join(f"{m} {epoch[m]:.4f}" for m in METRICS if epoch[m] is not None)
        for epoch in epochs
    ]
    out.emit(epochs, "\n".join(lines) or "(no epochs yet)")
    return OK


def _predict(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    missing = [str(path) for path in args.images if not path.is_file()]
    if missing:
        print(f"mnist-lab: no such file: {', '.join(missing)}", file=sys.stderr)
        return USAGE
    answer = lab.request(
        "POST",
        "/predict/upload",
        data={"model": args.model},
        files=[("file", (path.name, path.read_bytes())) for path in args.images],
    )
    lines = [
        f"{path}: {prediction['digit']} ({max(prediction['probabilities']):.1%})"
        for path, prediction in zip(args.images, answer["predictions"], strict=True)
    ]
    out.emit(answer, "\n".join(lines))
    return OK


def _study(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    study = lab.study(
        args.preset,
        epochs=args.epochs,
        train_size=args.train_size,
        wait=args.follow,
        progress=not out.as_json,
    )
    rows = study.data.get("leaderboard") or []
    lines = [f"{study.id}  {study.data['status']}  {study.data['name']}"]
    lines += [
        f"  {row['label']:<30} {row['status']:<9} best val_accuracy "
        + (f"{row['best_val_accuracy']:.4f}" if row["best_val_accuracy"] is not None else "-")
        for row in rows
    ]
    out.emit(study.data, "\n".join(lines))
    if not args.follow:
        return OK
    return OK if study.data["status"] == "finished" else FAILED


def _cancel(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    run = lab.experiment(args.id).cancel()
    out.emit(run.data, _runs_line(run) + " (cancel requested)")
    return OK


def _people(lab: Lab, args: argparse.Namespace, out: Output) -> int:
    role = "teacher" if args.teacher else "student"
    issued = lab.request(
        "POST", "/people", json={"people": [{"name": name, "role": role} for name in args.names]}
    )
    sheet = [f"{person['name']},{person['role']},{person['token']}" for person in issued["data"]]
    out.emit(issued, "\n".join(["name,role,token", *sheet]))
    return OK


COMMANDS = {
    "submit": _submit,
    "ls": _ls,
    "show": _show,
    "history": _history,
    "predict": _predict,
    "study": _study,
    "cancel": _cancel,
    "people": _people,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return USAGE if exit_.code not in (0, None) else OK
    out = Output(args.json)
    try:
        with Lab(args.url, args.token) as lab:
            return COMMANDS[args.command](lab, args, out)
    except LabError as error:
        print(f"mnist-lab: {error.message}", file=sys.stderr)
        return REFUSED
    except (OSError, ValueError) as error:
        print(f"mnist-lab: {error}", file=sys.stderr)
        return USAGE
