"""The Dockerfile and its build context. No Docker engine runs here, so the image is not
built: the instructions are read, the context is cut as .dockerignore says, and the package is
built from that context as the image's `pip install .` would."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.deploy.tools import REPO, TOOL_TIMEOUT

ENTRYPOINT = ["failover", "run", "-c", "/etc/failover/config.yaml"]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, args = line.strip().partition(" ")
            found.append((instruction.upper(), args.strip()))
    return found


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it: `*` within one path element, `**` across
    elements."""
    out = ""
    for part in re.split(r"(\*\*|\*|\?)", glob.strip("/")):
        out += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
    return re.compile(out + r"\Z")


def _context() -> list[Path]:
    """Files Docker would send as the build context: a path is left out when the last
    .dockerignore pattern matching it or one of its parent folders is not a `!` pattern."""
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((_pattern(line.removeprefix("!")), negated))
    kept = []
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True,
                            timeout=TOOL_TIMEOUT).stdout.split()
    # git's view plus the ignored trees Docker would otherwise see (.venv, var, caches).
    candidates = {Path(p) for p in listed} | {
        p.relative_to(REPO) for d in (".venv", "var", ".git") for p in (REPO / d).glob("*")}
    for path in sorted(candidates):
        prefixes = [str(Path(*path.parts[:n])) for n in range(1, len(path.parts) + 1)]
        included = True
        for rule, negated in rules:
            if any(rule.match(prefix) for prefix in prefixes):
                included = negated
        if included:
            kept.append(path)
    return kept


def test_dockerfile_builds_from_python_slim_as_a_non_root_user() -> None:
    """python:3.11-slim base, `pip install .`, a non-root USER before the entrypoint."""
    instructions = _instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = [args for kind, args in instructions if kind == "RUN"]
    assert any("pip install ." in args for args in runs)
    [user] = [args for kind, args in instructions if kind == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    kinds = [kind for kind, _ in instructions]
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")


def test_entrypoint_runs_the_daemon_on_the_mounted_config() -> None:
    """The exec-form entrypoint is `failover run -c /etc/failover/config.yaml`, so SIGTERM
    reaches the daemon itself (no shell in between)."""
    [entrypoint] = [args for kind, args in _instructions() if kind == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ENTRYPOINT


def test_context_holds_what_the_copies_need_and_nothing_else() -> None:
    """Every COPY source is in the context; the venv, state, git and tests are not."""
    kept = _context()
    tops = {path.parts[0] for path in kept}
    for kind, args in _instructions():
        if kind == "COPY":
            for source in args.split()[:-1]:
                assert source in tops, f"COPY {source}: not in the build context"
    assert tops == {"pyproject.toml", "README.md", "failover"}
    assert not [p for p in kept if "__pycache__" in p.parts]


def test_package_builds_from_the_context(tmp_path: Path) -> None:
    """setuptools builds the package from exactly the context's files, modules and CLI entry
    point included: the image's `pip install .` has what it needs."""
    context = tmp_path / "context"
    for path in _context():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, context / path)
    # The backend's sdist hook, offline: it reads pyproject.toml and README.md and finds the
    # packages as a wheel build would, and needs nothing beyond the venv's setuptools.
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_sdist(sys.argv[1]))")
    result = subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")],
                            cwd=context, capture_output=True, text=True,
                            timeout=TOOL_TIMEOUT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    sdist = tmp_path / "dist" / result.stdout.split()[-1]
    with tarfile.open(sdist) as archive:
        names = {Path(*Path(n).parts[1:]).as_posix() for n in archive.getnames()}
        entry_points = next(m for m in archive.getmembers()
                            if m.name.endswith(".egg-info/entry_points.txt"))
        extracted = archive.extractfile(entry_points)
        assert extracted is not None
        console = extracted.read().decode()
    assert {"failover/cli/__init__.py", "failover/lab/command.py", "README.md", "PKG-INFO"} <= names
    assert "failover = failover.cli:main" in console
