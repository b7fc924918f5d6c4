"""The per-title outputs of the code location as one graph: which step makes each output, at which
code version, and what a skipped step takes with it. Used by the per-title SLA (what is overdue)
and the manifest fan-out (which titles are already up to date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TitleGraph:
    outputs: dict[str, str]  # per-title output asset -> step
    code_versions: dict[str, str]  # step -> code version
    downstream: dict[str, frozenset[str]]  # output -> every per-title output depending on it (transitively)

    @classmethod
    def from_signals(cls, signals) -> "TitleGraph":
        per_title = [s for s in signals if s.partitions == "titles"]
        outputs = {o.name: s.name for s in per_title for o in s.outputs}
        direct: dict[str, set[str]] = {k: set() for k in outputs}
        for s in per_title:
            for i in s.inputs:
                if i in direct:
                    direct[i].update(o.name for o in s.outputs)
        closure = {}
        for k in outputs:
            seen, todo = set(), [k]
            while todo:
                for d in direct[todo.pop()]:
                    if d not in seen:
                        seen.add(d)
                        todo.append(d)
            closure[k] = frozenset(seen)
        return cls(outputs=outputs, code_versions={s.name: s.code_version for s in per_title}, downstream=closure)

    def expected(self, skipped_steps: set[str]) -> set[str]:
        """The outputs a title should have when these steps had nothing to produce for it."""
        gone = {o for o, step in self.outputs.items() if step in skipped_steps}
        for o in list(gone):
            gone |= self.downstream[o]
        return set(self.outputs) - gone

    def missing(self, catalog, title_id: str, since: datetime, current_code: bool = False) -> list[str]:
        """Expected outputs of the title not written since `since` (naive UTC; with `current_code`,
        also those written by an older code version of their step)."""
        produced, skipped = catalog.outputs_since(title_id, since)
        ok = {o for o, cv in produced.items() if not current_code or cv == self.code_versions.get(self.outputs.get(o, ""), cv)}
        return sorted(self.expected(skipped) - ok)
