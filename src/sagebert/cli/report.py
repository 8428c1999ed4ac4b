"""`sagebert report`: what live traffic got from each variant, and how far it drifted from the training data.

From the endpoint's data-capture files (or --capture: an S3 prefix or a local folder, so it runs
offline) and CloudWatch: per variant the requests, label counts and confidence, invocations,
errors and latency; for a shadow test the agreement of production and shadow on the same requests;
against baseline.json (written by training into the model artifact) text length, vocabulary
coverage and label-mix drift. A table, or --json (one object on the last line), or --plot PNG;
--fail-on-drift exits 4 when a threshold is crossed.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .. import report
from ..aws import traffic
from ..aws.build.common import S3Location
from ..aws.capture import CapturedRequest, CaptureSet
from ..aws.clients import AwsClients
from ..aws.endpoints import describe_endpoint
from ..aws.validation import InvalidRequestError
from . import options
from .output import OK, duration, fail, say, warn

DRIFTED = 5  # exit code of --fail-on-drift when a threshold is crossed (4 is the gate's "cannot compare")
_SINCE = re.compile(r"\s*(\d+)\s*([mhd])\s*")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since(text: str) -> timedelta:
    """``24h`` / ``90m`` / ``7d`` → timedelta (argparse type)."""
    match = _SINCE.fullmatch(text or "")
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: write e.g. 24h, 90m or 7d")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="per-variant traffic, shadow agreement and drift from captured requests",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="Exit codes: 0 done, 1 failure, 4 drifted (with --fail-on-drift).",
    )
    p.add_argument("--endpoint", metavar="NAME", help="read its capture files, variants and CloudWatch metrics")
    p.add_argument(
        "--capture",
        metavar="DIR_OR_S3",
        help="capture files here instead ({variant}/yyyy/mm/dd/hh/*.jsonl below; runs offline without --endpoint)",
    )
    p.add_argument(
        "--since",
        type=since,
        metavar="DURATION",
        help="only capture hours this recent, e.g. 24h, 90m, 7d (default: 24h with --endpoint alone, else all)",
    )
    p.add_argument(
        "--baseline",
        metavar="PATH_OR_S3",
        help="baseline.json, a model directory or a model.tar.gz (default with --endpoint: the production model's)",
    )
    p.add_argument("--production-variant", metavar="NAME", help="default: the endpoint's, else the busiest variant")
    p.add_argument("--shadow-variant", metavar="NAME", help="default: the endpoint's, else the other variant")
    p.add_argument(
        "--psi-threshold",
        type=options.non_negative_number,
        default=report.PSI_THRESHOLD,
        metavar="X",
        help=f"population stability index above which length or label mix has drifted (default {report.PSI_THRESHOLD})",
    )
    p.add_argument(
        "--coverage-drop",
        type=options.non_negative_number,
        default=report.COVERAGE_DROP_THRESHOLD,
        metavar="X",
        help="vocabulary coverage may fall this much (a share) before it counts as drift "
        f"(default {report.COVERAGE_DROP_THRESHOLD})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object (on the last line) instead of a table")
    p.add_argument("--plot", metavar="FILE.png", help="draw the distributions into this PNG (needs matplotlib)")
    p.add_argument("--fail-on-drift", action="store_true", help="exit 4 when any drift threshold is crossed")
    p.set_defaults(handler=run)


def _variant_names(config: dict) -> tuple[str | None, str | None]:
    production = [v["VariantName"] for v in config.get("ProductionVariants") or ()]
    shadow = [v["VariantName"] for v in config.get("ShadowProductionVariants") or ()]
    return (production[0] if len(production) == 1 else None), (shadow[0] if shadow else None)


def _from_endpoint(args, clients: AwsClients) -> tuple[dict, dict]:
    description = describe_endpoint(clients, args.endpoint)
    config = clients.sagemaker.describe_endpoint_config(EndpointConfigName=description["EndpointConfigName"])
    return description, config


def _production_model_data(clients: AwsClients, config: dict, production: str | None) -> str | None:
    for variant in config.get("ProductionVariants") or ():
        if production is None or variant["VariantName"] == production:
            model = clients.sagemaker.describe_model(ModelName=variant["ModelName"])
            container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
            return container.get("ModelDataUrl")
    return None


def _read_captures(args, clients: AwsClients, config: dict | None, now: datetime) -> tuple[CaptureSet, str]:
    window = args.since if args.since else (timedelta(hours=24) if not args.capture else None)
    earliest = traffic.earliest_hour(window, now)
    if args.capture and not args.capture.startswith("s3://"):
        return traffic.read_local(Path(args.capture), earliest), args.capture
    if args.capture:
        location = S3Location.parse(args.capture, "--capture location")
    else:
        location = traffic.capture_prefix(config, args.endpoint)
    return traffic.read_s3(clients, location, earliest), location.as_prefix().uri


def build(args, clients: AwsClients, now: datetime | None = None) -> dict:
    """The report as the JSON object ``--json`` prints."""
    if not args.endpoint and not args.capture:
        raise InvalidRequestError("Nothing to report on.", "Give --endpoint NAME, or --capture DIR_OR_S3 (offline).")
    now = now or datetime.now(UTC)
    config = None
    production, shadow = args.production_variant, args.shadow_variant
    if args.endpoint:
        _, config = _from_endpoint(args, clients)
        named_production, named_shadow = _variant_names(config)
        production, shadow = production or named_production, shadow or named_shadow
    captures, source = _read_captures(args, clients, config, now)
    if not captures.requests:
        raise traffic.TrafficError(
            f"No captured requests under {source}"
            + (f" in the last {duration(args.since.total_seconds())}" if args.since else "")
            + f" ({captures.files} capture files, {captures.malformed} unreadable lines).",
            "Send traffic (sagebert invoke), wait for the hour's file (SageMaker writes them every few minutes), "
            "or widen --since.",
        )
    production, shadow = report.roles(captures.requests, production, shadow)
    if not any(request.variant == production for request in captures.requests):
        raise traffic.TrafficError(
            f"No requests of production variant {production} were captured under {source}.",
            "Check --production-variant (the capture has: "
            + ", ".join(sorted({r.variant for r in captures.requests}))
            + ").",
        )
    by_variant: dict[str, list[CapturedRequest]] = {}
    for request in captures.requests:
        by_variant.setdefault(request.variant, []).append(request)
    variants = {}
    for name in sorted(by_variant):
        role = "production" if name == production else "shadow" if name == shadow else "other"
        variants[name] = report.summarize_variant(name, role, by_variant[name]).as_json()
    if args.endpoint:
        start = now - (args.since or timedelta(hours=24))
        for name in variants:
            variants[name]["cloudwatch"] = traffic.variant_metrics(clients, args.endpoint, name, start, now)
    matched = (
        report.agreement(by_variant.get(production, []), by_variant.get(shadow, [])) if shadow in by_variant else None
    )
    baseline_at = args.baseline or (_production_model_data(clients, config, production) if config is not None else None)
    result = {
        "source": source,
        "files": captures.files,
        "requests": len(captures.requests),
        "malformed": {"lines": captures.malformed, "examples": captures.examples},
        "production_variant": production,
        "shadow_variant": shadow,
        "variants": variants,
        "agreement": matched.share if matched else None,
        "agreement_detail": (
            {"compared": matched.compared, "agreed": matched.agreed, "disagreements": matched.disagreements}
            if matched
            else None
        ),
        "baseline": baseline_at,
        "drift": {},
        "drifted": False,
    }
    baseline = traffic.load_baseline(clients, baseline_at) if baseline_at else None
    if baseline_at and baseline is None:
        warn(f"{baseline_at} holds no baseline.json (trained before sagebert wrote one): no drift measured")
    if baseline is not None:
        try:
            report.check_baseline(baseline)
        except ValueError as exc:
            raise traffic.TrafficError(
                f"--baseline {baseline_at}: {exc}.", "Give the baseline.json training wrote."
            ) from None
        live = by_variant[production]
        texts = [text for request in live for text in request.texts]
        labels = [p.label for request in live for p in request.predictions]
        measures = report.drift(baseline, texts, labels, args.psi_threshold, args.coverage_drop)
        result["drift"] = {m.name: m.as_json() for m in measures}
        result["drifted"] = any(m.drifted for m in measures)
        result["plot_data"] = {
            "length_edges": list(report.LENGTH_EDGES),
            "baseline_length": baseline["length"]["counts"],
            "live_length": report.length_histogram(texts),
            "baseline_labels": baseline["labels"],
        }
    return result


def _cell(value, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:g}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def table(result: dict) -> list[str]:
    """The report as terminal lines."""
    lines = [
        f"Captured: {result['requests']} requests in {result['files']} files under {result['source']}"
        + (f"; {result['malformed']['lines']} unreadable lines skipped" if result["malformed"]["lines"] else "")
    ]
    lines += [f"  unreadable: {example}" for example in result["malformed"]["examples"]]
    header = f"{'variant':<20} {'role':<10} {'requests':>8} {'texts':>6}  {'labels':<24} {'conf>=0.9':>9}"
    with_cloudwatch = any("cloudwatch" in v for v in result["variants"].values())
    if with_cloudwatch:
        header += f" {'invocations':>11} {'4xx':>5} {'5xx':>5} {'p50 ms':>8} {'p99 ms':>8}"
    lines.append(header)
    for name, variant in result["variants"].items():
        labels = " ".join(f"{label}={count}" for label, count in variant["labels"].items())
        confident = sum(variant["confidence_histogram"]["counts"][-1:])
        scored = sum(variant["confidence_histogram"]["counts"])
        share = f"{confident / scored:.0%}" if scored else "-"
        row = (
            f"{name:<20} {variant['role']:<10} {variant['requests']:>8} {variant['texts']:>6}  {labels:<24} {share:>9}"
        )
        if with_cloudwatch:
            cw = variant.get("cloudwatch") or {}
            row += (
                f" {_cell(cw.get('Invocations')):>11} {_cell(cw.get('Invocation4XXErrors')):>5}"
                f" {_cell(cw.get('Invocation5XXErrors')):>5} {_cell(cw.get('latency_p50_ms')):>8}"
                f" {_cell(cw.get('latency_p99_ms')):>8}"
            )
        lines.append(row)
    detail = result["agreement_detail"]
    if detail is None:
        lines.append("Agreement: no shadow variant captured.")
    elif not detail["compared"]:
        lines.append("Agreement: no shadow request matched a production one (by inference id or content).")
    else:
        lines.append(
            f"Agreement: production and shadow gave the same label to {detail['agreed']} of {detail['compared']} "
            f"texts ({result['agreement']:.1%})."
        )
        for item in detail["disagreements"]:
            lines.append(f"  production={item['production']} shadow={item['shadow']}: {item['text'][:100]}")
    if not result["drift"]:
        lines.append("Drift: no baseline (give --baseline, or --endpoint for the production model's).")
    else:
        lines.append(f"Drift against {result['baseline']}:")
        for name, measure in result["drift"].items():
            verdict = "DRIFTED" if measure["drifted"] else "ok"
            lines.append(
                f"  {name:<20} {measure['kind']:<13} {measure['statistic']:8.4f}  threshold {measure['threshold']:<6g} "
                f"{verdict:<8} {measure['detail']}"
            )
        lines.append(f"Drifted: {'yes' if result['drifted'] else 'no'}")
    return lines


def plot(result: dict, path: str) -> None:
    """A PNG of the length and label distributions (baseline vs live) and each variant's confidence."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidRequestError(
            "--plot needs matplotlib, which is not installed here.", "pip install matplotlib, or drop --plot."
        ) from None
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    data = result.get("plot_data")
    if data:
        names = [f"<={e}" for e in data["length_edges"]] + [f">{data['length_edges'][-1]}"]
        for label, counts, offset in (("training", data["baseline_length"], -0.2), ("live", data["live_length"], 0.2)):
            total = sum(counts) or 1
            axes[0].bar([i + offset for i in range(len(counts))], [c / total for c in counts], 0.4, label=label)
        axes[0].set_xticks(range(len(names)), names, rotation=45)
        axes[0].set_title("text length (words)")
        axes[0].legend()
        labels = list(data["baseline_labels"])
        production = result["variants"][result["production_variant"]]["labels"]
        for label, counts, offset in (
            ("training", [data["baseline_labels"][n] for n in labels], -0.2),
            ("live", [production.get(n, 0) for n in labels], 0.2),
        ):
            total = sum(counts) or 1
            axes[1].bar([i + offset for i in range(len(labels))], [c / total for c in counts], 0.4, label=label)
        axes[1].set_xticks(range(len(labels)), labels)
        axes[1].set_title("label mix")
        axes[1].legend()
    for name, variant in result["variants"].items():
        counts = variant["confidence_histogram"]["counts"]
        axes[2].plot([(i + 0.5) / len(counts) for i in range(len(counts))], counts, marker="o", label=name)
    axes[2].set_title("confidence of the predicted label")
    axes[2].legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def run(args, clients: AwsClients) -> int:
    result = build(args, clients)
    if args.plot:
        plot(result, args.plot)
    result.pop("plot_data", None)
    if args.json:
        say(json.dumps(result, ensure_ascii=False, sort_keys=True))
    else:
        for line in table(result):
            say(line)
        if args.plot:
            say(f"Plot: {args.plot}")
    if args.fail_on_drift and result["drifted"]:
        drifted = ", ".join(name for name, m in result["drift"].items() if m["drifted"])
        return fail(f"drift beyond the thresholds: {drifted}.", DRIFTED)
    return OK
