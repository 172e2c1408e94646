"""Every hook has a section in docs/plugin_hooks.md with the same arguments, and a docstring."""

import inspect
import os
import re

from wms.plugins import hookspecs

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "plugin_hooks.md")


def hook_functions():
    return {name: f for name, f in vars(hookspecs).items() if name.startswith("wms_") and callable(f)}


def documented():
    with open(DOCS) as fh:
        return {m.group(1): m.group(2) for m in re.finditer(r"^## (wms_\w+)\(([^)]*)\)", fh.read(), re.M)}


def test_every_hook_is_documented_with_its_arguments():
    docs = documented()
    for name, function in hook_functions().items():
        assert name in docs, f"{name} has no section in docs/plugin_hooks.md"
        arguments = ", ".join(inspect.signature(function).parameters)
        assert docs[name] == arguments, f"docs give {name}({docs[name]}), the hook is {name}({arguments})"


def test_no_section_documents_a_hook_that_does_not_exist():
    assert set(documented()) <= set(hook_functions())


def test_every_hookspec_has_a_docstring():
    for name, function in hook_functions().items():
        assert (function.__doc__ or "").strip(), f"{name} has no docstring"
