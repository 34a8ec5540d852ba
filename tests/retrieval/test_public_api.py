"""The public APIs of `turnout.retrieval` and `turnout.evaluation` are deliberate."""

from __future__ import annotations

import types

import pytest

import turnout.core
import turnout.evaluation
import turnout.retrieval


@pytest.mark.parametrize("module", [turnout.retrieval, turnout.evaluation])
def test_all_is_exactly_the_public_names(module: types.ModuleType) -> None:
    public = {n for n, v in vars(module).items() if not n.startswith("_")}
    submodules = {n for n, v in vars(module).items() if isinstance(v, types.ModuleType)}
    assert public - submodules - {"annotations"} == set(module.__all__)


@pytest.mark.parametrize("module", [turnout.retrieval, turnout.evaluation])
def test_errors_join_the_one_tree(module: types.ModuleType) -> None:
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, turnout.core.TurnoutError), name


def test_importing_the_libraries_loads_no_model_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, turnout.retrieval, turnout.evaluation; "
        "print(sorted({'torch', 'transformers', 'faiss', 'huggingface_hub'} & set(sys.modules)))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
