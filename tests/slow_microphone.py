"""A worker too slow for a real microphone, for tests/test_listen_pulse_faults.py.

Run as a script in the environment of a sound server (``python tests/slow_microphone.py DEVICE RATE``):
it opens ``sources.Microphone`` with 10 ms blocks, takes the first block, sleeps twice as long as
the queue's QUEUE_BLOCKS blocks last, reads on for a queue and a bit, and prints the counters and
the warnings it was given as one JSON object.
"""

from __future__ import annotations

import json
import sys
import time

from audiomnist_edge.sources import QUEUE_BLOCKS, Microphone

BLOCK_SECONDS = 0.01


def main(device: str, rate: int) -> None:
    warnings: list[str] = []
    with Microphone(device, rate, rate, 1, round(BLOCK_SECONDS * rate), warn=warnings.append) as mic:
        blocks = mic.blocks()
        next(blocks)
        time.sleep(2 * QUEUE_BLOCKS * BLOCK_SECONDS)  # the queue is full half-way: the rest is dropped
        for _ in range(QUEUE_BLOCKS + 10):  # what the queue held, then blocks arriving in real time
            next(blocks)
    counts = {"dropped": mic.dropped, "overflows": mic.overflows, "received": mic.received}
    print(json.dumps({**counts, "warnings": warnings}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
