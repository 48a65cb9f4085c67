"""``xtts-tune``: a thin command line over the library. It parses arguments, calls one library function,
and hands the result to :mod:`xtts_tune.terminal`; a user mistake (:class:`~xtts_tune.errors.UserError`)
becomes one ``error:`` line and exit status 2."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from xtts_tune import terminal, terminal_doctor
from xtts_tune.errors import UserError, user_error_for

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


# --- commands ------------------------------------------------------------------------------------------


def cmd_trial(args) -> int:
    from xtts_tune.config import load_config

    cfg = load_config(args.config, args.set)  # before torch and coqui are imported: a mistake is named at once
    from xtts_tune.training.loop import run_trial

    run_dir = Path(args.run_dir) if args.run_dir else None
    print(f"trial: {cfg.source} → base {cfg.base_model}, data {cfg.data_path}")
    result = run_trial(cfg, run_dir=run_dir, progress=terminal.Progress())
    terminal.print_trial_result(result, _verdict(cfg, result))
    return 0


def _verdict(cfg, result):
    from xtts_tune.analysis.curve.thresholds import thresholds_from_section
    from xtts_tune.analysis.ranking.verdicts import curve_verdict

    thresholds = thresholds_from_section(cfg.diagnosis, cfg.source)
    return curve_verdict(result.curve, thresholds=thresholds, trainable_share=result.params.share)


def cmd_train(args) -> int:
    from xtts_tune.config import load_config

    cfg = load_config(args.config, args.set)  # before torch and coqui are imported: a mistake is named at once
    from xtts_tune.training.final import run_final_training

    final = run_final_training(
        Path(args.config), overrides=args.set, progress=terminal.Progress(), resume_every=args.resume_every
    )
    terminal.print_trial_result(final.trial, _verdict(cfg, final.trial))
    terminal.print_final_model(final.model_dir)
    return 0


def cmd_data_curve(args) -> int:
    from xtts_tune.config import load_config

    cfg = load_config(args.config, args.set)  # before torch and coqui are imported: a mistake is named at once
    from xtts_tune import terminal_curve
    from xtts_tune.report.data_curve import write_data_curve
    from xtts_tune.training.data_curve import check_fractions, curve_folder, run_data_curve

    fractions = check_fractions(args.fractions)
    folder = Path(args.out) if args.out else curve_folder(cfg)
    print(f"data curve: {cfg.source} at {' '.join(f'{f:g}' for f in fractions)} of the train split → {folder}")
    doc = run_data_curve(cfg, fractions=fractions, out_dir=folder, progress=terminal_curve.DataCurveProgress())
    fit, page = write_data_curve(doc, folder)
    terminal_curve.print_data_curve(doc, fit, page)
    return 0


def cmd_speak(args) -> int:
    from xtts_tune.model.speak import synthesize

    result = synthesize(
        args.model,
        args.text,
        args.speaker_wav,
        args.out,
        language=args.language,
        device=args.device,
        seed=args.seed,
        max_seconds=args.max_seconds,
    )
    print(f"wrote {result.path} ({result.seconds:.1f} s at {result.sample_rate} Hz)")
    if result.capped_at is not None:
        print(
            f"stopped at --max-seconds {result.capped_at:.1f}: the model had not finished the sentence "
            "(raise --max-seconds, or the fine-tune is not done)"
        )
    return 0


def cmd_demo_data(args) -> int:
    from xtts_tune.data.demo import generate_demo_data

    t = time.time()
    paths = generate_demo_data(Path(args.out))
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(f"done in {time.time() - t:.1f} s")
    return 0


def cmd_build_base(args) -> int:
    from xtts_tune.data.demo import generate_demo_data
    from xtts_tune.embedded.base import TinyBaseSpec, build_tiny_base

    corpus = Path(args.corpus) if args.corpus else generate_demo_data(Path(args.data), which=("base",))["base"]
    spec = TinyBaseSpec(seed=args.seed)
    progress = terminal.Progress(prefix="[gpt] ")

    def on_progress(kind, *payload):
        if kind == "dvae":
            step, total, loss = payload
            if step % 250 == 0 or step == total:
                print(f"[dvae] step {step}/{total} loss {loss:.4f}", flush=True)
        else:
            progress(payload[0])

    summary = build_tiny_base(corpus, Path(args.out), spec, progress=on_progress)
    usage = summary["dvae"]
    print(
        f"DVAE code usage: {usage['codes_used']}/{usage['codebook_size']} codes, perplexity {usage['perplexity']:.1f}"
    )
    print(f"GPT best validation loss on the base voice: {summary['gpt_best_val_loss']:.4f}")
    print(f"tiny base written to {args.out} in {summary['seconds']:.0f} s")
    return 0


def cmd_check_data(args) -> int:
    from xtts_tune.config import load_config

    cfg = load_config(args.config, args.set)  # before torch and coqui are imported: a mistake is named at once
    from xtts_tune.doctor.run import check_dataset, write_exclude

    report = check_dataset(cfg, progress=terminal_doctor.doctor_progress())
    exclude = args.write_exclude and write_exclude(report.findings, args.write_exclude, dataset=str(cfg.data_path))
    terminal_doctor.print_check_data(report, exclude or None)
    return 0


def cmd_search(args) -> int:
    from xtts_tune.config import load_config

    cfg = load_config(args.config, args.set)  # before torch and coqui are imported: a mistake is named at once
    if getattr(args, "report", True):  # the report and YAML written at the end must be this study's to replace
        from xtts_tune.search.home import check_outputs
        from xtts_tune.search.storage import default_storage

        check_outputs(cfg, args.storage or default_storage(cfg))
    from xtts_tune.search.runner import run_search

    summary = run_search(cfg, n_trials=args.trials, storage=args.storage, progress=terminal.search_progress())
    print(terminal.render_summary(summary), flush=True)
    if summary.interrupted:
        print("interrupted (Ctrl-C): everything finished is stored; run the same command to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    if getattr(args, "report", True):
        _report_and_export(cfg.study_name, summary.storage, cfg.root)
    return 0


def _report_and_export(name: str, storage: str, root: str | Path) -> None:
    from xtts_tune.config import study_outputs
    from xtts_tune.export import export_best
    from xtts_tune.record import StudyRecord
    from xtts_tune.report.page import build_report
    from xtts_tune.search.home import check_output
    from xtts_tune.search.storage import load_study

    study = load_study(name, storage)
    report_path, export_path = study_outputs(root, name)
    for path in (report_path, export_path):
        check_output(path, name, StudyRecord.from_study(study).uid)
    print(f"report: {build_report(study, report_path)}")
    try:
        out = export_best(study, export_path)
        print(f"best config: {out}  (train it with: xtts-tune train --config {out})")
    except UserError as exc:
        print(f"no config exported: {exc}")


def _study_for(args):
    """(study name, storage URL, project root or None) from --config / --study / --storage.

    ``--config`` names the YAML wherever it lives; ``--study`` alone looks for ``studies/<name>.yaml`` here;
    ``--storage`` alone (or with ``--study``) needs no YAML: the study records its project root.
    """
    from xtts_tune.config import load_config
    from xtts_tune.search.storage import default_storage, study_names

    if args.config:
        cfg = load_config(args.config)
        return args.study or cfg.study_name, args.storage or default_storage(cfg), cfg.root
    if args.storage:
        if args.study:
            return args.study, args.storage, None
        names = study_names(args.storage)
        if len(names) != 1:
            raise UserError(
                f"--storage holds {len(names)} studies ({', '.join(names) or 'none'}); name one with --study"
            )
        return names[0], args.storage, None
    if not args.study:
        raise UserError("name the study: --config studies/NAME.yaml (or --study NAME --storage URL)")
    path = Path("studies") / f"{args.study}.yaml"
    if not path.is_file():
        raise UserError(
            f"{path.resolve()}: no such study YAML in this folder; pass --config PATH/TO/{args.study}.yaml "
            "or --storage URL (the search prints both)"
        )
    cfg = load_config(path)
    return args.study, default_storage(cfg), cfg.root


def _default_output(args, study, which: int) -> Path:
    """``--out``, else where ``search`` writes it (:func:`xtts_tune.config.study_outputs`), unless another
    study's report or YAML is there (``make export`` names the default path with ``--out``)."""
    from xtts_tune.config import study_outputs
    from xtts_tune.record import StudyRecord
    from xtts_tune.search.home import check_output

    record = StudyRecord.from_study(study)
    if args.out:
        path = Path(args.out)
    else:
        _, _, root = _study_for(args)
        root = root or record.project_root or Path.cwd()
        path = study_outputs(root, study.study_name)[which]
    check_output(path, study.study_name, record.uid)
    return path


