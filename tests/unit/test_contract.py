"""The contract values live in sagebert/contract.py alone: it imports nothing (the CLI, aws/build
and the image all use it), and no other module writes one of its content types, paths or limits
again as a literal."""

import ast

from sagebert import contract
from support import REPO

SOURCES = REPO / "src" / "sagebert"
# Precision names are used one by one in the code that acts on them; only their list is contract.
SHARED = {
    value
    for name, values in vars(contract).items()
    if name.isupper() and name != "PRECISIONS"
    for value in (values if isinstance(values, tuple) else (values,))
}


def test_the_contract_module_imports_nothing():
    tree = ast.parse((SOURCES / "contract.py").read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def test_no_module_writes_a_contract_value_again():
    copies = [
        f"{path.relative_to(SOURCES)}:{node.lineno} {node.value!r}"
        for path in sorted(SOURCES.rglob("*.py"))
        if path.name != "contract.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value in SHARED
    ]
    assert len(SHARED) > 10 and copies == []
