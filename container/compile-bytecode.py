"""Compile to bytecode the modules that `train` and `serve` import, and no others.

    python compile-bytecode.py LIST site-packages      # the running Python's site-packages
    python compile-bytecode.py LIST stdlib INTO        # its standard library, where bytecode is
                                                       # absent, written under the directory INTO

LIST (container/bytecode-modules.txt, made by `benchmarks/image.py imports`) names module files
relative to lib/python3.11/: `site-packages/...` for installed packages, the rest for the
standard library. Bytecode for every installed module would add about 220 MB; these modules are
about 85 MB of it and hold the whole start-up gain, since nothing else is imported. Modules not in
the list still work: Python compiles them in memory at import (the image sets
PYTHONDONTWRITEBYTECODE). The files are unchecked-hash pycs: valid whatever the modification
times of the sources become in later layers. The standard library is compiled only where the base
image ships it without bytecode (python:3.11-slim deletes its .pyc files; Debian's python3.11
has them), into a separate tree (INTO/usr/...) that the final stage copies onto its root: empty,
and a layer of 0 bytes, on a base that already has them.
"""

from __future__ import annotations

import importlib.util
import py_compile
import sys
import sysconfig
from pathlib import Path

SITE = "site-packages/"


def wanted(lines: list[str], part: str) -> list[str]:
    """The entries of the list for one part: ``site-packages`` or ``stdlib``."""
    entries = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    if part == "site-packages":
        return [e.removeprefix(SITE) for e in entries if e.startswith(SITE)]
    return [e for e in entries if not e.startswith(SITE)]


def compile_modules(root: Path, relative_paths: list[str], into: Path | None) -> tuple[int, list[str]]:
    """Compile each file under ``root``; return how many were written and which were absent.

    With ``into``, modules that already have bytecode are skipped and the rest written under
    ``into`` (at the path their cache file has from /), not next to their sources.
    """
    written, absent = 0, []
    for relative in relative_paths:
        source = root / relative
        if not source.is_file():
            absent.append(relative)
            continue
        cache = Path(importlib.util.cache_from_source(str(source)))
        if into is not None:
            if cache.exists():
                continue
            cache = into / cache.relative_to(cache.anchor)
        py_compile.compile(
            str(source), cfile=str(cache), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        written += 1
    return written, absent


def main(argv: list[str]) -> int:
    if argv[1:2] == ["site-packages"] and len(argv) == 2:
        into = None
    elif argv[1:2] == ["stdlib"] and len(argv) == 3:
        into = Path(argv[2])
    else:
        print("usage: compile-bytecode.py LIST site-packages | compile-bytecode.py LIST stdlib INTO", file=sys.stderr)
        return 64
    listing, part = Path(argv[0]), argv[1]
    paths = sysconfig.get_paths()
    root = Path(paths["purelib"] if part == "site-packages" else paths["stdlib"])
    written, absent = compile_modules(root, wanted(listing.read_text().splitlines(), part), into)
    print(f"bytecode: {written} modules compiled in {root}; {len(absent)} listed but absent here")
    if absent and part == "site-packages":
        print("  the list is older than the locks; regenerate it: benchmarks/image.py imports")
    if absent:
        print("  e.g. " + ", ".join(absent[:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