def cmd_dashboard(args) -> int:
    from xtts_tune.search.dashboard import dashboard_command, run_forwarding_signals

    _, storage, _ = _study_for(args)
    argv = dashboard_command(storage, host=args.host, port=args.port)
    print(f"optuna-dashboard on http://{args.host}:{args.port}  (Ctrl-C to stop)", flush=True)
    return run_forwarding_signals(argv)


def cmd_report(args) -> int:
    from xtts_tune.report.page import build_report
    from xtts_tune.search.storage import load_study

    name, storage, _ = _study_for(args)
    study = load_study(name, storage)
    print(f"report: {build_report(study, _default_output(args, study, 0))}")
    return 0


def cmd_export(args) -> int:
    from xtts_tune.export import export_best
    from xtts_tune.search.storage import load_study

    name, storage, _ = _study_for(args)
    study = load_study(name, storage)
    path = export_best(study, _default_output(args, study, 1), trial_number=args.trial, fmt=args.format)
    print(f"best config: {path}")
    return 0


def cmd_confirm(args) -> int:
    from xtts_tune.search.confirm import confirm_top_trials

    name, storage, _ = _study_for(args)
    print(f"confirm: study '{name}', top {args.top} candidates, {args.seeds} other seeds each")
    result = confirm_top_trials(
        name, storage, top=args.top, seeds=args.seeds, progress=terminal.confirm_progress(), config_path=args.config
    )
    print(terminal.render_confirm(result))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# --- parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xtts-tune", description="Hyperparameter search and overfitting diagnosis for fine-tuning XTTS v2."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log library details")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp, required=True):
        sp.add_argument("--config", required=required, help="study YAML (e.g. studies/demo.yaml)")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    t = sub.add_parser("trial", help="run one fine-tune trial and print its curve")
    with_config(t)
    t.add_argument("--run-dir", help="where the checkpoint and curve go (default: output_dir/study_name/trial-<time>)")
    t.set_defaults(func=cmd_trial)

    tr = sub.add_parser("train", help="final fine-tune from an exported config")
    with_config(tr)
    tr.add_argument(
        "--resume-every",
        type=_positive_int,
        default=50,
        help="save a resumable state every N optimizer steps (run the same command after a kill)",
    )
    tr.set_defaults(func=cmd_train)

    dc = sub.add_parser("data-curve", help="would more data help? train on nested fractions, fit the curve")
    with_config(dc)
    dc.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 1.0], metavar="F")
    dc.add_argument("--out", help="folder for curve.json, fit.json, data-curve.html (default: study_dir/data-curve)")
    dc.set_defaults(func=cmd_data_curve)

    sp = sub.add_parser("speak", help="synthesize speech with a trained XTTS folder (xtts-tune train writes one)")
    sp.add_argument("--model", required=True, help="an XTTS v2 folder (e.g. runs/demo/demo-final/model)")
    sp.add_argument("--text", required=True)
    sp.add_argument("--speaker-wav", required=True, help="3-30 s of the voice to speak in (one of your clips)")
    sp.add_argument("--out", required=True, help="the wav to write (24 kHz mono)")
    sp.add_argument("--language", default="en")
    sp.add_argument("--device", default="auto", help="auto | cpu | cuda")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--max-seconds", type=float, help="cap the audio length (default: 1 s + 0.15 s per character)")
    sp.set_defaults(func=cmd_speak)

    d = sub.add_parser("demo-data", help="generate the demo base and target voices with espeak-ng")
    d.add_argument("out")
    d.set_defaults(func=cmd_demo_data)

    b = sub.add_parser("build-base", help="rebuild the tiny embedded base model (make demo-base)")
    b.add_argument("--out", default="xtts_tune/assets/tiny_base")
    b.add_argument("--corpus", help="LJSpeech-style base corpus (default: generate the demo base voice)")
    b.add_argument("--data", default="data/demo", help="where to generate the demo corpus")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=cmd_build_base)

    s = sub.add_parser("search", help="run (or continue) the Optuna study")
    with_config(s)
    s.add_argument("--trials", type=int, default=20, help="trials this worker runs")
    s.add_argument("--storage", help="SQLAlchemy URL (default sqlite:///studies/<study>.db)")
    s.add_argument("--no-report", dest="report", action="store_false", help="skip the report and export")
    s.set_defaults(func=cmd_search)

    c = sub.add_parser("check-data", help="rank the clips most likely to hurt the fine-tune, with their reasons")
    with_config(c)
    c.add_argument("--write-exclude", metavar="FILE", help="write the flagged clip ids (a data.exclude file)")
    c.set_defaults(func=cmd_check_data)

    for name, func, helptext in (
        ("dashboard", cmd_dashboard, "open optuna-dashboard on the study's storage"),
        ("report", cmd_report, "write the study's HTML report"),
        ("export", cmd_export, "export the recommended config to YAML"),
        ("confirm", cmd_confirm, "re-run the top candidates with other seeds; recommend by the mean"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--study", help="study name (default: from --config)")
        sp.add_argument("--config", help="study YAML (default studies/<study>.yaml)")
        sp.add_argument("--storage", help="SQLAlchemy URL")
        if name == "dashboard":
            sp.add_argument("--host", default="127.0.0.1")
            sp.add_argument("--port", type=int, default=8080)
        elif name == "confirm":
            sp.add_argument("--top", type=_positive_int, default=3, help="candidates to confirm (best first)")
            sp.add_argument("--seeds", type=_positive_int, default=3, help="other seeds per candidate")
        else:
            sp.add_argument("--out")
        if name == "export":
            sp.add_argument("--trial", type=int, help="export this trial instead of the recommendation")
            sp.add_argument("--format", choices=["yaml", "coqui"], default="yaml")
        sp.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    terminal.quiet_third_party()
    terminal.route_optuna_logging()
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted; results written so far are kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a user mistake, a full disk, a read-only database: one line; a bug: its traceback
        error = user_error_for(exc)
        if error is None:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
