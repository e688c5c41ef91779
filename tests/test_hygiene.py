"""The test suite's own rules (issue 16).

* No test module imports another test module. Helpers two test modules share live in
  ``tests/*_support.py`` (or ``conftest.py``), so a test module can be read, run and
  changed on its own, and importing one never collects another's tests or runs its
  module-level set-up.
* No bare ``sleep(`` in the tests: what waits for something waits on the condition
  (``tests/uplink_support.py: wait_for``); a sleep that stays says on its line why — time
  passing is the behaviour under test, or it polls another process or thread whose state
  is the only signal.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(name: str) -> bool:
    """``tests.test_x``, ``.test_x`` (relative: the module part) or ``test_x``."""
    return name.rsplit(".", 1)[-1].startswith("test_")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``, functions and classes included; for
    ``from . import x`` the module is ``x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                found.append((node.lineno, node.module))
            if node.level or node.module == "tests":
                found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_imports_between_test_modules_are_spotted() -> None:
    code = ("from tests.test_a import x\nfrom .test_b import y\nfrom . import test_c\n"
            "import tests.test_d\nfrom tests import test_e\n"
            "def f():\n    from tests.test_f import z\n"
            "from tests.a_support import ok\nfrom .conftest import fine\nimport testing\n")
    bad = [m for _, m in imported_modules(ast.parse(code)) if is_test_module(m)]
    assert bad == ["tests.test_a", "test_b", "test_c", "tests.test_d", "test_e", "tests.test_f"]


def test_no_test_module_imports_another_test_module() -> None:
    offenders = [f"{path.name}:{line}: {module}"
                 for path in sorted(TESTS.rglob("*.py"))
                 for line, module in imported_modules(ast.parse(path.read_text("utf-8")))
                 if is_test_module(module)]
    assert offenders == [], "move shared helpers to tests/*_support.py:\n" + "\n".join(offenders)


SLEEP = re.compile(r"\bsleep\(")


def test_every_sleep_in_the_tests_says_why() -> None:
    bare = [f"{path.name}:{n}: {line.strip()}"
            for path in sorted(TESTS.rglob("*.py")) if path.name != Path(__file__).name
            for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
            if SLEEP.search(line.split("#", 1)[0]) and "#" not in line]
    assert bare == [], "wait on the condition, or say why on the line:\n" + "\n".join(bare)
