"""What `pip install cg-graphs` gets: the wheel built from this tree holds every module, the typing
marker, the library of functions and the licence; and the lower bounds of pyproject.toml are the
versions that `make test-lowest` installs (tools/lowest_constraints.py), so they are tested."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from types import ModuleType

import pytest
from conftest import ROOT


def lowest_constraints() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / "tools" / "lowest_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PYPROJECT = lowest_constraints().load(ROOT / "pyproject.toml")  # tomllib, or on 3.10 the tool's own reader


def release(version: str) -> tuple[int, ...]:
    """The numbers of a version, padded: "7" and "7.0.0" compare equal, "6.0.12.2026" > "6.0"."""
    head = re.match(r"[\d.]*", version)
    numbers = [int(n) for n in re.findall(r"\d+", head.group(0) if head else "")]
    return tuple(numbers + [0] * (4 - len(numbers)))


# ---- the wheel ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel, built as pip builds it for a user, from a copy of the files it is made of (so the
    build leaves nothing in the work tree); with this venv's setuptools, offline."""
    try:
        have = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        have = "0"
    tool = lowest_constraints()
    need = {n: v for n, v, _ in map(tool.lower_bound, PYPROJECT["build-system"]["requires"])}["setuptools"]
    if release(have) < release(need):
        pytest.skip(f"setuptools>={need} is not installed (pip install -e '.[dev]')")
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "out"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "cg", src / "cg", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [built] = out.glob("*.whl")
    assert built.name.startswith("cg_graphs-")
    return zipfile.ZipFile(built)


def dist_info(wheel: zipfile.ZipFile) -> str:
    [folder] = {n.split("/")[0] for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info")}
    return folder


def test_the_wheel_holds_every_module_of_cg_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cg").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules and modules <= names, sorted(modules - names)
    info = dist_info(wheel)
    assert {n.split("/")[0] for n in names} == {"cg", info}  # no tests/, tools/, graphs/ at the top
    entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert re.search(r"^cg = cg\.cli:main$", entry_points, re.M), entry_points


def test_the_wheel_is_typed_and_ships_the_library_of_functions(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "cg/py.typed" in names  # PEP 561: mypy reads cg's annotations in a user's project
    # Every library file of cg/lib/, as in the source tree: `imports: [cg:nn]` works for a pip user.
    library = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "cg" / "lib").glob("*.yaml"))
    assert "cg/lib/nn.yaml" in library and [n for n in library if n not in names] == []  # `imports: [cg:nn]`
    for name in library:
        assert wheel.read(name) == (ROOT / name).read_bytes()


def test_the_wheel_carries_the_mit_licence_in_file_and_metadata(wheel: zipfile.ZipFile) -> None:
    info = dist_info(wheel)
    licence = (ROOT / "LICENSE").read_bytes()
    assert licence.startswith(b"MIT License") and b"the cg developers" in licence
    files = [n for n in wheel.namelist() if n.startswith(f"{info}/") and n.rsplit("/", 1)[-1] == "LICENSE"]
    assert files and all(wheel.read(n) == licence for n in files), files
    metadata = HeaderParser().parsestr(wheel.read(f"{info}/METADATA").decode())
    assert metadata["Name"] == "cg-graphs"
    assert metadata["License-Expression"] == "MIT", metadata.items()  # what `pip show` and the index show
    assert "LICENSE" in (metadata.get_all("License-File") or [])


# ---- the lower bounds ---------------------------------------------------------------------------


def test_every_runtime_requirement_has_a_lower_bound_that_test_lowest_installs() -> None:
    tool = lowest_constraints()
    runtime = [tool.lower_bound(r) for r in PYPROJECT["project"]["dependencies"]]
    assert runtime and all(version for _, version, _ in runtime), runtime
    # The build backend: the dev extra asks for the same, so test-lowest builds the wheel with it.
    extras = PYPROJECT["project"]["optional-dependencies"]
    build = {name: version for name, version, _ in map(tool.lower_bound, PYPROJECT["build-system"]["requires"])}
    dev = {name: version for name, version, _ in map(tool.lower_bound, extras["dev"])}
    assert build["setuptools"] == dev["setuptools"]
    # One line name==bound (; marker) for each bounded requirement, and no other.
    bounded = {(tool.normalize(n), v, m) for n, v, m in map(tool.lower_bound, tool.requirements(PYPROJECT)) if v}
    pinned = set()
    for line in tool.constraints(PYPROJECT):
        if not line.startswith("#"):
            spec, _, marker = line.partition("; ")
            name, version = spec.split("==")
            pinned.add((tool.normalize(name), version, marker))
    assert pinned == bounded


def test_the_python_310_reader_sees_the_requirements_tomllib_sees() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.10: the tool's reader is all there is")
    tool = lowest_constraints()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    simple, full = tool.parse_simple_toml(text), tomllib.loads(text)
    assert tool.requirements(simple) == tool.requirements(full)
    assert tool.constraints(simple) == tool.constraints(full)


INSTALLED_EXTRAS = ("dev", "onnx")  # as `make test` and `make test-lowest` install them


def test_the_installed_versions_are_within_the_declared_bounds() -> None:
    """Under `make test-lowest` (CG_LOWEST_CONSTRAINTS set) each is exactly its lower bound, so that
    run tests the bounds themselves; under `make test` each is at or above it."""
    tool = lowest_constraints()
    lines = tool.constraints(PYPROJECT)
    constraints_file = os.environ.get("CG_LOWEST_CONSTRAINTS")
    if constraints_file:  # the venv was made from the pyproject.toml of now, not an older one
        assert (ROOT / constraints_file).read_text().splitlines() == lines, "stale .venv-lowest: make test-lowest"
    # What the Makefile installs: the runtime requirements and these extras. The others (data, dask)
    # are checked only where they happen to be installed, and only against the lower bound.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"-e '.[{','.join(INSTALLED_EXTRAS)}]'" in makefile
    extras = PYPROJECT["project"]["optional-dependencies"]
    installed = {tool.normalize(tool.lower_bound(r)[0]) for r in PYPROJECT["project"]["dependencies"]}
    installed |= {tool.normalize(tool.lower_bound(r)[0]) for extra in INSTALLED_EXTRAS for r in extras[extra]}
    for line in lines:
        if line.startswith("#") or ";" in line:
            continue
        name, bound = line.split("==", 1)
        if tool.normalize(name) not in installed:
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            assert release(have) >= release(bound), (name, have, bound)
            continue
        have = importlib.metadata.version(name)
        if constraints_file:
            assert release(have) == release(bound), (name, have, bound)
        else:
            assert release(have) >= release(bound), (name, have, bound)
