#!/usr/bin/env python3
"""Prism's AWS estate: `npx cdk synth` (every environment of deploy/environments.yaml) or
`npx cdk synth -c env=prod` (one). Account ids: PRISM_<ENV>_ACCOUNT_ID, or CDK_DEPLOY_ACCOUNT with
-c env=<name>; the file's placeholders otherwise. See docs/deploy.md, "The estate as code"."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # node 20 is what the CI image has

from prism_infra.estate import build_app  # noqa: E402

app, _ = build_app()
app.synth()
