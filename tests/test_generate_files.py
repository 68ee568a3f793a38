"""The one write / --check implementation, and the docstring examples of otelperf.generate."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import otelperf.generate
from otelperf.errors import UserError
from otelperf.generate import files


def test_compare_reports_missing_changed_and_unknown_files(tmp_path: Path) -> None:
    generated = {"a.json": "A\n", "b.json": "B\n"}
    found = files.compare(tmp_path / "absent", generated, unknown_glob="*.json")
    assert [p.name for p in found.stale] == ["a.json", "b.json"] and not found.unknown
    assert [p.name for p in files.write(tmp_path, generated)] == ["a.json", "b.json"]
    assert files.compare(tmp_path, generated, unknown_glob="*.json").current

    (tmp_path / "b.json").write_text("changed\n", encoding="utf-8")
    (tmp_path / "old.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not matched by the pattern\n", encoding="utf-8")
    found = files.compare(tmp_path, generated, unknown_glob="*.json")
    assert [p.name for p in found.stale] == ["b.json"]
    assert [p.name for p in found.unknown] == ["old.json"]
    assert not files.compare(tmp_path, generated).unknown  # no pattern, no strangers


def test_write_touches_only_changed_files(tmp_path: Path) -> None:
    files.write(tmp_path, {"a.yml": "1\n", "b.yml": "2\n"})
    assert [p.name for p in files.write(tmp_path, {"a.yml": "1\n", "b.yml": "3\n"})] == ["b.yml"]
    assert files.write(tmp_path, {"a.yml": "1\n", "b.yml": "3\n"}) == []
    assert (tmp_path / "b.yml").read_text(encoding="utf-8") == "3\n"


def test_errors_name_the_out_directory(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("", encoding="utf-8")
    for action in (lambda: files.write(str(f), {"a": ""}), lambda: files.compare(str(f), {})):
        with pytest.raises(UserError, match=f"--out={str(f)!r} is not a directory"):
            action()
    with pytest.raises(UserError, match="cannot write"):
        files.write(f / "below", {"a": ""})


def test_docstring_examples_of_every_generate_module() -> None:
    names = [
        m.name for m in pkgutil.walk_packages(otelperf.generate.__path__, "otelperf.generate.")
    ]
    attempted = 0
    for name in ["otelperf.generate", *names]:
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 40
