"""Peak resident memory of the running process, with the standard library only."""

from __future__ import annotations

import resource
import sys


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes.

    On Linux this is VmHWM from /proc/self/status: getrusage's ru_maxrss would
    carry over the peak of the process that spawned this one, since Linux keeps
    it across exec. Elsewhere it is getrusage's ru_maxrss (bytes on macOS,
    kilobytes on other systems).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
