"""cdk-nag: the AwsSolutions pack on the whole app, and suppressions that always carry a reason.

Every suppression goes through :func:`suppress` (a resource and its children) so that a reviewer
finds them all by one name; a suppression without a reason of some substance is refused.
"""

from __future__ import annotations

from typing import Iterable

from aws_cdk import Aspects
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions
from constructs import IConstruct


def apply_checks(app: IConstruct) -> None:
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))


def suppress(construct: IConstruct, rule: str, reason: str, applies_to: Iterable[str] | None = None) -> None:
    """Suppress one AwsSolutions rule on a construct and its children, with the reason why."""
    if len(reason.split()) < 6:
        raise ValueError(f"suppression of {rule} needs a real reason, got {reason!r}")
    rule_id = rule if rule.startswith("AwsSolutions-") else f"AwsSolutions-{rule}"
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule_id, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )
