"""From audio blocks to digit decisions: resample -> segment -> features -> model -> decision.

``Recognizer`` is the one decision path: ``listen`` feeds it live blocks,
``predict`` and ``recognize_file`` feed it a file's blocks, so both decide
the same samples the same way. No I/O here besides ``recognize_file``'s reading.
"""

from __future__ import annotations

import collections
import math
import os
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .model import UNKNOWN_AT, Model
from .resample import Resampler
from .stream import GateParams, Segmenter, Utterance
from .wav import open_audio

BLOCK_SECONDS = 0.05  # block length when reading a file
BACKGROUND_SECONDS = 10.0
"""How long a digit's level counts as the speaker's for ``background_db``."""
MIN_CONFIDENCE = 0.3
"""The default gate: a digit decided with a lower probability is reported as unknown. 0.3 since
the default model trains with mixup, which leaves it less sure of the digits it gets right (at 0.4
it gave up 2 points of held-out digits for its sharper rejection; see docs/measurements.md)."""


def label_value(label: str | None) -> int | str | None:
    """A digit label as an int for JSON; any other label (or None) unchanged."""
    return int(label) if label is not None and label.isdigit() else label


@dataclass(frozen=True)
class Detection:
    """The decision for one utterance; times in seconds from the start of the stream.

    ``digit`` is None when the utterance is rejected (unknown): the best label
    is not a digit, or its probability is below the recognizer's
    ``min_confidence``. ``label`` is the best guess anyway; ``top`` the
    best (label, probability) pairs. ``latency_ms`` runs from the arrival of
    the block that ended the utterance (end of speech plus hang-over) to the decision.
    """

    start: float
    end: float
    digit: str | None
    label: str
    confidence: float
    latency_ms: float
    hangover_ms: float
    truncated: bool
    top: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON record ``listen --json`` prints."""
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "digit": label_value(self.digit),
            "label": label_value(self.label),
            "confidence": round(self.confidence, 4),
            "latency_ms": round(self.latency_ms, 2),
            "hangover_ms": round(self.hangover_ms, 1),
            "truncated": self.truncated,
        }


class Recognizer:
    """Blocks at the source rate -> resample -> segment -> classify.

    Args:
        model: the loaded model; its params give the working sample rate.
        source_rate: rate of the blocks fed in, Hz.
        gate: voice-activity gate settings.
        min_confidence: decisions below this probability are reported as unknown.
        shifts: average the probabilities over this many starts of the utterance,
            hop_length / shifts samples apart (1: exactly ``Model.classify``). The
            utterance's position on the MFCC frame grid is arbitrary, and a model
            can be sensitive to it; averaging removes that chance. Each start is
            decided over the model's mel warps (``Model.utterance_probabilities``).
        top_k: how many (label, probability) pairs each Detection keeps in ``top``.
        unknown_at: a model's ``unknown`` label is decided only with at least this
            probability, else its best digit (``model.decision_indices``).
        background_db: an utterance whose loudest frame lies this far below the median level
            of the digits reported in the last BACKGROUND_SECONDS (each digit's loudest frame)
            is background talk (a TV, other people at a distance) and is dropped undecided;
            None keeps every utterance.
    """

    def __init__(
        self,
        model: Model,
        source_rate: int,
        gate: GateParams | None = None,
        min_confidence: float = MIN_CONFIDENCE,
        shifts: int = 4,
        top_k: int = 3,
        unknown_at: float = UNKNOWN_AT,
        background_db: float | None = None,
    ) -> None:
        if not 0 <= min_confidence <= 1 or math.isnan(min_confidence):
            raise ValueError("min_confidence must be within 0-1")
        if not 0 <= unknown_at <= 1 or math.isnan(unknown_at):
            raise ValueError("unknown_at must be within 0-1")
        if background_db is not None and not background_db > 0:
            raise ValueError("background_db must be positive")
        self.unknown_at = unknown_at
        self.background_db = background_db
        self._loud: collections.deque[tuple[float, float]] = collections.deque()  # (end s, peak dB) of digits
        self.model = model
        self.shifts = max(1, int(shifts))
        self.top_k = max(1, int(top_k))
        self.rate = model.params.sample_rate
        self.source_rate = int(source_rate)
        self.resampler = Resampler(self.source_rate, self.rate)
        self.segmenter = Segmenter(self.rate, gate)
        self.min_confidence = min_confidence
        self.samples_in = 0

    @property
    def stream_time(self) -> float:
        """Seconds of source audio consumed so far."""
        return self.samples_in / self.source_rate

    @property
    def settled(self) -> float:
        """Stream time before which no utterance can still start (for --sequence)."""
        return self.segmenter.settled

    def feed(self, block: np.ndarray, arrived: float | None = None) -> list[Detection]:
        """Consume one block (float32 mono at source_rate); return decisions that became due.

        Args:
            block: samples, shape (n,).
            arrived: time.perf_counter() when the block arrived (default: now).
        """
        arrived = time.perf_counter() if arrived is None else arrived
        self.samples_in += len(block)
        return self._decide_all(self.segmenter.process(self.resampler.process(block)), arrived)

    def finish(self) -> list[Detection]:
        """End of stream: decide the utterance still open, if any."""
        arrived = time.perf_counter()
        utterances = self.segmenter.process(self.resampler.flush()) + self.segmenter.flush()
        return self._decide_all(utterances, arrived)

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_labels,), of one utterance at the model's rate."""
        hop = self.model.params.hop_length
        return np.mean(
            [self.model.utterance_probabilities(samples[k * hop // self.shifts :]) for k in range(self.shifts)], axis=0
        )

    def _decide_all(self, utterances: list[Utterance], arrived: float) -> list[Detection]:
        """Decisions for the utterances in order, background talk left out (``background_db``)."""
        out = []
        for utterance in utterances:
            if self._in_background(utterance):
                continue
            detection = self._decide(utterance, arrived)
            if detection.digit is not None and self.background_db is not None:
                self._loud.append((utterance.end, utterance.peak_db))
            out.append(detection)
        return out

    def _in_background(self, utterance: Utterance) -> bool:
        if self.background_db is None:
            return False
        while self._loud and utterance.start - self._loud[0][0] > BACKGROUND_SECONDS:
            self._loud.popleft()
        return bool(self._loud) and utterance.peak_db < np.median([p for _, p in self._loud]) - self.background_db

    def _decide(self, utterance: Utterance, arrived: float) -> Detection:
        prediction = self.model.decide(self.probabilities(utterance.samples), self.top_k, self.unknown_at)
        known = prediction.label.isdigit() and prediction.probability >= self.min_confidence
        return Detection(
            start=utterance.start,
            end=utterance.end,
            digit=prediction.label if known else None,
            label=prediction.label,
            confidence=prediction.probability,
            latency_ms=(time.perf_counter() - arrived) * 1e3,
            hangover_ms=(utterance.closed_at - utterance.end) * 1e3,
            truncated=utterance.truncated,
            top=tuple(prediction.top),
        )


@dataclass(frozen=True)
class FileResult:
    """What a file holds: its decisions in order, its rate (Hz) and length (s)."""

    detections: list[Detection]
    sample_rate: int
    seconds: float


def recognize_file(model: Model, source: str | os.PathLike | bytes | BinaryIO, **options: Any) -> FileResult:
    """Every decision in an audio file or stream, read in 50 ms blocks (bounded memory).

    Args:
        model: the loaded model.
        source: a path (file or FIFO; ``-`` is stdin), WAV bytes or a binary stream.
        **options: passed to ``Recognizer`` (gate, min_confidence, shifts, top_k, unknown_at).
    """
    with open_audio(source) as audio:
        recognizer = Recognizer(model, audio.sample_rate, **options)
        detections = []
        for block in audio.blocks(max(1, int(audio.sample_rate * BLOCK_SECONDS))):
            detections += recognizer.feed(block)
        detections += recognizer.finish()
        return FileResult(detections, audio.sample_rate, recognizer.stream_time)
