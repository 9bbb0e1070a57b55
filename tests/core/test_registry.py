import sys

import pytest

from faceapp.core.registry import Registry, import_submodules


def test_register_create_and_describe():
    reg: Registry[object] = Registry("widget")

    @reg.register("Square")
    class Square:
        """A square of a given side.

        More text."""

        def __init__(self, side: int = 1) -> None:
            self.side = side

    assert reg.names() == ["square"]
    assert reg.create("SQUARE", side=3).side == 3
    assert reg.describe() == {"square": "A square of a given side."}
    assert "square" in reg and len(reg) == 1


def test_unknown_and_duplicate_names_are_refused():
    reg: Registry[object] = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(KeyError, match="unknown widget 'b'; known: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("A")(lambda: 2)


def test_import_submodules_imports_in_name_order_with_a_prefix_and_reports_broken_modules(tmp_path, monkeypatch):
    package = tmp_path / "plugins_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("LOADED = []\n")
    for name in ("stage_b", "stage_a", "other"):
        (package / f"{name}.py").write_text(f"from plugins_for_test import LOADED\nLOADED.append({name!r})\n")
    (package / "stage_c.py").write_text("raise RuntimeError('broken plugin')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(RuntimeError, match="broken plugin"):
            import_submodules("plugins_for_test", prefix="stage_")
        skipped = []
        modules = import_submodules("plugins_for_test", on_error=lambda name, error: skipped.append((name, str(error))))
        loaded = sys.modules["plugins_for_test"].LOADED
        assert loaded == ["stage_a", "stage_b", "other"]              # name order; each module imported once
        assert [m.__name__ for m in modules] == ["plugins_for_test.other", "plugins_for_test.stage_a",
                                                 "plugins_for_test.stage_b"]
        assert skipped == [("plugins_for_test.stage_c", "broken plugin")]
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "plugins_for_test"]:
            del sys.modules[name]
