"""The shape docs/architecture.md promises, checked: thin pages, no stray text, one frame,
commands that load no torch for reading tables, no import cycle in `lib`."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "pages").glob("*.py"))
MAX_PAGE_LINES = 300


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_pages_are_thin(page: Path) -> None:
    assert len(page.read_text().splitlines()) <= MAX_PAGE_LINES


@pytest.mark.parametrize("page", [*PAGES, REPO / "streamlit_app.py"], ids=lambda p: p.name)
def test_no_bare_string_below_a_pages_docstring(page: Path) -> None:
    """Streamlit's magic would draw such a string on the page (it is off too: next test)."""
    body = ast.parse(page.read_text()).body
    stray = [
        node.lineno
        for statement in body[1:]
        for node in ast.walk(statement)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        and not isinstance(statement, ast.FunctionDef | ast.ClassDef)
    ]
    assert stray == []


def test_magic_is_off() -> None:
    config = tomllib.loads((REPO / ".streamlit/config.toml").read_text())
    assert config["runner"]["magicEnabled"] is False


def test_every_page_runs_inside_the_frame() -> None:
    """Pages never set up navigation, public mode or the error guard themselves."""
    for page in PAGES:
        text = page.read_text()
        for own in ("set_page_config", "sidebar_links", "reported_errors", "guarded"):
            assert own not in text, f"{page.name} calls {own}: the frame does"


def test_lib_has_no_import_cycle() -> None:
    graph = grimp.build_graph("lib", exclude_type_checking_imports=False)
    cycles = {
        tuple(sorted((module, imported)))
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=imported, imported=module)
    }
    assert cycles == set()


def test_at_most_eight_modules_directly_in_lib() -> None:
    modules = [p for p in (REPO / "lib").glob("*.py") if p.name != "__init__.py"]
    assert len(modules) <= 8, sorted(p.name for p in modules)


@pytest.mark.parametrize("command", ["lib.chart", "lib.compare", "lib.trajectory"])
def test_table_commands_load_no_torch(command: str) -> None:
    code = (
        f"import sys, runpy; sys.argv = ['{command}', '--help']\n"
        f"try:\n    runpy.run_module('{command}', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True)
