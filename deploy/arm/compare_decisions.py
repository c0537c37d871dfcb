"""Compare two runs of `predict --json` on the same files: the x86_64 reference and an emulated ARM run.

Usage: python compare_decisions.py REFERENCE.jsonl OTHER.jsonl

Every file must get the same digit. The one exception is a file whose reference decision lies
within TOLERANCE of a gate (``--min-confidence`` for the best digit, ``--unknown-at`` for
``unknown``): an int8 output moves in steps of 1/256, and one step on another CPU may carry
it across the gate. Such files are listed, not failed. Prints one summary line; exit 1 on a
real difference or a file missing from either run.
"""

from __future__ import annotations

import json
import os
import sys

from audiomnist_edge.model import UNKNOWN_AT
from audiomnist_edge.recognizer import MIN_CONFIDENCE

TOLERANCE = 0.02  # about 5 int8 steps of the output


def decisions(path: str) -> dict[str, dict]:
    """File name -> its predict --json record."""
    with open(path) as handle:
        return {os.path.basename(r["file"]): r for r in map(json.loads, handle)}


def shown(record: dict) -> str:
    """The decision as predict prints it: the digit, "?" for none, or the error."""
    if "error" in record:
        return f"error: {record['error']}"
    return "?" if record.get("digit") is None else str(record["digit"])


def at_a_gate(record: dict) -> bool:
    """True when the record's decision lies within TOLERANCE of --min-confidence or --unknown-at."""
    top = {str(label): p for label, p in record.get("top", [])}
    best = record.get("probability")
    near_confidence = best is not None and abs(best - MIN_CONFIDENCE) <= TOLERANCE
    return near_confidence or abs(top.get("unknown", 0.0) - UNKNOWN_AT) <= TOLERANCE


def main(reference_path: str, other_path: str) -> int:
    reference, other = decisions(reference_path), decisions(other_path)
    if set(reference) != set(other):
        print(f"files differ: {sorted(set(reference) ^ set(other))}")
        return 1
    tolerated, failed = [], []
    for name in sorted(reference):
        a, b = (shown(r[name]) for r in (reference, other))
        if a != b:
            (tolerated if at_a_gate(reference[name]) else failed).append(f"{name}: {a} here, {b} there")
    for line in failed:
        print(f"differs: {line}")
    same = len(reference) - len(tolerated) - len(failed)
    note = f"; {len(tolerated)} at a gate ({', '.join(tolerated)})" if tolerated else ""
    print(f"{same}/{len(reference)} digits identical to x86_64{note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
