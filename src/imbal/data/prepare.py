"""``imbal data prepare``: load a source with its loader and write its cache (one layer above both).

:mod:`imbal.data.cache` reads and writes caches, :mod:`imbal.data.load` turns a source into
splits (a cache among them); building a cache needs both, so it lives here and neither of them
imports the other back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imbal.data import load
from imbal.data.cache import (
    CacheTaken,
    check_cache,
    describe_source,
    identity,
    normalize_source,
    read_manifest,
    remove_stale_builds,
    user_os_error,
    write_cache,
)
from imbal.data.cache_manifest import cache_files
from imbal.errors import DataError


def prepare_cache(
    source: str | dict[str, Any],
    out: str | Path,
    *,
    size: int = 28,
    force: bool = False,
    verify: bool = False,
) -> tuple[Path, bool]:
    """Build the cache of ``source`` at ``out``; returns ``(out, reused)``.

    A cache already at ``out`` is reused when its source and settings match (checked like
    :func:`load_cache`, checksums too with ``verify``) and refused when they differ, unless ``force``.
    Two prepares racing for one ``out`` never replace each other's cache unasked: the one that
    finishes second reuses the first's cache when it is of the same source and settings, and is
    refused otherwise (with ``force``: when the cache it judged was replaced meanwhile).
    """
    out = Path(out).expanduser().absolute()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise user_os_error(exc, f"create {out.parent} for the cache") or exc from None
    remove_stale_builds(out)
    spec, settings = normalize_source(source), {"size": size}
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; name a folder for the cache")
    replaces = identity(out)
    if replaces is not None:
        strangers = sorted(p.name for p in out.iterdir() if p.name not in cache_files())
        if strangers:
            # not even --force replaces a folder of other files named by mistake
            raise DataError(
                f"{out} holds files that are not part of a cache ({', '.join(strangers[:3])}); "
                "choose another --out"
            )
        if not force:
            manifest = read_manifest(out)  # raises for an unfinished or damaged cache
            if manifest.get("source") != spec or manifest.get("settings") != settings:
                old = describe_source(manifest.get("source"), manifest.get("settings") or {})
                raise DataError(
                    f"{out} holds a cache of {old}, not of {describe_source(spec, settings)}; "
                    "pass --force to rebuild it or choose another --out"
                )
            check_cache(out, manifest, verify=verify)
            return out, True
    splits = load.load_dataset(source, size=size)  # through the module: tests replace it there
    try:
        write_cache(splits, out, source=spec, settings=settings, replaces=replaces)
    except CacheTaken as exc:
        m = exc.manifest
        if m is not None and m.get("source") == spec and m.get("settings") == settings:
            check_cache(out, verify=verify)  # another prepare of the same data finished first
            return out, True
        raise
    return out, False
