"""Identity names from hostile or careless input: normal form, invisible characters, id-reference names,
literal search (issue 15), on a real SQLite store."""

from __future__ import annotations

import unicodedata

import pytest

from faceapp.storage import NameInUseError, Store
from faceapp.storage.records import FieldError

NFC_JOSE = unicodedata.normalize("NFC", "José")
NFD_JOSE = unicodedata.normalize("NFD", "José")


def test_nfc_and_nfd_spellings_are_one_person(store: Store) -> None:
    assert NFC_JOSE != NFD_JOSE
    first = store.identities.add(NFD_JOSE)
    assert first.name == NFC_JOSE                                   # stored in NFC
    with pytest.raises(NameInUseError):
        store.identities.add(NFC_JOSE)
    assert store.identities.get(NFD_JOSE).id == store.identities.get(NFC_JOSE).id == first.id


@pytest.mark.parametrize("name", ["Ada\u200b", "Ada\u200d", "\u202eadA", "A\u00adda", "Ada\u3164",
                                  "\x1b[31mAda\x1b[0m", "Ada\x07", "Ada\x00"])
def test_control_and_invisible_characters_are_refused(store: Store, name: str) -> None:
    store.identities.add("Ada")
    with pytest.raises(FieldError, match="control or invisible") as caught:
        store.identities.add(name)
    assert "\x1b" not in str(caught.value) and "\u200b" not in str(caught.value)   # the message itself is safe
    with pytest.raises(FieldError, match="control or invisible"):
        store.identities.rename("Ada", name)
    assert [i.name for i in store.identities.list()] == ["Ada"]


@pytest.mark.parametrize("name, problem", [("", "empty"), ("   ", "empty"), ("x" * 100_000, "100000 characters")])
def test_empty_and_very_long_names_are_refused(store: Store, name: str, problem: str) -> None:
    with pytest.raises(FieldError, match=problem):
        store.identities.add(name)


def test_names_of_the_id_reference_form_are_refused(store: Store) -> None:
    ids = [store.identities.add(f"person {n}").id for n in range(9)]
    assert ids[-1] == 9
    with pytest.raises(FieldError, match="id reference"):
        store.identities.rename("person 0", "#9")
    with pytest.raises(FieldError, match="id reference"):
        store.identities.add("#\u0669")                             # Arabic-Indic nine: int() reads it as 9
    assert store.identities.get("#9").name == "person 8"
    assert store.identities.get("person 0").id == ids[0]


def test_search_wildcards_are_literal(store: Store) -> None:
    for name in ("Ada", "Bob", "100% Carol", "Dan_Smith", "Eve\\Back"):
        store.identities.add(name)
    assert [i.name for i in store.identities.list("%")] == ["100% Carol"]
    assert [i.name for i in store.identities.list("_")] == ["Dan_Smith"]
    assert [i.name for i in store.identities.list("\\")] == ["Eve\\Back"]
    assert [i.name for i in store.identities.list("a")] == ["100% Carol", "Ada", "Dan_Smith", "Eve\\Back"]
    assert [i.name for i in store.identities.list(NFD_JOSE)] == []
