"""Clusters from discovery files: what each file last said that the daemon could take up.

A file that does not parse, or whose clusters do not fit with the rest (a clashing name,
the probe budget), is reported with where and why and keeps its last good content. A
cluster gone from every file is not dropped at once: it runs at weight 0 until the plan
gives it nothing (as a deregistered one), then goes.
"""

from __future__ import annotations

import glob
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from failover.config import Cluster
from failover.config.base import Strict
from failover.config.files import CONFIG_LIMIT, FileProblem, read_limited
from failover.config.loader import parse_model

log = logging.getLogger("failover.discovery")


class _File(Strict):
    clusters: list[Cluster] = Field(default_factory=list)


@dataclass
class Source:
    digest: bytes | None = None
    """Of the content last read, taken up or not: unchanged content is not read again."""
    clusters: dict[str, Cluster] = field(default_factory=dict)
    """The last good content."""
    error: str | None = None


def read(patterns: Sequence[str]) -> dict[Path, bytes | None]:
    """Every file the patterns match now, with its content (None: matched but unreadable,
    as mid-rename). Blocking: run it on a thread."""
    found: dict[Path, bytes | None] = {}
    for pattern in patterns:
        for name in sorted(glob.glob(pattern)):
            path = Path(name)
            try:
                found[path] = read_limited(path, CONFIG_LIMIT)
            except (OSError, ValueError, FileProblem):
                found[path] = None
    return found


def parse(path: Path, content: bytes) -> list[Cluster]:
    """Raises ConfigError, located ``file:line: key: message``."""
    text = content.decode("utf-8", errors="replace")
    return parse_model(_File, text, str(path), {"base_dir": path.parent}).clusters


class Discovery:
    def __init__(self) -> None:
        self.sources: dict[Path, Source] = {}
        self.leaving: dict[str, Cluster] = {}
        """Gone from every file, run at weight 0 until their share is 0 everywhere."""

    def active(self, replacing: tuple[Path, dict[str, Cluster]] | None = None,
               ) -> dict[str, Cluster]:
        sources = {path: s.clusters for path, s in self.sources.items()}
        if replacing is not None:
            sources[replacing[0]] = replacing[1]
        found: dict[str, Cluster] = {}
        for path in sorted(sources):
            found.update(sources[path])
        return found

    def running(self, replacing: tuple[Path, dict[str, Cluster]] | None = None,
                ) -> list[Cluster]:
        active = self.active(replacing)
        return [*active.values(),
                *(c.model_copy(update={"weight": 0}) for name, c in self.leaving.items()
                  if name not in active)]

    def changed(self, found: dict[Path, bytes | None]) -> Iterable[tuple[Path, bytes | None]]:
        """Files whose content differs from what was last read; a file gone reads None."""
        for path in sorted(set(found) | set(self.sources)):
            content = found.get(path)
            digest = None if content is None else digest_of(content)
            source = self.sources.get(path)
            if path not in found:
                yield path, None
            elif content is not None and (source is None or source.digest != digest):
                yield path, content

    def take(self, path: Path, clusters: dict[str, Cluster] | None,
             digest: bytes | None) -> None:
        """What ``path`` says now (None: the file is gone), already checked to fit."""
        before = self.active()
        if clusters is None:
            self.sources.pop(path, None)
        else:
            self.sources[path] = Source(digest, clusters)
        after = self.active()
        for name, cluster in before.items():
            if name not in after:
                log.warning("%s is gone from the discovery files: its share goes to 0, then it "
                            "is removed", name)
                self.leaving[name] = cluster
        for name in after:
            self.leaving.pop(name, None)

    def refuse(self, path: Path, digest: bytes | None, why: str) -> bool:
        """Keep ``path``'s last good content; True when this is news (log it once)."""
        source = self.sources.setdefault(path, Source())
        news = source.error != why
        source.digest, source.error = digest, why
        return news

    def status(self) -> list[dict[str, object]]:
        return [{"file": str(path), "clusters": sorted(source.clusters),
                 "error": source.error} for path, source in sorted(self.sources.items())]


def digest_of(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()
