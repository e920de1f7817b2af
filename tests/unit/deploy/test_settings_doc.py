"""docs/configuration.md is generated from Settings and must not go stale."""

from __future__ import annotations

from pathlib import Path

from deploy_support import ROOT

from engine import settings_doc
from engine.settings import Settings


def test_configuration_doc_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == settings_doc.render(), (
        "stale: python -m engine.settings_doc docs/configuration.md"
    )


def test_every_field_has_a_row_with_its_env_var() -> None:
    text = settings_doc.render()
    for name, field in Settings.model_fields.items():
        assert f"| `{name}` | `CLUSTERBUS_{name.upper()}` |" in text
        assert field.description, f"{name} needs a description for the doc"


def test_type_and_default_rendering() -> None:
    text = settings_doc.render()
    assert "| `shards` | `CLUSTERBUS_SHARDS` | int | `4` |" in text
    assert "`classic` \\| `quorum`" in text
    assert settings_doc.type_name(tuple[int, ...]) == "tuple[int, ...]"
    assert settings_doc.type_name(int | None) == "int \\| None"


def test_main_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "configuration.md"
    assert settings_doc.main([str(target)]) == 0
    assert target.read_text() == settings_doc.render()
