"""What each metadata key means, written once per asset and shown in the asset's description in the UI.

Dagster metadata entries carry no description of their own, so each asset declares its keys with a
sentence each; `described` appends them to the asset's description (rendered as Markdown on the
asset's page) and tests check that every key an asset records is declared.
"""

from __future__ import annotations

from collections.abc import Mapping


def described(description: str, keys: Mapping[str, str]) -> str:
    """The description, then a table of the metadata keys its materializations record."""
    rows = "\n".join(f"| `{key}` | {meaning} |" for key, meaning in keys.items())
    return f"{description}\n\n**Metadata of each materialization**\n\n| key | meaning |\n|---|---|\n{rows}\n"


def undeclared(metadata: Mapping[str, object], keys: Mapping[str, str]) -> list[str]:
    """Keys recorded but not declared (Dagster's own `dagster/...` keys explain themselves)."""
    return sorted(k for k in metadata if k not in keys and not k.startswith("dagster/"))
