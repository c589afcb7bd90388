"""The documentation is checked like code: the site builds, its examples run, its links resolve.

Conventions (also written down in ``docs/index.md``, "About these pages"):

- Every fenced ``python`` block of ``docs/*.md`` and ``README.md`` is run as a script in
  a fresh process, unless the line before it (blank lines aside) is ``<!-- not-run -->``.
  It runs in a scratch folder holding copies of ``examples/`` and ``tests/bundles/``,
  so paths such as ``examples/clinic.yaml`` work and files it writes go nowhere.
- A fenced ``console`` block is a transcript: ``$ parlant-runtime ...`` lines are
  commands, the lines up to the next command their expected output (standard output
  and standard error together). The commands of one block run in order in one scratch
  folder. Trailing spaces are ignored; a line holding only ``...`` stands for any
  number of lines. The command must exit 0 unless its line ends with ``# exit N``.
  A console block with no ``parlant-runtime`` command is not run; one that mixes them
  with other commands is an error. ``text`` and ``sh`` blocks are not checked.
- A console or python block preceded by ``<!-- host-database -->`` runs against a throwaway
  PostgreSQL database created as the host platform creates it (``tests/host_schema.py``:
  its DDL, user ``u-owner`` owning workspace ``acme``): ``postgresql://app@db-host/sim``
  in its commands and output stands for that database. Without a PostgreSQL server the
  block is skipped, like every ``postgres`` test (failed under ``PARLANT_REQUIRE_POSTGRES=1``).
- Relative links (``[text](target)``) must point at a file or folder of the repository,
  and ``page.md#anchor`` at a heading of that page.
- Every ``parlant-runtime`` command line shown anywhere in a block (``sh``, ``text``,
  synopses included) names a command and options that exist, so a renamed command or
  option cannot linger in a page that is not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.host_schema import create_host_database
from tests.postgres import postgres_url

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NOT_RUN = "<!-- not-run -->"
HOST_DATABASE = "<!-- host-database -->"
HOST_URL = "postgresql://app@db-host/sim"
COMMAND = "parlant-runtime"
TIMEOUT_SECONDS = 120

# Examples known to be wrong in pages this module does not own, pinned until fixed
# (strict: once the page is right the test passes and this entry must go). Keyed by
# the page and the block's first line, which survive edits elsewhere in the page.
KNOWN_WRONG: dict[tuple[str, str], str] = {}


def pages() -> list[Path]:
    """The Markdown pages whose examples and links are checked."""
    found = sorted(p for p in DOCS.glob("*.md") if p.is_file())
    return [*found, ROOT / "README.md"]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


# ------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    not_run: bool
    host_database: bool = False

    @property
    def id(self) -> str:
        return f"{_name(self.page)}:{self.line}"

    @property
    def key(self) -> tuple[str, str]:
        return _name(self.page), self.text.split("\n", 1)[0].strip()


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` (nested fences inside a longer fence stay text)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    previous = ""  # the last non-blank line outside a block
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            if lines[index].strip():
                previous = lines[index].strip()
            index += 1
            continue
        fence, indent = match["fence"], len(match["indent"])
        language = match["info"].strip().split(" ")[0] if match["info"].strip() else ""
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            stripped = lines[index].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        text = "\n".join(body) + "\n"
        blocks.append(
            Block(page, start + 1, language, text, previous == NOT_RUN, previous == HOST_DATABASE)
        )
        previous = ""
        index += 1
    return blocks


def _blocks(language: str) -> list[Block]:
    return [b for page in pages() for b in fenced_blocks(page) if b.language == language]


def _cases(blocks: list[Block]) -> list[object]:
    """The blocks as test parameters, the known-wrong ones as strict expected failures."""
    return [
        pytest.param(
            b,
            id=b.id,
            marks=(
                [pytest.mark.xfail(reason=KNOWN_WRONG[b.key], strict=True)]
                if b.key in KNOWN_WRONG
                else []
            )
            + ([pytest.mark.postgres] if b.host_database else []),
        )
        for b in blocks
    ]


def _outside_fences(page: Path) -> list[tuple[int, str]]:
    """``(line number, line)`` of the page's lines that are not inside a fenced block."""
    inside: str | None = None
    kept: list[tuple[int, str]] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        match = _FENCE.match(line)
        if inside is None and match is not None:
            inside = match["fence"]
        elif inside is not None:
            stripped = line.strip()
            if stripped.startswith(inside) and not stripped.strip(inside[0]):
                inside = None
        else:
            kept.append((number, line))
    return kept


