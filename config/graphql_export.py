"""Writes what the GraphQL code implies and the repository ships: ``schema.graphql`` at the
root and ``config/graphql_persisted/manifest.json`` (sha256 of each persisted document).

    python -m config.graphql_export            # rewrite both
    python -m config.graphql_export --check    # exit 1 if either differs (CI, tests)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import django


def expected() -> dict:
    """``{path: text}`` of the two generated files, from the code."""
    # Imported here: the schema imports the apps' models, so the app registry must be ready first.
    from config import graphql

    manifest = json.dumps(graphql.build_manifest(), indent=2, sort_keys=True) + "\n"
    return {graphql.SCHEMA_FILE: graphql.schema.as_str() + "\n", graphql.MANIFEST: manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    stale = []
    for path, text in expected().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
