"""container/compile-bytecode.py: which modules get bytecode, where it is written, and its kind."""

import importlib.util
import py_compile
import struct

import pytest

from support import REPO


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("compile_bytecode", REPO / "container" / "compile-bytecode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pyc_flags(path) -> int:
    # PEP 552: the second 32-bit word; 0b11 = hash-based and checked, 0b01 = hash-based, unchecked.
    return struct.unpack("<I", path.read_bytes()[4:8])[0]


def test_the_list_splits_into_site_packages_and_standard_library(tool):
    lines = ["# a comment", "", "site-packages/torch/__init__.py", "json/decoder.py", "  ast.py  "]
    assert tool.wanted(lines, "site-packages") == ["torch/__init__.py"]
    assert tool.wanted(lines, "stdlib") == ["json/decoder.py", "ast.py"]


def test_listed_modules_get_unchecked_hash_bytecode_beside_them_and_others_none(tool, tmp_path):
    (tmp_path / "pkg").mkdir()
    for name in ("pkg/__init__.py", "pkg/used.py", "pkg/unused.py"):
        (tmp_path / name).write_text("VALUE = 1\n")
    written, absent = tool.compile_modules(tmp_path, ["pkg/__init__.py", "pkg/used.py", "pkg/gone.py"], None)
    assert (written, absent) == (2, ["pkg/gone.py"])
    cache = tmp_path / "pkg" / "__pycache__"
    assert sorted(p.name.split(".")[0] for p in cache.iterdir()) == ["__init__", "used"]
    assert {pyc_flags(p) for p in cache.iterdir()} == {0b01}


def test_into_writes_only_what_lacks_bytecode_under_a_separate_root(tool, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "has_pyc.py").write_text("A = 1\n")
    (lib / "lacks_pyc.py").write_text("B = 2\n")
    py_compile.compile(str(lib / "has_pyc.py"))
    into = tmp_path / "rootfs"
    written, absent = tool.compile_modules(lib, ["has_pyc.py", "lacks_pyc.py"], into)
    assert (written, absent) == (1, [])
    expected = into / importlib.util.cache_from_source(str(lib / "lacks_pyc.py")).lstrip("/")
    assert [p for p in into.rglob("*.pyc")] == [expected]
    assert not (lib / "__pycache__" / expected.name).exists()  # the source tree is left alone
