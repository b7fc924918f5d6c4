"""Where a secret must never appear: a sweep of everything a run leaves behind (files, the Dagster
storage database, the catalog, the artifact bucket). Used by the production-flow test."""

from __future__ import annotations

import zlib
from pathlib import Path


def _text(value) -> str:
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        try:  # Dagster stores snapshots zlib-compressed
            value = zlib.decompress(value)
        except zlib.error:
            pass
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def in_files(secret: str, *roots: Path) -> list[str]:
    """Every file under `roots` (logs, compute logs, scratch, local artifacts) holding `secret`."""
    needle = secret.encode()
    return [str(p) for root in roots if root.exists() for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def in_postgres(secret: str, dbname: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres") -> list[str]:
    """Rows of any table of a Dagster storage database holding `secret`: runs, run tags, the event
    log, job and execution-plan snapshots (decompressed), daemon heartbeats, backfills."""
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=10)
    found: list[str] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = [t for (t,) in cur.fetchall()]
            for table in tables:
                cur.execute(f'SELECT * FROM "{table}"')
                cols = [c.name for c in cur.description]
                for row in cur:
                    found += [f"postgres {table}.{c}" for c, v in zip(cols, row) if secret in _text(v)]
    finally:
        conn.close()
    return sorted(set(found))


def in_mariadb(secret: str, url: str) -> list[str]:
    """Rows of any table of the catalog holding `secret` (e.g. an error line)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    found: list[str] = []
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                for row in conn.execute(text(f"SELECT * FROM `{table}`")):
                    found += [f"catalog {table}" for v in row if secret in _text(v)]
    finally:
        engine.dispose()
    return sorted(set(found))


def in_bucket(secret: str, s3, bucket: str, prefix: str = "") -> list[str]:
    """Objects of the bucket under `prefix` holding `secret`."""
    needle = secret.encode()
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if needle in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read():
                out.append(f"s3://{bucket}/{obj['Key']}")
    return out
