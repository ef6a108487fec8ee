"""Moves the long README's sections into the documentation site's pages (docs/).

    python docs/tooling/split_readme.py FULL_README [DOCS_DIR]

Each `## ` section of FULL_README (and each `### ` subsection named in SUBSECTIONS) lands whole
on the page PAGES names for it; a section this script does not know lands on the page of the
section before it, and is reported, so none is ever dropped. Links are fixed for the page's
place: `docs/...` files become relative to it, `#anchors` point at the page their heading
landed on, and links to repository files outside the site become code spans.

Re-runnable: it rewrites only the pages it owns (PAGES), from their intro, the hand-written
lead in docs/tooling/leads/PAGE where there is one (not part of the README), and the sections.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

# page -> (title, intro, [section headings, in the order they appear on the page])
PAGES: dict[str, tuple[str, str, list[str]]] = {
    "tutorials/learner.md": (
        "A learner's first hour",
        "Start the service, train the notebook's three nets, watch them learn, see what they "
        "got wrong, and have one read your handwriting.",
        [
            "Quick start",
            "Worked example: the notebook's three nets",
            "Insight",
            "Recognising digits",
        ],
    ),
    "tutorials/teacher.md": (
        "A teacher's term",
        "Run the service for a class: tokens, a challenge with a leaderboard, studies that "
        "answer the notebook's questions, and the lab page your students use.",
        [
            "Running it for a class",
            "The class challenge",
            "Studies: the notebook's questions in one request",
            "The lab page",
        ],
    ),
    "tutorials/operator.md": (
        "An operator's deployment",
        "PostgreSQL, Redis and several workers: scale the service out, then keep it backed up "
        "and within its disk.",
        ["Scaling out, Docker", "Worker", "Backup, restore and disk"],
    ),
    "how-to/notebook.md": (
        "Bring a notebook, Keras code or a client",
        "Submit what you already have: Keras code, a notebook, `model.to_json()`, or use the "
        "Python client and the `mnist-lab` command.",
        ["From a notebook"],
    ),
    "how-to/reproduce.md": (
        "Reproduce a run and take it home",
        "Get a run's exact recipe and its trained model out of the service.",
        ["Reproduce and take home"],
    ),
    "how-to/v2.md": (
        "Serve predictions over the Open Inference Protocol",
        "Use Triton's and KServe's clients against the trained models.",
        ["Open Inference Protocol (v2)"],
    ),
    "how-to/observe.md": (
        "Watch metrics and logs",
        "Prometheus metrics, request ids and the log.",
        ["Metrics and logs"],
    ),
    "how-to/develop.md": (
        "Develop and test the service",
        "The repository's layout, its test tiers and CI.",
        ["Development"],
    ),
    "reference/settings.md": (
        "Settings",
        "Every setting the service reads from its environment, and the command line.",
        ["Configuration"],
    ),
    "reference/spec.md": (
        "The spec's fields",
        "What `POST /experiments` takes: layers, compile, fit.",
        ["The spec"],
    ),
    "explanation/how-it-works.md": (
        "How it works",
        "The parts of the service and the path of one experiment through them.",
        ["How it works"],
    ),
    "explanation/reliability.md": (
        "Reliability promises",
        "What survives a dying worker, training process, database or API, and how.",
        ["Reliability"],
    ),
    "explanation/security.md": (
        "Security",
        "Who may do what, and what the service defends against.",
        ["Security"],
    ),
    "explanation/benchmarks.md": (
        "Benchmarks",
        "How fast training and prediction are, measured.",
        ["Benchmarks"],
    ),
}
# `### ` subsections that move to a page of their own rather than with their section.
SUBSECTIONS = {"The spec"}
# What stays in the front-door README only (the site's home page covers it).
FRONT_ONLY = {"MNIST lab"}

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """Python-Markdown's toc slug (what mkdocs anchors are)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def sections(readme: str) -> list[tuple[str, int, list[str]]]:
    """[(heading, level, lines)], split at `## ` and at the `### ` named in SUBSECTIONS."""
    out: list[tuple[str, int, list[str]]] = [("MNIST lab", 1, [])]
    fenced = False
    for line in readme.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        match = None if fenced else re.match(r"^(#{1,3}) (.+?)\s*$", line)
        if match and (len(match[1]) == 2 or (len(match[1]) == 3 and match[2] in SUBSECTIONS)):
            if len(match[1]) == 3:
                # Where the subsection was, its section points at the page it moves to.
                out[-1][2].append(f"*[{match[2]}](#{slug(match[2])}) has a page of its own.*")
                out[-1][2].append("")
            out.append((match[2], len(match[1]), [line]))
        else:
            out[-1][2].append(line)
    return out


