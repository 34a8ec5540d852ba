"""The README documents every setting and every command (a failing test, not a wish)."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.core import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert f"`{name}`" in README
    assert f"`TURNOUT_{name.upper()}" in README


def _commands() -> list[str]:
    import typer.main

    from turnout.cli import app

    group = typer.main.get_command(app)
    names = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        names += [f"turnout {name} {sub}" for sub in subs] if subs else [f"turnout {name}"]
    return names


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented(command: str) -> None:
    assert command in README, f"{command!r} is not in the README"


def test_readme_opens_with_the_two_commands() -> None:
    head = README[:800]
    assert "make demo" in head and "make test" in head
