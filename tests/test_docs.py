"""The README stays a five-minute read and every relative link of the documentation leads somewhere.

Pure text checks (no MindSpore work): the README's size and its first commands, relative links and their anchors in
README.md, CHANGELOG.md and docs/*.md, and the training page's list of config keys against the config dataclasses.
"""

import dataclasses
import re
from pathlib import Path
from typing import Dict, List, Set

from mindface_au.config import Config

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 200
# Pages other documentation work writes; links to them are accepted while they are not in this tree yet.
PAGES_WRITTEN_ELSEWHERE = {"docs/detect.md", "docs/datasets.md", "docs/clusters.md", "docs/errors.md"}

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def doc_files() -> List[Path]:
    """The Markdown files a user reads: README, changelog and every docs page."""
    return [ROOT / "README.md", ROOT / "CHANGELOG.md"] + sorted((ROOT / "docs").glob("*.md"))


def prose(text: str) -> str:
    """`text` without its fenced code blocks (a `[x](y)` inside code is not a link)."""
    kept, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            in_code = not in_code
            continue
        if not in_code:
            kept.append(line)
    return "\n".join(kept)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """The heading anchors of a Markdown file."""
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", prose(path.read_text()), re.M)}


def broken_links(path: Path, root: Path = ROOT, elsewhere: Set[str] = frozenset()) -> List[str]:
    """Relative links of `path` whose file (or `#anchor` in it) does not exist; external links are not followed."""
    problems = []
    anchor_cache: Dict[Path, Set[str]] = {}
    for match in LINK.finditer(prose(path.read_text())):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        rel = dest.relative_to(root).as_posix() if dest.is_relative_to(root) else str(dest)
        if not dest.exists():
            if rel not in elsewhere:
                problems.append(f"{path.name}: {target} (no such file)")
            continue
        if anchor and dest.suffix == ".md":
            known = anchor_cache.setdefault(dest, anchors(dest))
            if anchor not in known:
                problems.append(f"{path.name}: {target} (no heading with anchor #{anchor})")
    return problems


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    first_block = re.search(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert text.index("make demo") < text.index("## Install")


def test_every_relative_link_leads_to_a_file_or_heading():
    problems = [p for path in doc_files() for p in broken_links(path, elsewhere=PAGES_WRITTEN_ELSEWHERE)]
    assert problems == []


def test_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Page A\n\n## Real heading\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#real-heading) [gone](docs/b.md) [bad](docs/a.md#nothing) [web](https://example.org)\n"
        "```\n[in code](docs/c.md)\n```\n"
    )
    assert broken_links(page, root=tmp_path) == [
        "README.md: docs/b.md (no such file)",
        "README.md: docs/a.md#nothing (no heading with anchor #nothing)",
    ]
    assert broken_links(page, root=tmp_path, elsewhere={"docs/b.md"}) == [
        "README.md: docs/a.md#nothing (no heading with anchor #nothing)"
    ]


def test_training_page_lists_every_config_key():
    page = (ROOT / "docs" / "training.md").read_text()
    missing = []
    for section in dataclasses.fields(Config):
        for key in dataclasses.fields(section.default_factory()):
            if f"`{section.name}.{key.name}`" not in page:
                missing.append(f"{section.name}.{key.name}")
    assert missing == []
