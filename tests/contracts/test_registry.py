"""The plug-in registry: registration, lookups with suggestions, entry-point plug-ins, the built-in families."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import contracts.registry as registry_module
from contracts.registry import Registry, UnknownName


def test_every_built_in_family_is_registered_under_its_spec_key():
    from baselines import Strategy, strategies

    assert strategies.names() == ["finetune_rag", "full", "ia3", "lora", "prompting", "qlora", "rag"]
    assert all(issubclass(cls, Strategy) for _, cls in strategies.items())


def test_register_get_and_unregister():
    things: Registry[object] = Registry("thing")
    marker = object()
    assert things.register("a")(marker) is marker  # usable as a decorator
    assert things.get("a") is marker and "a" in things and things.names() == ["a"]
    things.register("a")(marker)  # registering the same object again is harmless
    things.unregister("a")
    assert "a" not in things and things.names() == []


def test_a_second_object_under_a_taken_name_is_refused():
    things: Registry[object] = Registry("thing")
    things.register("a")(object())
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.register("a")(object())


def test_unknown_name_suggests_the_nearest_and_lists_the_known():
    things: Registry[int] = Registry("chunker")
    things.register("sentence")(1)
    things.register("fixed")(2)
    with pytest.raises(UnknownName) as err:
        things.get("sentense")
    assert isinstance(err.value, KeyError)  # callers may catch a plain KeyError
    assert str(err.value) == "unknown chunker 'sentense'. Did you mean 'sentence'? Known: fixed, sentence"
    with pytest.raises(UnknownName, match=r"^unknown chunker 'zzz'\. Known: fixed, sentence$"):
        things.get("zzz")  # nothing close: no suggestion


def _entry_points(monkeypatch, loaded: list[str]):
    def fake(group):
        assert group == "advisor.test"
        return [SimpleNamespace(name="plugin", load=lambda: loaded.append("plugin") or "from a package")]

    monkeypatch.setattr(registry_module, "entry_points", fake)


def test_entry_point_plugins_load_on_first_lookup(monkeypatch):
    monkeypatch.delenv("ADVISOR_NO_PLUGINS", raising=False)
    loaded: list[str] = []
    _entry_points(monkeypatch, loaded)
    things: Registry[str] = Registry("thing", entry_point_group="advisor.test")
    things.register("builtin")("here")
    assert loaded == []  # nothing imported at construction
    assert things.names() == ["builtin", "plugin"] and things.get("plugin") == "from a package"
    assert loaded == ["plugin"]  # loaded once


def test_no_plugins_when_disabled(monkeypatch):
    monkeypatch.setenv("ADVISOR_NO_PLUGINS", "1")
    loaded: list[str] = []
    _entry_points(monkeypatch, loaded)
    things: Registry[str] = Registry("thing", entry_point_group="advisor.test")
    assert things.names() == [] and loaded == []