def main(readme_path: str, docs_dir: str = "docs") -> int:
    docs = Path(docs_dir)
    parts = sections(Path(readme_path).read_text())
    home = {h: page for page, (_, _, hs) in PAGES.items() for h in hs}
    placed: dict[str, list[tuple[str, list[str]]]] = {page: [] for page in PAGES}
    previous = next(iter(PAGES))
    anchors: dict[str, str] = {}  # README anchor -> where it landed: page#anchor, or page
    unknown = []
    for heading, _, lines in parts:
        if heading in FRONT_ONLY:
            continue
        page = home.get(heading)
        if page is None:
            page = previous
            unknown.append((heading, page))
        placed[page].append((heading, lines))
        previous = page
        for line in lines:
            match = re.match(r"^#{2,6} (.+?)\s*$", line)
            if match:
                anchors[slug(match[1])] = f"{page}#{slug(match[1])}"
    for page, found in placed.items():
        if len(found) == 1:
            # A page of one section: the page's title stands for the section's heading.
            heading, lines = found[0]
            found[0] = (heading, lines[1:])
            anchors[slug(heading)] = page
    for page, (title, intro, order) in PAGES.items():
        found = placed[page]
        rank = {h: i for i, h in enumerate(order)}
        found.sort(key=lambda item: rank.get(item[0], len(order)))
        body = [f"# {title}", "", intro, ""]
        lead = docs / "tooling" / "leads" / page
        if lead.is_file():
            body += [lead.read_text().rstrip(), ""]
        if not found:
            body.append("*(Nothing here yet.)*")
        for _, lines in found:
            body.extend(fix_links(line, page, anchors) for line in lines)
            body.append("")
        target = docs / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(body).rstrip() + "\n")
        print(f"{page}: {', '.join(h for h, _ in found) or '(empty)'}")
    for heading, page in unknown:
        print(f"WARNING: section {heading!r} is not in PAGES: placed on {page}", file=sys.stderr)
    return 0


def fix_links(line: str, page: str, anchors: dict[str, str]) -> str:
    here = posixpath.dirname(page)

    def fix(match: re.Match[str]) -> str:
        bang, text, url = match.groups()
        if re.match(r"^[a-z]+:", url) or url.startswith("//"):
            return match[0]
        if url.startswith("#"):
            target = anchors.get(url[1:])
            if target is None:
                return text
            path, _, fragment = target.partition("#")
            if path == page:
                return f"{bang}[{text}](#{fragment})" if fragment else text
            rel = posixpath.relpath(path, here) + (f"#{fragment}" if fragment else "")
            return f"{bang}[{text}]({rel})"
        path, _, fragment = url.partition("#")
        if path.startswith("docs/"):
            rel = posixpath.relpath(path.removeprefix("docs/"), here)
            return f"{bang}[{text}]({rel}{'#' + fragment if fragment else ''})"
        # A repository file outside the site: name it, as code, rather than a broken link.
        if bang:
            return f"`{path}`"
        return f"{text} (`{path}`)" if text.strip("`") != path else f"`{path}`"

    out = []
    for piece in re.split(r"(`[^`]*`)", line):
        out.append(piece if piece.startswith("`") else LINK.sub(fix, piece))
    return "".join(out)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
