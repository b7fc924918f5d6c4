"""Docs tables generated from the Definitions, so the docs cannot drift from the code.

`make docs` (python -m prism_assets.docgen --write) rewrites the blocks between
`<!-- BEGIN GENERATED: <name> -->` and `<!-- END GENERATED: <name> -->` in docs/architecture.md and
docs/schema.md; `--check` (and the test suite) fails when a committed block differs from what the
Definitions give. Blocks: `domains`, `assets`, `checks`, `automation` (architecture.md),
`artifacts` (schema.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .introspect import asset_rows, automation, check_rows

DOCS = {"architecture.md": ("domains", "graph", "assets", "checks", "automation"), "schema.md": ("artifacts",)}
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[a-z_-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S)


def _cell(text) -> str:
    return str(text if text not in (None, "") else "-").replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _code(x) -> str:
    return f"`{x}`" if x not in (None, "", "-") else "-"


def render(defs, domains) -> dict[str, str]:
    """Every generated block (name -> markdown) for the given Definitions and their domains."""
    order = {o: (di, si, oi) for di, d in enumerate(domains) for si, sig in enumerate(d.signals) for oi, o in enumerate(sig.output_names)}
    assets = sorted(asset_rows(defs), key=lambda r: order.get(r.key, (len(order), 0, 0)))
    by_domain: dict[str, list[str]] = {}
    for r in assets:
        by_domain.setdefault(r.domain, []).append(r.key)
    blocks = {}
    blocks["domains"] = _table(
        ["domain (group)", "what it is", "assets", "profile defaults (`<domain>:` section)"],
        [[f"`{d.name}`", d.description, ", ".join(f"`{k}`" for k in by_domain.get(d.name, [])),
          f"`{json.dumps(d.defaults, sort_keys=True)}`" if d.defaults else "-"] for d in domains])
    lines = ["```mermaid", "flowchart LR"]
    for d in domains:
        keys = by_domain.get(d.name, [])
        if not keys:
            continue
        lines.append(f"    subgraph {d.name}")
        for r in (r for r in assets if r.domain == d.name):
            extra = [f"step {r.step}" if r.step != r.key else "", f"pool {r.pool}" if r.pool else "", r.partitions if r.partitions != "titles" else ""]
            label = r.key + "".join(f"<br/>{e}" for e in extra if e)
            lines.append(f'        {r.key}["{label}"]')
        lines.append("    end")
    lines += [f"    {i} --> {r.key}" for r in assets for i in r.inputs]
    blocks["graph"] = "\n".join(lines + ["```"]) + "\n"
    blocks["assets"] = _table(
        ["asset", "domain", "step", "partitions", "pool", "code version", "inputs", "exported as"],
        [[f"`{r.key}`", r.domain, _code(r.step), r.partitions, r.pool or "-", _code(r.code_version),
          ", ".join(f"`{i}`" for i in r.inputs) or "-", _code(r.export)] for r in assets])
    blocks["checks"] = _table(
        ["asset", "check", "blocking", "per partition", "what it checks"],
        [[f"`{c.asset}`", f"`{c.name}`", "yes" if c.blocking else "no", "yes" if c.partitioned else "no", c.description]
         for c in sorted(check_rows(defs), key=lambda c: (order.get(c.asset, (len(order), 0, 0)), c.name))])
    auto = automation(defs)
    blocks["automation"] = "".join(
        f"**{kind}**\n\n" + _table(["name", "what it does"], [[f"`{n}`", d] for n, d in auto[kind]]) + "\n"
        for kind in ("jobs", "schedules", "sensors")).rstrip("\n") + "\n"
    blocks["artifacts"] = _table(
        ["asset", "artifact", "schema version", "code version", "exported as"],
        [[f"`{r.key}`", _code(r.artifact), _code(r.schema_version), _code(r.code_version), _code(r.export)] for r in assets])
    return blocks


def rewrite(text: str, blocks: dict[str, str]) -> tuple[str, set[str]]:
    """`text` with its generated blocks replaced; and the names of the blocks it holds."""
    found: set[str] = set()

    def sub(m):
        found.add(m.group("name"))
        body = blocks.get(m.group("name"))
        return m.group(0) if body is None else m.group(1) + body + m.group(4)

    return BLOCK.sub(sub, text), found


def default_definitions():
    """The code location's Definitions and domains as documented: the default settings, no environment."""
    from .core.domain import load_domains
    from .definitions import build_definitions
    from .settings import PrismSettings

    settings = PrismSettings.from_env(env={}, data_dir="/tmp/prism-docs")
    return build_definitions(settings), load_domains(settings.domains)


def stale(docs_dir: Path, defs=None, domains=None) -> list[str]:
    """Docs whose generated blocks differ from the Definitions (or that lack a block): '<file>: <block>'."""
    if defs is None:
        defs, domains = default_definitions()
    blocks = render(defs, domains)
    out = []
    for name, wanted in DOCS.items():
        text = (docs_dir / name).read_text()
        for b in wanted:
            body = _block(text, b)
            if body is None:
                out.append(f"{name}: {b} (block missing)")
            elif body != blocks[b]:
                out.append(f"{name}: {b}")
    return out


def _block(text: str, name: str) -> str | None:
    for m in BLOCK.finditer(text):
        if m.group("name") == name:
            return m.group("body")
    return None


def write(docs_dir: Path) -> list[str]:
    defs, domains = default_definitions()
    blocks = render(defs, domains)
    written = []
    for name in DOCS:
        path = docs_dir / name
        text = path.read_text()
        new, _ = rewrite(text, blocks)
        if new != text:
            path.write_text(new)
            written.append(name)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prism_assets.docgen", description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 when a generated block is out of date")
    args = ap.parse_args(argv)
    if args.write:
        written = write(args.docs)
        print(f"updated: {', '.join(written)}" if written else "docs up to date")
        return 0
    bad = stale(args.docs)
    for b in bad:
        print(f"out of date: {b} (run `make docs`)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
