"""The fenced code blocks of the docs, and how tests/test_docs.py runs them.

Every block needs a language. ```bash (```sh, ```shell) and ```python blocks are run
against a real PAIS server; every other language (```console, ```text, ```json, ...) is
shown, never run. A block that cannot run here (make, docker, buildah, AWS, `python -m
deploy`, a server other than 127.0.0.1) must use a shown fence, and a shown block must
not hold a command that could run here: so whether a block is run is always a choice
made on purpose, and the test says which rule a block breaks.

Running a block (run_block): a fresh copy of the sample inputs (`samples`: the photos,
the video, texts the snippets name) is its working directory; `http://127.0.0.1:3000`
in its text and $PAIS_URL are the test server; the venv's bin/ is first on PATH (so
`python`, `pais` and `bentoml` are the project's, and `.venv/bin/...` works too: the
working directory links the project's .venv). Shell blocks run with `bash -euo
pipefail`; their `curl` fails on an HTTP error status (--fail-with-body) unless the
command prints the status itself with -w/--write-out. A block passes when it exits 0 and
prints something on stdout.

Also usable by hand against a running server:

    .venv/bin/python -m tests.doc_snippets --url http://127.0.0.1:3000 docs/api.md
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DOCS_URL = "http://127.0.0.1:3000"
# Pages with no block run here: docs/deploy.md's blocks run against AWS (or a deployed
# instance), so all are shown (```console), and tests/test_deploy_*.py run the tool
# against moto's server instead. Their fences and links are checked all the same.
NOT_RUN_DOCS: frozenset[str] = frozenset({"docs/deploy.md"})

SHELL = frozenset({"bash", "sh", "shell"})
PYTHON = frozenset({"python"})
RUN = SHELL | PYTHON
SHOWN = frozenset({"console", "text", "json", "jsonl", "yaml", "toml", "dockerfile", "http", "diff"})

# Commands that cannot run in a test: they build images, need root, AWS, a container
# engine, take minutes (benchmarks, make, fine-tuning), or start a server of their own.
CANNOT_RUN_HERE = re.compile(
    r"""^(?:
        sudo\b | make\b | docker\b | podman\b | buildah\b | skopeo\b | aws\b | ffplay\b
      | apt(?:-get)?\b | pip\ install\b | (?:\S*/)?bentoml\ (?:serve|build|containerize)\b
      | (?:\S*/)?python3?\ -m\ (?:deploy|benchmarks|service\.model_store|pytest)\b
      | (?:\S*/)?python3?\ -m\ models\.finetune\ .*--data\b
      | (?:\S*/)?pais\ batch\b.*--sagemaker-endpoint
      | docker/\S+\.sh\b
    )""",
    re.X,
)
# A URL of some other machine (any host but this one), or S3: not reachable from a test.
ELSEWHERE = re.compile(r"https?://(?!127\.0\.0\.1[:/]|localhost[:/])[\w.-]+|s3://")
COMMAND_WORDS = frozenset(
    ("curl", "pais", "python", "python3", "bentoml", "make", "docker", "pip", "aws", "export", "cd", "ls")
)
ASSIGNMENT = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=(?:'[^']*'|\"[^\"]*\"|\S*)\s+)+")

SHELL_PRELUDE = """\
set -euo pipefail
curl() {
  case " $* " in
    *" -w "*|*" --write-out "*) command curl --silent --show-error "$@" ;;
    *) command curl --silent --show-error --fail-with-body "$@" ;;
  esac
}
"""


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository, e.g. docs/api.md
    line: int  # line of the opening fence
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUN


def doc_files() -> list[str]:
    """README.md and every docs/*.md, relative to the repo."""
    return ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


def blocks(doc: str) -> list[Block]:
    """The fenced blocks of one document, in order."""
    found = []
    lines = (REPO / doc).read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        lang = opening["info"].strip().split(" ")[0].lower()
        start = index + 1
        body = []
        index += 1
        while index < len(lines) and not (
            lines[index].strip().startswith(fence) and lines[index].strip().strip(fence[0]) == ""
        ):
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            index += 1
        if index >= len(lines):
            raise ValueError(f"{doc}:{start}: a fence is never closed")
        found.append(Block(doc, start, lang, "\n".join(body) + "\n"))
        index += 1
    return found


def all_blocks() -> list[Block]:
    return [block for doc in doc_files() for block in blocks(doc)]


def commands(text: str) -> list[str]:
    """The command lines of a shell text: `$ ` prompts and leading VAR=value assignments
    removed, continuation lines joined, comments and output lines (in a console block:
    lines without a prompt when there are prompts) dropped."""
    raw = text.splitlines()
    prompted = any(line.startswith("$ ") for line in raw)
    joined: list[str] = []
    carry = ""
    for line in raw:
        if prompted and not carry:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        line = carry + line
        if line.rstrip().endswith("\\"):
            carry = line.rstrip()[:-1] + " "
            continue
        carry = ""
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            joined.append(ASSIGNMENT.sub("", stripped))
    return joined


def looks_like_command(line: str) -> bool:
    first = line.split(" ")[0]
    return first in COMMAND_WORDS or first.endswith(("/python", "/pais", "/bentoml"))


def cannot_run_here(line: str) -> bool:
    return bool(CANNOT_RUN_HERE.match(line) or ELSEWHERE.search(line))


def fence_problem(block: Block) -> str | None:
    """Why a block's fence is wrong, or None: what runs must be able to run here, and
    what is only shown must not be a command that could."""
    if not block.lang:
        return (
            f"{block.id}: a fence without a language: ```bash/```python (run) or ```console/```text (shown)"
        )
    if block.lang not in RUN | SHOWN:
        return (
            f"{block.id}: unknown fence language {block.lang!r}; run: {sorted(RUN)}; shown: {sorted(SHOWN)}"
        )
    if block.lang in SHELL:
        for line in commands(block.text):
            if cannot_run_here(line):
                return f"{block.id}: `{line}` cannot run in a test; show it in a ```console block"
        return None
    if block.lang in PYTHON:
        if ELSEWHERE.search(block.text) or re.search(r"\bboto3\b", block.text):
            return f"{block.id}: a python block that reaches AWS or another machine cannot run here"
        return None
    if block.lang in ("console", "text"):
        runnable = [
            line for line in commands(block.text) if looks_like_command(line) and not cannot_run_here(line)
        ]
        if runnable:
            return (
                f"{block.id}: ```{block.lang} block holds `{runnable[0]}`, which runs here: "
                "put it in a ```bash block (tested) and leave only what cannot run in this one"
            )
    return None


# -- running ------------------------------------------------------------------------------


def make_samples(directory: Path) -> Path:
    """The inputs snippets name, written once per session."""
    sys.path.insert(0, str(REPO))
    from tests.images import composite, encode, photo
    from tests.movielens import interactions_file, items_file
    from tests.videos import Appearance, scripted_video

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cat.jpg").write_bytes(encode(photo("chelsea"), "JPEG", quality=90))
    (directory / "coffee.jpg").write_bytes(encode(photo("coffee"), "JPEG", quality=90))
    (directory / "coffee.png").write_bytes(encode(photo("coffee"), "PNG"))
    # a person, a cat and a cup side by side: YOLOv3-tiny finds all three
    (directory / "street.jpg").write_bytes(encode(composite(["astronaut", "chelsea", "coffee"])[0], "JPEG"))
    photos = directory / "photos"
    photos.mkdir(exist_ok=True)
    for name in ("cat.jpg", "coffee.jpg", "street.jpg"):
        shutil.copy(directory / name, photos / name)
    # 6 s at 640x480: a person until 2.5 s, a cat from 1 s to 4 s, a cup from 2 s to 5 s
    script = [
        Appearance("astronaut", 0.0, 2.5, (20, 20, 260, 260)),
        Appearance("chelsea", 1.0, 4.0, (340, 40, 280, 200)),
        Appearance("coffee", 2.0, 5.0, (60, 300, 240, 160)),
    ]
    scripted_video(directory / "clip.mp4", script, 6.0, fps=10)
    (directory / "texts.jsonl").write_text(
        '{"id": "greeting", "text": "Good morning."}\n'
        '{"id": "car", "text": "I would like to buy a new car."}\n'
    )
    (directory / "users.jsonl").write_text(
        '{"id": "u196", "user_id": "196", "k": 3}\n{"id": "fan", "liked_items": ["1", "95"], "k": 3}\n'
    )
    _training_data(directory, interactions_file(), items_file())
    return directory


def _training_data(
    directory: Path, interactions: Path, items: Path, users: int = 200, catalogue: int = 400
) -> None:
    """ratings.csv and items.csv laid out as a user's own data would be: MovieLens-100K's
    first `users` users and `catalogue` movies (small enough to train in seconds)."""
    import csv

    def rows(path: Path) -> list[list[str]]:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle, delimiter="\t"))[1:]

    with (directory / "ratings.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["user", "item", "rating", "timestamp"])
        for user, item, rating, timestamp in rows(interactions):
            if int(user) <= users and int(item) <= catalogue:
                writer.writerow([user, item, rating, timestamp])
    with (directory / "items.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["item", "title", "year", "genres"])
        for item, title, year, genres in rows(items):
            if int(item) <= catalogue:
                writer.writerow([item, title, year, "|".join(genres.split())])


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    def problem(self, block: Block) -> str | None:
        if self.returncode != 0:
            return f"{block.id} exited {self.returncode}"
        if not self.stdout.strip():
            return f"{block.id} printed nothing (a snippet shows what it does: print its answer)"
        return None

    def report(self, block: Block) -> str:
        return (
            f"--- {block.id} ({block.lang})\n{block.text}--- stdout\n{self.stdout[-3000:]}"
            f"--- stderr\n{self.stderr[-3000:]}"
        )


def run_block(block: Block, url: str, samples: Path, store: Path, timeout_s: float = 300) -> Outcome:
    """Run one block in a fresh copy of `samples` against the server at `url`."""
    with tempfile.TemporaryDirectory(prefix="pais-doc-") as scratch:
        work = Path(scratch) / "work"
        shutil.copytree(samples, work)
        (work / ".venv").symlink_to(REPO / ".venv")
        text = block.text.replace(DOCS_URL, url)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PAIS_")},
            "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "PYTHONPATH": str(REPO),
            "PAIS_URL": url,
            # a model a snippet trains goes to a store of its own, not the project's
            "BENTOML_HOME": str(store),
            "BENTOML_DO_NOT_TRACK": "true",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
        if block.lang in SHELL:
            command = ["bash", "-c", SHELL_PRELUDE + text]
        else:
            (work / "snippet.py").write_text(text)
            command = [str(VENV_BIN / "python"), "snippet.py"]
        done = subprocess.run(
            command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        return Outcome(done.returncode, done.stdout, done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the docs' snippets against a running PAIS server.")
    parser.add_argument("docs", nargs="*", help="documents (default: README.md and docs/*.md)")
    parser.add_argument("--url", default=os.environ.get("PAIS_URL", DOCS_URL))
    parser.add_argument("--line", type=int, help="only the block that opens on this line")
    args = parser.parse_args(argv)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="pais-doc-samples-") as scratch:
        samples = make_samples(Path(scratch) / "samples")
        for doc in args.docs or doc_files():
            for block in blocks(doc):
                problem = fence_problem(block)
                if problem:
                    print(f"FENCE {problem}")
                    failed += 1
                if not block.runs or (args.line and block.line != args.line):
                    continue
                outcome = run_block(block, args.url, samples, Path(scratch) / "bentoml")
                problem = outcome.problem(block)
                print(f"{'FAIL' if problem else 'ok  '} {block.id}")
                if problem:
                    failed += 1
                    print(outcome.report(block))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
