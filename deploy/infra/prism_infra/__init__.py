"""The Prism AWS estate as a CDK v2 app (deploy/infra/app.py): one stack set per environment of
deploy/environments.yaml. ``prism_infra.estate.build_app`` builds it; ``prism_infra.config`` reads the
environment file without importing the CDK (no jsii process)."""