def heading_anchors(page: Path) -> set[str]:
    """The anchors MyST (and GitHub) give the headings of ``page``."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in _outside_fences(page):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\)"
)
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(?P<target>\S+?)>?(?:\s|$)", re.MULTILINE)


def links(page: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every link of the page's prose."""
    found: list[tuple[int, str]] = []
    for number, line in _outside_fences(page):
        text = re.sub(r"`+[^`]*`+", "``", line)  # inline code holds no links
        found += [(number, m["target"]) for m in _LINK.finditer(text)]
        found += [(number, m["target"]) for m in _REFERENCE.finditer(text)]
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with the page's relative links, one line each."""
    problems = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        where = f"{page.relative_to(root).as_posix()}:{number}: link {target!r}"
        destination = (page.parent / path_part).resolve() if path_part else page
        if root not in (destination, *destination.parents):
            problems.append(f"{where} leaves the repository")
            continue
        if not destination.exists():
            problems.append(f"{where}: {path_part!r} does not exist")
            continue
        if anchor and destination.suffix == ".md":
            if anchor not in heading_anchors(destination):
                problems.append(f"{where}: no heading with anchor #{anchor} in {path_part or 'it'}")
        elif anchor and destination.is_dir():
            problems.append(f"{where}: a folder has no anchors")
    return problems


@dataclass(frozen=True)
class Command:
    """One ``$ parlant-runtime ...`` line of a console block and the output it shows."""

    line: str
    expected: list[str]
    exit_status: int


def transcript(block: Block) -> list[Command]:
    """The commands of a console block, with their expected output and exit status."""
    commands: list[Command] = []
    for raw in block.text.splitlines():
        if raw.startswith("$ "):
            line = raw[2:].strip()
            status = 0
            match = re.search(r"\s+#\s*exit\s+(\d+)\s*$", line)
            if match is not None:
                status, line = int(match[1]), line[: match.start()]
            commands.append(Command(line, [], status))
        elif commands:
            commands[-1].expected.append(raw)
    return commands


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, trailing spaces aside; a ``...`` line matches any number of lines."""
    want = [line.rstrip() for line in expected]
    got = [line.rstrip() for line in actual]
    while want and not want[-1]:
        want.pop()
    while got and not got[-1]:
        got.pop()

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and want[i] == got[j] and match(i + 1, j + 1)

    return match(0, 0)


def command_lines(page: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every ``parlant-runtime`` command line in the page's blocks.

    In a block, a line that starts with ``parlant-runtime`` or ``$ parlant-runtime``;
    the text stops at a shell comment or at the next command of a pipeline or list.
    """
    found: list[tuple[int, str]] = []
    for block in fenced_blocks(page):
        if block.language.startswith("{"):  # a MyST directive, not code
            continue
        for offset, raw in enumerate(block.text.splitlines(), start=1):
            line = raw.strip().removeprefix("$ ")
            if not line.startswith(f"{COMMAND} ") and line != COMMAND:
                continue
            line = re.split(r"\s#|\s\|\s|&&|;|\s[12]?>", line, maxsplit=1)[0]
            found.append((block.line + offset, line))
    return found


def unknown_command_parts(line: str) -> list[str]:
    """The subcommands and options of ``line`` that the command line does not have."""
    import click

    from parlant_runtime.cli import cli

    words = line.split()[1:]
    command: click.Command = cli
    names = [COMMAND]
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        found = command.get_command(click.Context(command), words[0])
        if found is None:
            return [f"no command {' '.join([*names, words[0]])!r}"]
        names.append(words.pop(0))
        command = found
    known = {"-h", "--help"} | {
        option
        for param in command.params
        if isinstance(param, click.Option)
        for option in (*param.opts, *param.secondary_opts)
    }
    if command is cli:
        known |= {"--version"}
    used = re.findall(r"(?<![\w/.:=-])(--?[A-Za-z][\w-]*)", " ".join(words))
    return [f"{' '.join(names)} has no option {option}" for option in used if option not in known]


