"""The settings reference in docs/ is generated from the table; it must be current."""

from palfrey.settings_doc import render
from tests.support import ROOT


def test_settings_reference_is_current() -> None:
    current = (ROOT / "docs" / "settings.md").read_text()
    assert current == render(), "docs/settings.md is stale: run `make docs`"
