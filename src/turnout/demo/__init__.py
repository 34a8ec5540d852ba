"""`turnout demo`: the whole blueprint on embedded defaults, in one command.

It sits above every other layer (it drives a gateway, the index and the stand-in
upstream); only the CLI imports it.
"""

from ._providers import DemoProviders, from_environment
from ._summary import Summary
from ._tour import DemoOptions, run_demo

__all__ = ["DemoOptions", "DemoProviders", "Summary", "from_environment", "run_demo"]
