"""Cutting a live stream into utterances, and utterances into numbers: pure, no I/O.

``Segmenter`` takes float32 mono blocks of any size at one sample rate and
yields ``Utterance`` objects: the samples of each stretch of speech, found by
an energy gate with hysteresis against a tracked noise floor, energy measured
in the speech band (``vad.band_energy_db``). Every decision
is made on a fixed grid of frames (10 ms by default) counted from the start of
the stream, so the utterances do not depend on how the stream was cut into
blocks. ``SequenceGrouper`` joins decisions separated by short pauses into
one number (a PIN, a phone number).
"""

from __future__ import annotations

import bisect
import collections
from dataclasses import dataclass, field

import numpy as np

from .vad import SILENCE_DB, SPEECH_BAND, WebRtcLevels, band_energy_db

CALIBRATION_MARGIN_DB = 3.0  # a noise frame's energy varies about this much below the typical
EDGE_FRAMES = 2  # frames after digital silence whose energy window still holds some of it


@dataclass(frozen=True)
class GateParams:
    """Settings of the voice-activity gate; durations in seconds, levels in dB.

    A frame's energy is the mean square, over it and the frame before, of the
    speech band (``band``) in dB relative to a full-scale signal (1.0). Speech
    starts when ``onset_frames`` frames in a row exceed
    ``max(floor + start_db, min_start_db)`` and ends when no frame exceeded
    ``max(floor + stop_db, min_start_db - (start_db - stop_db), peak - peak_drop_db)``
    for ``hangover`` seconds (``peak``: the utterance's loudest frame). An utterance longer
    than ``split_longer`` is cut into words at its dips (``valley_cuts``) as soon as they show;
    a faint sound right after a word is dropped as that word's release (``release_db``).
    """

    frame: float = 0.010
    """Frame length of the decision grid."""
    start_db: float = 6.0
    """Onset threshold above the noise floor."""
    stop_db: float = 3.0
    """Offset threshold above the noise floor (below start_db: hysteresis). At 2, quiet speech kept
    more of its weak endings, but chance onsets in fluctuating noise (rumble) ran on past
    min_duration and were reported as words."""
    min_start_db: float = -60.0
    """Absolute onset threshold, so digital silence and faint hiss never trigger."""
    band: tuple[float, float] | None = SPEECH_BAND
    """Frequencies (Hz) whose energy counts; None for the whole band."""
    vad: str = "energy"
    """Frame decision: "energy" (speech-band energy against the floor) or "webrtc"
    (WebRTC's classifier per 10 ms frame; the ``vad`` extra)."""
    peak_drop_db: float = 36.0
    """Speech also ends when it stays this far below its own loudest frame (clean, reverberant
    rooms: a floor far below speech would otherwise join digits spoken at a natural pace). At 30,
    the silent closure of a slow, clean "six" ended it before its "ks"."""
    onset_frames: int = 3
    """Consecutive loud frames needed to start (rejects clicks)."""
    pre_roll: float = 0.20
    """Audio kept before the onset, so soft onsets (s, f, th) are not clipped; in noise their
    onset lies below the start threshold for longer than 0.1 s."""
    tail: float = 0.10
    """Audio kept after the last loud frame."""
    hangover: float = 0.12
    """Quiet time that ends an utterance (the wait before a decision)."""
    min_duration: float = 0.07
    """Shorter bursts (onset to last loud frame) are dropped as noise. A quiet word's vowel may be
    all that clears the floor: at 0.1 s such words were dropped too."""
    max_duration: float = 1.5
    """Longer sound is cut here; the gate then waits for quiet before re-arming."""
    split_db: float | None = 12.0
    """Cut an utterance where its level stays, for ``split_span`` seconds, at least this far below
    the loudest frame on either side (two digits joined by a room's echo or a short pause);
    None never cuts."""
    split_span: float = 0.08
    """How long the dip must last (a word's own stop closures are mostly shorter)."""
    split_peak_db: float = 10.0
    """Both sides of a cut must hold a frame within this of the utterance's loudest (a vowel):
    a weak final consonant is never cut off as a word of its own."""
    split_longer: float = 0.7
    """Only utterances longer than this from their onset (tail included, pre-roll not) are cut:
    one digit rarely is."""
    release_db: float | None = 20.0
    """A sound whose first loud frame comes within ``release_gap`` of the previous word's last one,
    and whose loudest frame lies at least this far below that word's loudest, is that word's
    release, dropped: the burst of a slow "eight" or the "ks" of "six" after a stop closure longer
    than the hang-over, which was decided as a digit of its own. None never drops."""
    release_gap: float = 0.25
    """How soon after the previous word's last loud frame such a release starts; a digit said that
    soon after another is kept unless it is ``release_db`` quieter (docs/listening.md measures both)."""
    drop_long: bool = True
    """Drop sound longer than max_duration (no digit lasts that long: a fan switching on,
    a sentence) instead of reporting its first max_duration as a truncated utterance."""
    calibrate: float = 0.25
    """Seconds from the first sound (digital silence before it does not count) held until their
    quietest frame gives a first floor, then searched. After digital silence the hold goes on, up
    to max_duration, until the held frames span peak_drop_db: a word right after the zeros (a clip
    padded with them) is then measured against the quiet after it, not against its own vowel."""
    floor_window: float = 2.0
    """The noise floor is a low percentile of the frames outside speech in this window."""
    floor_percentile: float = 20.0
    """Which percentile: low enough to ignore bursts, high enough to be stable."""

    def __post_init__(self) -> None:
        if not 0.001 <= self.frame <= 0.1:
            raise ValueError("frame must be 1-100 ms")
        if self.stop_db > self.start_db:
            raise ValueError("stop_db must not exceed start_db")
        if self.onset_frames < 1:
            raise ValueError("onset_frames must be at least 1")
        if min(self.pre_roll, self.tail, self.hangover, self.min_duration, self.calibrate) < 0:
            raise ValueError("durations must not be negative")
        if self.vad not in ("energy", "webrtc"):
            raise ValueError("vad must be 'energy' or 'webrtc'")
        if self.max_duration <= self.min_duration:
            raise ValueError("max_duration must exceed min_duration")
        if self.floor_window < self.frame or not 0 <= self.floor_percentile <= 100:
            raise ValueError("floor_window must hold a frame; floor_percentile is 0-100")
        if self.split_db is not None and (self.split_db <= 0 or self.split_span < 0 or self.split_peak_db < 0):
            raise ValueError("split_db must be positive, split_span and split_peak_db not negative")
        if self.release_db is not None and (self.release_db <= 0 or self.release_gap < 0):
            raise ValueError("release_db must be positive and release_gap not negative")


