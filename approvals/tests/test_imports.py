"""approvals is generic: it imports no other app of the project (DESIGN.md, "Layout")."""

import ast
from pathlib import Path

import approvals

OUR_APPS = {"accounts", "catalog", "usage", "ledger", "orders", "reports", "fixtures"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_approvals_imports_no_other_app_of_ours():
    package = Path(approvals.__file__).parent
    sources = [path for path in package.rglob("*.py") if "tests" not in path.parts]
    offending = {
        f"{path.relative_to(package)}: {name}"
        for path in sources
        for name in imported_modules(path)
        if name.split(".")[0] in OUR_APPS
    }

    assert len(sources) >= 4  # models, services, registry, apps at least: the check did read the package
    assert offending == set()


def test_the_check_catches_such_an_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from ledger.models import Invoice\nimport catalog.services\n")

    assert {name.split(".")[0] for name in imported_modules(module)} == {"ledger", "catalog"}
