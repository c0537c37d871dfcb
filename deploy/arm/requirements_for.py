"""Print the requirements a wheel has on another machine (its markers evaluated for that machine).

    python deploy/arm/requirements_for.py dist/audiomnist_edge-0.1.0-py3-none-any.whl armv7l 3.11

pip evaluates markers for the machine it runs on, even with --platform; this gives the
requirements a Raspberry Pi's pip would see, so the host can fetch exactly those wheels.
"""

from __future__ import annotations

import sys
import zipfile
from email.parser import Parser

from packaging.requirements import Requirement


def requirements(wheel: str, machine: str, python: str, extras: tuple[str, ...] = ()) -> list[str]:
    """Requires-Dist lines of ``wheel`` that apply on Linux ``machine`` with Python ``python``."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    environment = {"platform_machine": machine, "python_version": python, "python_full_version": f"{python}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython"}
    chosen = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        wanted = [{**environment, "extra": extra} for extra in ("", *extras)]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in wanted):
            requirement.marker = None
            chosen.append(str(requirement))
    return chosen


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: requirements_for.py WHEEL MACHINE PYTHON_VERSION")
    print("\n".join(requirements(*sys.argv[1:4])))