def valley_cuts(
    levels: np.ndarray, min_frames: int, span: int, depth_db: float, peak_db: float, top: float | None = None
) -> list[int]:
    """Frame indices at which to cut an utterance's level curve into separate words, ascending.

    A cut at frame v needs at least ``min_frames`` frames on each side, both
    sides' loudest frames within ``peak_db`` of the loudest of all, and the
    loudest frame of the ``span`` frames centred on v at least ``depth_db``
    below the quieter of the two sides' loudest. The deepest such dip is cut
    first, then each side the same way.

    Args:
        levels: frame energies in dB, shape (n,).
        top: the loudest level the sides are held against (default: ``levels.max()``).
    """
    n = len(levels)
    if n < 2 * min_frames:
        return []
    half = span // 2
    padded = np.pad(levels, half, mode="edge")
    dip = np.max(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)
    left = np.maximum.accumulate(levels)  # loudest of [0, v]
    right = np.maximum.accumulate(levels[::-1])[::-1]  # loudest of [v, n)
    v = np.arange(min_frames, n - min_frames + 1)
    sides = np.minimum(left[v - 1], right[v])
    top = float(levels.max()) if top is None else top
    ok = sides >= top - peak_db
    depth = np.where(ok, sides - dip[v], -np.inf)
    best = int(np.argmax(depth))
    if depth[best] < depth_db:
        return []
    last = best  # the middle of the deepest stretch, not its first frame
    while last + 1 < len(depth) and depth[last + 1] == depth[best]:
        last += 1
    cut = int(v[(best + last) // 2])
    return (
        valley_cuts(levels[:cut], min_frames, span, depth_db, peak_db, top)
        + [cut]
        + [cut + c for c in valley_cuts(levels[cut:], min_frames, span, depth_db, peak_db, top)]
    )


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech.

    Attributes:
        start: first sample's time in seconds from the start of the stream (pre-roll included).
        end: end of speech (last loud frame plus tail) in seconds.
        samples: float32 samples from start to end, shape (round((end - start) * rate),).
        closed_at: stream time in seconds when the gate decided it was over
            (end of speech plus the remaining hang-over; for a word cut from a longer
            sound, when the dip after it was found).
        truncated: True when cut at max_duration.
        peak_db: level of its loudest frame as the gate measured it (speech band), dB re full scale.
    """

    start: float
    end: float
    samples: np.ndarray = field(repr=False)
    closed_at: float
    truncated: bool = False
    peak_db: float = SILENCE_DB


class Segmenter:
    """Energy voice-activity gate with hysteresis, noise tracking, pre-roll and hang-over.

    Feed blocks with ``process(block)``; it returns the utterances that ended
    within the stream so far. ``flush()`` ends the stream (an utterance still
    open is closed there). Memory stays bounded: at most pre-roll plus
    max_duration of audio is held.
    """

    def __init__(self, sample_rate: int, gate: GateParams | None = None) -> None:
        self.rate = int(sample_rate)
        self.gate = gate or GateParams()
        g = self.gate
        self.frame = max(1, int(round(g.frame * self.rate)))
        self._hangover = max(1, self._frames_of(g.hangover))
        self._tail = self._frames_of(g.tail)
        self._min_frames = max(1, self._frames_of(g.min_duration))
        self._max_frames = max(self._min_frames + 1, self._frames_of(g.max_duration))
        self._calibration = self._frames_of(g.calibrate)
        self._calibrating: list[tuple[np.ndarray, float]] = []  # frames held until the floor is known
        self._calibration_start: int | None = None  # frame of the first sound
        self._calibrated = self._calibration == 0
        self._floor_window = max(1, self._frames_of(g.floor_window))
        self._floor_recent: collections.deque[float] = collections.deque()
        self._floor_sorted: list[float] = []  # the same values, sorted
        self._webrtc = WebRtcLevels(self.rate) if g.vad == "webrtc" else None
        self._pending = np.zeros(0, dtype=np.float32)
        self._previous = np.zeros(self.frame, dtype=np.float32)  # the frame before the next one
        self._split_span = self._frames_of(g.split_span)
        self._split_longer = self._frames_of(g.split_longer)
        self._release_gap = self._frames_of(g.release_gap)
        self._word_before: tuple[int, float] | None = None  # (last loud frame, loudest dB) of the last word
        # (frame, level dB) pairs: the recent frames outside speech, and the open utterance's
        self._history: collections.deque[tuple[np.ndarray, float]] = collections.deque(
            maxlen=self._frames_of(g.pre_roll) + g.onset_frames
        )
        self._speech: list[tuple[np.ndarray, float]] = []
        self.frame_index = 0  # frames consumed
        self.floor: float | None = None
        self._state = "idle"  # idle | speech | refractory
        self._run = 0  # loud frames in a row (idle) / quiet frames in a row
        self._start_frame = 0  # first frame of the utterance (pre-roll included)
        self._last_loud = 0  # last frame above the stop threshold
        self._onset = 0  # first loud frame of the utterance
        self._peak = SILENCE_DB  # loudest frame of the utterance so far, dB

    @property
    def frame_seconds(self) -> float:
        """Length of one decision frame in seconds."""
        return self.frame / self.rate

    def _frames_of(self, seconds: float) -> int:
        return int(round(seconds * self.rate / self.frame))

    @property
    def settled(self) -> float:
        """Stream time in seconds before which no utterance can still start."""
        if self._calibrating:
            return (self.frame_index - len(self._calibrating) - len(self._history)) * self.frame_seconds
        if self._state == "speech":
            return self._start_frame * self.frame_seconds
        return (self.frame_index - len(self._history)) * self.frame_seconds

    def thresholds(self) -> tuple[float, float]:
        """(start, stop) thresholds in dB for the current noise floor."""
        g = self.gate
        floor = SILENCE_DB if self.floor is None else self.floor
        start = max(floor + g.start_db, g.min_start_db)
        stop = max(floor + g.stop_db, g.min_start_db - (g.start_db - g.stop_db))
        return start, stop

    def process(self, block: np.ndarray) -> list[Utterance]:
        """Consume the next samples (shape (n,), any n); return utterances that ended."""
        x = np.concatenate([self._pending, np.asarray(block, dtype=np.float32).reshape(-1)])
        n = len(x) // self.frame
        self._pending = x[n * self.frame :]
        if n == 0:
            return []
        frames = x[: n * self.frame].reshape(n, self.frame)
        previous, self._previous = self._previous, frames[-1]
        energies = self._webrtc(frames) if self._webrtc is not None else self._band_levels(frames, previous)
        return [u for frame, db in zip(frames, energies) for u in self._step(frame, float(db))]

    def _band_levels(self, frames: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """Speech-band level in dB of each of ``frames`` (shape (n, frame)), ``previous`` the frame
        before the first. Each is measured over it and the frame before (20 ms by default): long
        enough to hold two pitch periods, so voiced speech does not flicker."""
        before = np.concatenate([previous[None, :], frames[:-1]])
        return band_energy_db(np.hstack([before, frames]), self.rate, self.gate.band)

    def flush(self) -> list[Utterance]:
        """End of stream: close an open utterance (if long enough); drop a partial frame."""
        out = self._replay() if self._calibrating else []
        if self._state == "speech":
            out += self._close(truncated=False)
        self._pending = np.zeros(0, dtype=np.float32)
        return out

    def _track_floor(self, db: float) -> None:
        """Add a non-speech frame's energy; the floor is their windowed percentile."""
        self._floor_recent.append(db)
        bisect.insort(self._floor_sorted, db)
        if len(self._floor_recent) > self._floor_window:
            old = self._floor_recent.popleft()
            del self._floor_sorted[bisect.bisect_left(self._floor_sorted, old)]
        rank = self.gate.floor_percentile / 100 * (len(self._floor_sorted) - 1)
        self.floor = self._floor_sorted[int(round(rank))]

    def _step(self, frame: np.ndarray, db: float) -> list[Utterance]:
        """Advance the gate by one frame; return the utterances that just closed.

        Digital silence before the first sound (a device or a JACK port that
        delivers zeros while it starts) is no noise floor: calibration starts
        with the first frame that holds any signal.
        """
        index = self.frame_index
        self.frame_index += 1
        if self._calibration_start is None:
            if db <= SILENCE_DB and self._webrtc is None:
                return self._detect(frame, db, index, track=False)
            self._calibration_start = index
        if not self._calibrated:
            self._calibrating.append((frame, db))
            return self._replay() if self._calibration_done() else []
        return self._detect(frame, db, index)

    def _calibration_done(self) -> bool:
        """Whether the held frames are enough for a first floor: ``calibrate`` seconds; after
        digital silence, until their levels also span peak_drop_db (where speech ends) or reach
        max_duration."""
        held = len(self._calibrating)
        if held < self._calibration:
            return False
        if not self._calibration_start:  # no digital silence before: the stream's own start
            return True
        edge = self._edge_frames() if held > self._edge_frames() else 0
        levels = [db for _, db in self._calibrating[edge:]]
        return max(levels) - min(levels) >= self.gate.peak_drop_db or held >= self._max_frames

    def _edge_frames(self) -> int:
        """Held frames left out of the floor: after digital silence, the first EDGE_FRAMES."""
        return EDGE_FRAMES if self._calibration_start else 0

    def _replay(self) -> list[Utterance]:
        """Run the gate over the calibration frames, with a floor measured on them.

        The floor is their usual percentile, but at most CALIBRATION_MARGIN_DB
        above the quietest frame: a stream that starts with speech (a file
        holding one clip) has its speech found, the quietest frame lying below
        it, while noise alone gets its usual floor. After digital silence the
        first two frames are left out of the measure: their 20 ms windows still
        reach into the silence, so they lie below any noise that follows. The
        floor stays there for the replay (speech held before its onset is
        confirmed must not raise it); frames after it track it as usual.
        """
        held, self._calibrating, self._calibrated = self._calibrating, [], True
        edge = self._edge_frames() if len(held) > self._edge_frames() else 0
        levels = sorted(db for _, db in held[edge:])
        percentile = levels[int(round(self.gate.floor_percentile / 100 * (len(levels) - 1)))]
        quietest = min(percentile, levels[0] + CALIBRATION_MARGIN_DB)
        self.floor = quietest
        end, out, first = self.frame_index, [], self.frame_index - len(held)
        for index, (frame, db) in enumerate(held, first):
            self.frame_index = index + 1
            out += self._detect(frame, db, index, track=False)
        self.frame_index = end
        self._track_floor(quietest)  # later frames outside speech take over from here
        return out

    def _detect(self, frame: np.ndarray, db: float, index: int, track: bool = True) -> list[Utterance]:
        """The gate's state machine for frame ``index``; the utterances that just closed."""
        start, stop = self.thresholds()
        if self._state == "speech":
            self._speech.append((frame, db))
            self._peak = max(self._peak, db)
            if db > max(stop, self._peak - self.gate.peak_drop_db):
                self._last_loud = index
            if index - self._onset + 1 >= self._max_frames:
                self._last_loud = index
                return self._cut_open() or self._close(truncated=True)
            if index - self._last_loud >= self._hangover:
                return self._close(truncated=False)
            return self._cut_open()
        if track:
            self._track_floor(db)
        self._history.append((frame, db))
        if self._state == "refractory":
            self._run = self._run + 1 if db <= stop else 0
            if self._run >= self._hangover:
                self._state, self._run = "idle", 0
            return []
        self._run = self._run + 1 if db > start else 0
        if self._run >= self.gate.onset_frames:
            self._state = "speech"
            self._peak = db
            self._onset = index - self._run + 1
            self._last_loud = index
            self._speech = list(self._history)
            self._start_frame = index + 1 - len(self._speech)
            self._history.clear()
            self._run = 0
        return []

    def _cuts(self, speech: list[tuple[np.ndarray, float]]) -> list[int]:
        """Frame offsets at which held ``speech`` (frame, dB) pairs hold separate words (``valley_cuts``)."""
        g = self.gate
        pre_roll = max(0, self._onset - self._start_frame)  # frames before the onset
        if g.split_db is None or len(speech) - pre_roll <= self._split_longer:
            return []
        levels = np.array([db for _, db in speech])
        return valley_cuts(levels, self._min_frames, self._split_span, g.split_db, g.split_peak_db)

    def _utterances(
        self, speech: list[tuple[np.ndarray, float]], first: int, truncated: bool, cuts: list[int]
    ) -> list[Utterance]:
        """``speech`` (frames from frame ``first``) as utterances, cut at the frame offsets ``cuts``."""
        bounds = [0, *cuts, len(speech)]
        return [
            Utterance(
                start=(first + a) * self.frame_seconds,
                end=(first + b) * self.frame_seconds,
                samples=np.concatenate([frame for frame, _ in speech[a:b]]),
                closed_at=self.frame_index * self.frame_seconds,
                truncated=truncated,
                peak_db=self._peak_db(speech[a:b]),
            )
            for a, b in zip(bounds, bounds[1:])
        ]

    def _peak_db(self, speech: list[tuple[np.ndarray, float]]) -> float:
        """The loudest of these (frame, level) pairs' speech-band levels, dB re full scale (WebRTC's
        levels are its decisions, so for it they are measured here)."""
        if self._webrtc is None:
            return max(db for _, db in speech)
        frames = np.stack([frame for frame, _ in speech])
        return float(self._band_levels(frames, frames[0]).max())

    def _cut_open(self) -> list[Utterance]:
        """The words before the open utterance's last dip, once it is longer than ``split_longer``;
        the rest stays open. Decided frame by frame, so a word joined to the next by an echo is
        decided as soon as the next word's vowel shows the dip between them."""
        cuts = self._cuts(self._speech)
        if not cuts:
            return []
        last = cuts[-1]
        done = self._utterances(self._speech[:last], self._start_frame, False, cuts[:-1])
        self._speech = self._speech[last:]
        self._start_frame += last
        self._word_before = (self._start_frame - 1, done[-1].peak_db)
        self._onset = max(self._onset, self._start_frame)
        self._peak = max(db for _, db in self._speech)
        return done

    def _close(self, truncated: bool) -> list[Utterance]:
        """Close the open utterance at the last loud frame plus tail, cut into words at its dips."""
        end_frame = min(self._last_loud + 1 + self._tail, self._start_frame + len(self._speech))
        keep = end_frame - self._start_frame
        speech, after = self._speech[:keep], self._speech[keep:]
        self._speech = []
        self._history.clear()
        self._history.extend(after)  # pre-roll for the next utterance
        self._state = "refractory" if truncated else "idle"
        self._run = 0
        if self._last_loud + 1 - self._onset < self._min_frames or (truncated and self.gate.drop_long):
            return []
        words = self._utterances(speech, self._start_frame, truncated, [] if truncated else self._cuts(speech))
        before = self._word_before
        if before is not None and self._is_release(max(word.peak_db for word in words), *before):
            self._word_before = (self._last_loud, before[1])  # a second release may follow
            return []
        self._word_before = (self._last_loud, words[-1].peak_db)
        return words

    def _is_release(self, peak_db: float, last_loud: int, word_peak: float) -> bool:
        """Whether the sound closing now, loudest at ``peak_db``, is the release of the word before it,
        whose last loud frame was ``last_loud`` and loudest level ``word_peak`` (``GateParams.release_db``)."""
        g = self.gate
        return (
            g.release_db is not None
            and self._onset - last_loud <= self._release_gap
            and word_peak - peak_db >= g.release_db
        )


class SequenceGrouper:
    """Join decisions into numbers: a pause longer than ``gap`` seconds ends a number.

    ``add(item, start, end)`` records one decision (any item: a digit, or None
    for unknown); ``advance(now)`` returns the groups whose pause has already
    passed at stream time ``now``; ``flush()`` returns what is left. Each group
    is a list of (item, start, end).
    """

    def __init__(self, gap: float = 1.0) -> None:
        self.gap = gap
        self._group: list[tuple[object, float, float]] = []

    def add(self, item: object, start: float, end: float) -> list[list[tuple[object, float, float]]]:
        """Record a decision; returns a finished group if this one starts after a long pause."""
        done = self.advance(start)
        self._group.append((item, start, end))
        return done

    def advance(self, now: float) -> list[list[tuple[object, float, float]]]:
        """Groups finished by stream time ``now`` (seconds)."""
        if self._group and now - self._group[-1][2] > self.gap:
            return self.flush()
        return []

    def flush(self) -> list[list[tuple[object, float, float]]]:
        """The open group, if any (end of stream)."""
        group, self._group = self._group, []
        return [group] if group else []
