"""What commands share: settings and the catalog, loaded once and only when needed."""

from __future__ import annotations

import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from turnout.core import Catalog, Settings


class CliState:
    def __init__(self, config: Path | None) -> None:
        self.config = config

    @cached_property
    def settings(self) -> Settings:
        from turnout.core import load_settings

        return load_settings(self.config)

    @cached_property
    def catalog(self) -> Catalog:
        from turnout.core import load_catalog

        return load_catalog(self.settings.catalog_files)


def console() -> Console:
    from rich.console import Console

    # Piped output (CI logs, files) gets a fixed width instead of rich's 80 columns.
    return Console(width=None if sys.stdout.isatty() else 120)


def usd(amount: object, places: int = 6) -> str:
    """Dollars for people: micro-dollar precision, more digits only when needed."""
    from decimal import ROUND_HALF_UP, Decimal

    value = Decimal(str(amount))
    rounded = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    # A sub-micro-dollar amount shows its digits rather than $0.000000.
    text = f"{value.normalize():f}" if value and not rounded else f"{rounded:f}"
    return f"${text}"
