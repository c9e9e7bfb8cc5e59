"""Every module in plugins/modules documents itself: its DOCUMENTATION is YAML
that ansible-doc (and ansible-lint) can read, it names the module, and it
documents exactly the options the module's argument_spec accepts, with the
same types, defaults and required flags (suboptions too).

Three modules once had a description line with ": " in it, which YAML reads
as a mapping: ansible-doc printed nothing for them and ansible-lint reported
"Unable to parse documentation" while its profile still passed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


# What an option's documentation and its argument_spec entry must agree on,
# with Ansible's default for each.
KEYS = (("type", "str"), ("elements", None), ("required", False), ("default", None))


class _Captured(Exception):
    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__("argument_spec captured")
        self.spec = spec


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _argument_spec(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """main()'s argument_spec, taken from its AnsibleModule(...) call."""

    def capture(*_args: Any, **kwargs: Any) -> None:
        raise _Captured(kwargs["argument_spec"])

    monkeypatch.setattr(module, "AnsibleModule", capture)
    with pytest.raises(_Captured) as caught:
        module.main()
    return caught.value.spec


def _compare(documented: dict[str, Any], accepted: dict[str, Any], where: str) -> list[str]:
    problems = []
    for name in sorted(set(documented) ^ set(accepted)):
        side = "documented, not accepted" if name in documented else "accepted, not documented"
        problems.append(f"{where}{name}: {side}")
    for name in sorted(set(documented) & set(accepted)):
        doc, arg = documented[name] or {}, accepted[name]
        if not doc.get("description"):
            problems.append(f"{where}{name}: no description")
        for key, default in KEYS:
            said, taken = doc.get(key, default), arg.get(key, default)
            if said != taken:
                problems.append(f"{where}{name}: {key} documented {said!r}, accepted {taken!r}")
        subs = doc.get("suboptions") or {}
        problems += _compare(subs, arg.get("options") or {}, f"{where}{name}.")
    return problems


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_documentation_parses_and_matches_the_argument_spec(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _load(path)
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert isinstance(doc, dict), f"{path.name}: DOCUMENTATION is not a YAML mapping"
    assert doc.get("module") == path.stem
    assert doc.get("short_description")
    description = doc.get("description")
    assert isinstance(description, list) and all(isinstance(d, str) for d in description)
    for block in ("EXAMPLES", "RETURN"):
        text = getattr(module, block, None)
        if text is not None:
            yaml.safe_load(text)
    assert _compare(doc.get("options") or {}, _argument_spec(module, monkeypatch), "") == []


def test_a_colon_in_a_description_line_is_what_breaks_it() -> None:
    """The check above fails on the mistake the three modules made."""
    broken = "module: m\ndescription:\n  - One line,\n    another: this is a mapping now.\n"
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(broken)