# ------------------------------------------------------------------ running


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A working folder with the repository's examples and test bundles copied in."""
    ignore = shutil.ignore_patterns("__pycache__", "*.db")
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=ignore)
    shutil.copytree(ROOT / "tests" / "bundles", tmp_path / "tests" / "bundles", ignore=ignore)
    return tmp_path


def _environment() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PARLANT_", "PYTEST_", "COV_"))
    }
    # the same output as a person sees: unbuffered (stdout and stderr interleave as on a
    # terminal), help text wrapped at 80 columns, no colour
    env.update(PYTHONUNBUFFERED="1", COLUMNS="80", NO_COLOR="1", TERM="dumb")
    return env


def _console_script() -> str:
    script = Path(sys.executable).parent / COMMAND
    return str(script) if script.exists() else COMMAND


def test_site_builds_without_warnings(tmp_path: Path) -> None:
    """``sphinx-build -W -n``: a broken cross-reference, link or toctree fails the build."""
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-E", "-b", "html"),
            *("-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (tmp_path / "html" / "index.html").is_file()


@pytest.mark.parametrize("page", pages(), ids=_name)
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


@pytest.mark.parametrize("page", pages(), ids=_name)
def test_commands_shown_exist(page: Path) -> None:
    problems = [
        f"{_name(page)}:{number}: {problem}  (in `{line}`)"
        for number, line in command_lines(page)
        for problem in unknown_command_parts(line)
    ]
    assert problems == []


@pytest.mark.parametrize("block", _cases([b for b in _blocks("python") if not b.not_run]))
def test_python_example_runs(block: Block, scratch: Path) -> None:
    if block.host_database:
        with postgres_url() as url:
            create_host_database(url)
            _run_python(block, scratch, block.text.replace(HOST_URL, url))
    else:
        _run_python(block, scratch, block.text)


def _run_python(block: Block, scratch: Path, text: str) -> None:
    script = scratch / "example.py"
    script.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        cwd=scratch,
        env=_environment(),
    )
    assert result.returncode == 0, (
        f"the example at {block.id} failed (exit {result.returncode}):\n{result.stderr}"
    )


@pytest.mark.parametrize(
    "block", _cases([b for b in _blocks("console") if not b.not_run and transcript(b)])
)
def test_console_transcript_matches(block: Block, scratch: Path) -> None:
    commands = transcript(block)
    others = [c.line for c in commands if shlex.split(c.line)[:1] != [COMMAND]]
    ours = [c for c in commands if shlex.split(c.line)[:1] == [COMMAND]]
    if not ours:
        pytest.skip("no parlant-runtime command: shown, not run")
    assert not others, (
        f"{block.id} mixes parlant-runtime with other commands {others}; "
        f"split the block or mark it {NOT_RUN}"
    )
    if block.host_database:
        with postgres_url() as url:
            create_host_database(url)
            shown_url = sa.make_url(url).render_as_string(hide_password=True)
            shown_as = HOST_URL.replace("postgresql://", "postgresql+asyncpg://")
            _run_transcript(block, ours, scratch, {HOST_URL: url}, {shown_url: shown_as})
    else:
        _run_transcript(block, ours, scratch, {}, {})


def _run_transcript(
    block: Block,
    commands: list[Command],
    scratch: Path,
    into_argv: dict[str, str],
    into_output: dict[str, str],
) -> None:
    """Run the commands in order; ``into_argv`` and ``into_output`` swap a placeholder
    URL for the real database in the arguments and back in what they print."""
    for command in commands:
        argv = [_console_script(), *shlex.split(command.line)[1:]]
        for placeholder, real in into_argv.items():
            argv = [arg.replace(placeholder, real) for arg in argv]
        result = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            cwd=scratch,
            env=_environment(),
        )
        shown = result.stdout.replace(f"{scratch}{os.sep}", "")
        for real, placeholder in into_output.items():
            shown = shown.replace(real, placeholder)
        assert result.returncode == command.exit_status, (
            f"{block.id}: `{command.line}` exited {result.returncode}, "
            f"the page says {command.exit_status}:\n{shown}"
        )
        assert output_matches(command.expected, shown.splitlines()), (
            f"{block.id}: `{command.line}` printed\n{shown}\nthe page shows\n"
            + "\n".join(command.expected)
        )


