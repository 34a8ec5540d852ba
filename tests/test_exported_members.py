"""The public API of `turnout.core` is deliberate: adding or removing a name is a decision."""

from __future__ import annotations

import turnout.core


def test_all_names_exist() -> None:
    for name in turnout.core.__all__:
        assert hasattr(turnout.core, name), name


def test_public_names_are_exported() -> None:
    public = {n for n in vars(turnout.core) if not n.startswith("_")}
    submodules = {n for n, v in vars(turnout.core).items() if type(v).__name__ == "module"}
    assert public - submodules - {"annotations"} == set(turnout.core.__all__)


def test_errors_form_one_tree() -> None:
    for name in turnout.core.__all__:
        obj = getattr(turnout.core, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, turnout.core.TurnoutError), name
