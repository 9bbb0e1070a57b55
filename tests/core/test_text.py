"""faceapp.core.text.visible: outside text shown without acting on the terminal."""

from faceapp.core.text import visible


def test_escape_codes_and_invisible_characters_become_visible_escapes() -> None:
    assert visible("\x1b[2J\x1b[31mAda") == "\\x1b[2J\\x1b[31mAda"
    assert visible("Ada\u200b") == "Ada\\u200b" and visible("\u202eevil") == "\\u202eevil"
    assert visible("José Ødegård 李雷 محمد") == "José Ødegård 李雷 محمد"
    assert visible(None) == "-" and visible("a\nb") == "a\\nb"
