"""The layout of docs/architecture.md: what runs in production imports only `common/`
and itself. The services (app, exporter, alert bridge) and the reports never import
one another, and none of them imports the tooling that builds and runs the stack
(`tooling/`), the tests or the benches, which an installed `tracetrack` may not ship."""

from __future__ import annotations

import ast

import pytest

from tooling.checkout import ROOT

RUNTIME = ("app", "exporter", "alert_bridge", "reports", "common")
# Every top-level package of the checkout a runtime package could reach for.
OURS = {*RUNTIME, "tooling", "tests", "bench", "tracetrack", "grafana", "deploy", "loadtest"}


def imports_of(package: str) -> dict[str, set[str]]:
    """Our top-level packages `package` imports, each with the files importing it."""
    found: dict[str, set[str]] = {}
    for source in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in OURS and top != package:
                    found.setdefault(top, set()).add(str(source.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", RUNTIME)
def test_runtime_code_imports_only_common(package: str) -> None:
    allowed = set() if package == "common" else {"common"}
    wrong = {k: sorted(v) for k, v in imports_of(package).items() if k not in allowed}
    assert not wrong, f"{package} imports {wrong}"


def test_the_check_sees_imports() -> None:
    """Guards the check itself: the app does import common; the benches, which may,
    import the services and the tooling."""
    assert "common" in imports_of("app")
    assert {"app", "exporter", "alert_bridge", "reports", "tooling"} <= set(imports_of("bench"))
