"""``paretodistill.search(...)`` and ``paretodistill.distill(...)``: rooms that are also the API's calls.

The API's two calls have the names of the rooms that do the work. A function cannot simply stand
in the package under such a name: Python sets a package's attribute to its subpackage when that is
imported, so the first ``import paretodistill.search.stages`` would replace it. Instead each room's
module gets a class that calls the API function of its name (Python's documented module
``__class__`` assignment): ``paretodistill.search.stages`` stays a module, ``paretodistill.search(...)``
runs a search. The function is imported on the first call, so ``import paretodistill`` stays cheap.
"""

from __future__ import annotations

import importlib
import types


class CallablePackage(types.ModuleType):
    """A package that, called, runs ``paretodistill.api.<its name>``."""

    def __call__(self, *args, **kwargs):
        return self.api_function()(*args, **kwargs)

    @property
    def __signature__(self):  # inspect.signature and help() show the call's parameters
        import inspect

        return inspect.signature(self.api_function())

    def api_function(self):
        from paretodistill import api

        return getattr(api, self.__name__.rpartition(".")[2])


def make_callable(package: str) -> None:
    """Import ``package`` (a room's empty ``__init__``: no cost) and make it callable."""
    importlib.import_module(package).__class__ = CallablePackage
