"""`python -m service docs`: build the documentation site (mkdocs.yml) and serve it locally.

Builds with `mkdocs build --strict` into site/ (needs `pip install -e ".[docs]"` and a checkout:
the site's sources are not part of the package), then serves that folder with the standard
library's http.server, offline, until Ctrl-C. `--no-build` serves the folder as it is.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mkdocs.yml"
SITE = ROOT / "site"
REFUSED = 2


def add_command(commands: Any) -> None:
    docs = commands.add_parser("docs", help="build the documentation site and serve it locally")
    docs.add_argument("--bind", default="127.0.0.1", help="address to serve on (127.0.0.1)")
    docs.add_argument("--docs-port", type=int, default=8001, help="port to serve on (8001)")
    docs.add_argument("--site-dir", type=Path, default=SITE, help=f"built site folder ({SITE})")
    docs.add_argument("--no-build", action="store_true", help="serve the folder as it is")


def server(site: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    return http.server.ThreadingHTTPServer((host, port), handler)


def build(site: Path) -> str | None:
    """Builds the site into `site`; the reason it cannot, or None."""
    if not CONFIG.is_file():
        return f"no {CONFIG}: the site's sources come with a checkout of the repository"
    if importlib.util.find_spec("mkdocs") is None:
        return 'mkdocs is not installed: pip install -e ".[docs]"'
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(CONFIG)]
    done = subprocess.run([*command, "--site-dir", str(site.resolve())], cwd=ROOT, check=False)
    return None if done.returncode == 0 else f"mkdocs build failed (exit {done.returncode})"


def run(args: argparse.Namespace) -> int:
    site: Path = args.site_dir
    if not args.no_build:
        refused = build(site)
        if refused:
            print(f"docs: {refused}", file=sys.stderr)
            return REFUSED
    if not (site / "index.html").is_file():
        print(f"docs: {site} holds no built site (index.html); drop --no-build", file=sys.stderr)
        return REFUSED
    httpd = server(site, args.bind, args.docs_port)
    host, port = httpd.server_address[:2]
    print(f"docs: serving {site} on http://{host!s}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
