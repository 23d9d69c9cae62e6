"""The docs are tested like code: every ```bash and ```python block of README.md and
docs/*.md runs against a real `bentoml serve` (the session's `pais_server`), every other
block is shown on purpose, the settings table is what `python -m service.settings`
prints, links resolve, and each task, route and error kind is documented.

How a block runs (and which fences run) is in tests/doc_snippets.py; docs/deploy.md is
left out for now (written elsewhere; its snippets need moto). One block alone, against a
server of your own: `python -m tests.doc_snippets --url URL docs/api.md --line N`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.errors import STATUS
from service.tasks import TASKS

from .doc_snippets import (
    NOT_RUN_DOCS,
    REPO,
    Block,
    all_blocks,
    blocks,
    doc_files,
    fence_problem,
    make_samples,
    run_block,
)

pytestmark = pytest.mark.server

README_MAX_LINES = 250
SETTINGS_BEGIN, SETTINGS_END = "<!-- settings:begin -->\n", "<!-- settings:end -->"
BLOCKS = all_blocks()
RUNNABLE = [block for block in BLOCKS if block.runs]


def read(doc: str) -> str:
    return (REPO / doc).read_text()


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_samples(tmp_path_factory.mktemp("doc-samples"))


@pytest.fixture(scope="module")
def snippet_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BentoML store snippets write to (a model trained in a snippet lands here)."""
    return tmp_path_factory.mktemp("doc-bentoml-home")


def test_the_docs_have_runnable_snippets():
    assert {block.doc for block in RUNNABLE} == set(doc_files()) - NOT_RUN_DOCS
    assert len(RUNNABLE) >= 40, [block.id for block in RUNNABLE]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.id)
def test_snippet_runs_against_the_server(block: Block, pais_server: str, samples: Path, snippet_store: Path):
    if block.lang != "python":
        assert shutil.which("curl"), "the docs' shell examples use curl: apt-get install curl"
    outcome = run_block(block, pais_server, samples, snippet_store)
    problem = outcome.problem(block)
    assert problem is None, f"{problem}\n{outcome.report(block)}"


def test_every_block_is_run_or_shown_on_purpose():
    problems = [problem for block in BLOCKS if (problem := fence_problem(block))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("lang", "text", "broken"),
    [
        ("bash", "make serve\n", True),
        ("bash", "PAIS_TASKS=speech make serve\n", True),
        ("bash", "python -m deploy push\n", True),
        ("bash", "curl http://gpu-box:3000/models\n", True),
        ("bash", "pais batch classify s3://bucket/photos/ --out labels.jsonl\n", True),
        ("bash", "curl http://127.0.0.1:3000/models\n", False),
        ("console", "make models\npython -m deploy push\n", False),
        ("console", "make models\ncurl http://127.0.0.1:3000/models\n", True),
        ("text", "pais models\n", True),
        ("text", "read 11313 rows: 11313 unique interactions\n", False),
        ("", "curl http://127.0.0.1:3000/models\n", True),
        ("python", "import boto3\n", True),
    ],
)
def test_the_fence_rules_themselves(lang: str, text: str, broken: bool):
    assert (fence_problem(Block("doc.md", 1, lang, text)) is not None) == broken


def test_readme_is_short_and_points_at_every_page():
    readme = read("README.md")
    assert len(readme.splitlines()) <= README_MAX_LINES
    pages = [Path(doc).name for doc in doc_files() if doc != "README.md"]
    missing = [page for page in pages if f"(docs/{page})" not in readme]
    assert not missing, f"README links to no {missing}"


def test_readme_has_an_example_per_operation():
    runnable = "".join(block.text for block in blocks("README.md") if block.runs)
    missing = [
        op.path
        for _, op in TASKS.operations()
        if not (op.answer and op.answer.streamed)
        and not re.search(rf":3000{re.escape(op.path)}\b(?!/)", runnable)
    ]
    assert not missing, f"README has no runnable example of {missing}"


def test_settings_table_is_what_python_m_service_settings_prints():
    env = {key: value for key, value in os.environ.items() if not key.startswith("PAIS_")}
    printed = subprocess.run(
        [sys.executable, "-m", "service.settings"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    text = read("docs/operations.md")
    assert text.count(SETTINGS_BEGIN) == 1 and text.count(SETTINGS_END) == 1
    pasted = text[text.index(SETTINGS_BEGIN) + len(SETTINGS_BEGIN) : text.index(SETTINGS_END)]
    assert pasted == printed, (
        "docs/operations.md's settings table is stale: paste the output of `python -m service.settings` "
        "between the settings markers"
    )


def test_error_kinds_table_is_the_status_table():
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", read("docs/api.md"), re.M)
    documented = dict(rows)
    assert documented == {kind.value: str(int(status)) for kind, status in STATUS.items()}


def test_every_task_has_its_api_and_models_sections():
    api, models = read("docs/api.md"), read("docs/models.md")
    for task in TASKS.all():
        for op in task.operations:
            assert f"### `POST {op.path}`" in api, f"docs/api.md has no section for POST {op.path}"
        for query in task.queries:
            assert f"### `GET {query.path}`" in api, f"docs/api.md has no section for GET {query.path}"
        assert re.search(rf"^\| {task.name}\b", models, re.M), f"docs/models.md has no row for {task.name}"


def test_every_served_route_is_in_the_api_reference(pais_server: str):
    paths = httpx.get(f"{pais_server}/docs.json", timeout=30).json()["paths"]
    api = read("docs/api.md")
    spans = set(re.findall(r"`([^`\n]+)`", api))
    missing = [path for path in paths if not any(re.search(rf"(^|\s){re.escape(path)}$", s) for s in spans)]
    assert not missing, f"docs/api.md does not name {missing}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("doc", doc_files())
def test_links_resolve(doc: str):
    problems = []
    for target in LINK.findall(read(doc)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (REPO / doc).parent / path if path else REPO / doc
        if path and not resolved.exists():
            if resolved.resolve() == (REPO / "docs" / "deploy.md"):
                continue  # written on another branch
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            problems.append(f"{target}: no heading with that anchor")
    assert not problems, f"{doc}: {problems}"
