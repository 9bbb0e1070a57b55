import pytest

from faceapp.core.registry import Registry


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
