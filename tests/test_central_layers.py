"""The centre's store and reports, and the queueing library, import in one direction only.

Read from the source (every import, in functions and under ``TYPE_CHECKING`` too), so a
cycle is caught before import-linter runs: the store (the write side, summaries kept at
ingest included) imports no report and no reconciliation; reports read through the
store's :class:`~central.store.reader.Reader`; ``queueing`` imports neither the
simulator's devices and people nor drivers nor the centre; nobody takes another module's
private names.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> dict[str, set[str]]:
    """Each module of ``package`` (dotted) -> the dotted names it imports, resolved."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_pkg else parts)
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                anchor = base[:len(base) - node.level + 1] if node.level else []
                full = ".".join([*anchor, *([node.module] if node.module else [])])
                names.update(f"{full}.{a.name}" for a in node.names)
        out[module] = names
    return out


def _reaches(names: set[str], prefix: str) -> bool:
    return any(n == prefix or n.startswith(prefix + ".") for n in names)


def test_the_store_imports_no_report_and_no_reconciliation() -> None:
    for module, names in _imports("central.store").items():
        for above in ("central.reports", "central.reconcile", "central.service"):
            assert not _reaches(names, above), (module, above)


def test_reports_and_reconciliation_import_no_store_internals() -> None:
    found = {**_imports("central.reports"), "central.reconcile":
             _imports("central")["central.reconcile"]}
    for module, names in found.items():
        private = sorted(n for n in names if n.rpartition(".")[2].startswith("_")
                         and not n.endswith("__"))
        assert not private, (module, private)


def test_no_module_calls_a_private_method_of_the_store() -> None:
    """``store._many(…)`` from the summaries or the alert rules was a reach into the
    store's internals; they write through the public ``execute_many``."""
    for path in sorted((ROOT / "central").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr == "_many"
                    and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}")


def test_the_queueing_library_imports_no_simulator_driver_or_centre() -> None:
    found = _imports("queueing")
    assert "queueing.day" in found and "queueing.staffing" in found
    for module, names in found.items():
        for banned in ("sim", "drivers", "central"):
            assert not _reaches(names, banned), (module, banned)


def test_the_centre_imports_the_queueing_library_not_the_simulator() -> None:
    for module, names in _imports("central").items():
        assert not _reaches(names, "sim"), module


# The composition root builds the centre; the app factory and the routes' dependencies hand
# its parts out. Every other module asks for the narrow thing it uses (central/context.py).
NAMES_THE_CENTRE = {"central.service", "central.__main__", "central.web", "central.deps"}


def test_only_the_root_the_app_factory_and_the_dependencies_name_the_centre() -> None:
    found = {module: sorted(n for n in names if n == "central.service.Centre")
             for module, names in _imports("central").items()
             if module not in NAMES_THE_CENTRE}
    assert {m: n for m, n in found.items() if n} == {}
