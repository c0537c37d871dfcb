"""Command-line options shared by several commands (click glue only)."""

from __future__ import annotations

import math
from typing import Any, Callable

import click

from .artifact import MAX_WARPS, check_warps
from .model import UNKNOWN_AT
from .recognizer import BACKGROUND_SECONDS, MIN_CONFIDENCE


def finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Refuse NaN, which click's FloatRange lets through (every comparison with NaN is false)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("must be a number, not nan")
    return value


def parse_warps(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """--warps W[,W...] -> the mel warps (None when not given); a usage error unless 1-8 numbers in 0.7-1.3."""
    if value is None:
        return None
    try:
        warps = tuple(float(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if check_warps(list(warps)):
        raise click.BadParameter(f"{value!r}: give 1-{MAX_WARPS} warps within 0.7-1.3")
    return warps


def decision_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--min-confidence, --unknown-at and --background-db: how predict and listen turn utterances
    into decisions."""
    command = click.option(
        "--background-db",
        type=click.FloatRange(0, min_open=True),
        default=None,
        callback=finite,
        metavar="DB",
        help=f"Drop, undecided, an utterance whose loudest part is DB quieter than the digits "
        f"reported in the last {BACKGROUND_SECONDS:g} s (their median): background talk (a TV, people "
        "at a distance). 12 is a good start; a speaker who turns away mid-number may then lose a digit. "
        "[default: off]",
    )(command)
    command = click.option(
        "--unknown-at",
        type=click.FloatRange(0, 1),
        default=UNKNOWN_AT,
        show_default=True,
        callback=finite,
        help="A model with an 'unknown' label (not a digit) decides it whenever it has at least this "
        "probability, else its best digit: lower rejects more (below 0.5 even where a digit is more "
        "probable: 0.3 is a strict gate), 1 almost never.",
    )(command)
    return click.option(
        "--min-confidence",
        type=click.FloatRange(0, 1),
        default=MIN_CONFIDENCE,
        show_default=True,
        callback=finite,
        help="Digits decided with a lower probability are reported as unknown ('?').",
    )(command)