# ------------------------------------------------------------------ the checker itself


def test_checker_finds_broken_links_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Read me\n", encoding="utf-8")
    (tmp_path / "docs" / "storage.md").write_text("# Storage\n\n## Turns\n", encoding="utf-8")
    page = tmp_path / "docs" / "probe.md"
    page.write_text(
        "# Probe\n\n## A `code` heading\n\n"
        "[ok](#a-code-heading) [bad anchor](#nope) [file](../README.md)\n"
        "[missing](no_such_page.md) [other](storage.md#no-such-heading) [t](storage.md#turns)\n"
        "[out](../../elsewhere.md)\n"
        "`[not a link](nowhere.md)`\n\n```text\n[also not](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert len(problems) == 4, problems
    assert any("leaves the repository" in p for p in problems)
    assert any("#nope" in p for p in problems)
    assert any("no_such_page.md" in p for p in problems)
    assert any("no-such-heading" in p for p in problems)


def test_checker_parses_blocks_markers_and_transcripts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text\n\n```python\nprint(1)\n```\n\n<!-- not-run -->\n\n```python\nboom()\n```\n\n"
        "- item\n\n  ````console\n  $ parlant-runtime validate x.yaml  # exit 1\n  one\n"
        "  ```\n  $ parlant-runtime --version\n  two\n  ````\n",
        encoding="utf-8",
    )
    blocks = fenced_blocks(page)
    assert [(b.language, b.not_run) for b in blocks] == [
        ("python", False),
        ("python", True),
        ("console", False),
    ]
    commands = transcript(blocks[2])
    assert [(c.line, c.expected, c.exit_status) for c in commands] == [
        ("parlant-runtime validate x.yaml", ["one", "```"], 1),
        ("parlant-runtime --version", ["two"], 0),
    ]


def test_checker_finds_commands_and_options_that_do_not_exist() -> None:
    assert unknown_command_parts("parlant-runtime db upgrade --database-url x") == []
    assert unknown_command_parts("parlant-runtime validate --no-color --strict a.yaml") == []
    assert unknown_command_parts("parlant-runtime --version") == []
    assert unknown_command_parts("parlant-runtime test [--junit FILE] [--format text|json]") == []
    assert unknown_command_parts("parlant-runtime valdate x") == [
        "no command 'parlant-runtime valdate'"
    ]
    assert unknown_command_parts("parlant-runtime db upgrade --url x") == [
        "parlant-runtime db upgrade has no option --url"
    ]
    assert unknown_command_parts('parlant-runtime publish b.yaml --map "J/a-b=c"') == []


def test_checker_reads_command_lines_from_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Prose: parlant-runtime valdate is not checked here.\n\n"
        "```sh\nparlant-runtime diagram x.yaml --format dot | dot -Tsvg  # draw\n```\n\n"
        "```text\n$ parlant-runtime --help\nUsage: parlant-runtime [OPTIONS]\n```\n",
        encoding="utf-8",
    )
    assert command_lines(page) == [
        (4, "parlant-runtime diagram x.yaml --format dot"),
        (8, "parlant-runtime --help"),
    ]


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (["a", "b"], ["a", "b  ", ""], True),
        (["a", "...", "z"], ["a", "x", "y", "z"], True),
        (["a", "...", "z"], ["a", "z"], True),
        (["a", "b"], ["a", "c"], False),
        (["a"], ["a", "extra"], False),
        (["...", "z"], ["z", "q"], False),
    ],
)
def test_output_comparison(expected: list[str], actual: list[str], matches: bool) -> None:
    assert output_matches(expected, actual) is matches
