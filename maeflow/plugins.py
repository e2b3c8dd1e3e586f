"""The plugin manager: loads entry points, runs the registration hook, holds the registries.

Disable plugins by entry-point name with ``MAEFLOW_DISABLE_PLUGINS=name1,name2``; skip
entry-point discovery entirely with ``MAEFLOW_NO_ENTRYPOINTS=1`` (tests register what they
need by hand).
"""

from __future__ import annotations

import logging
import os
import threading
from importlib.metadata import entry_points
from typing import Any

import pluggy

from maeflow import _builtins, hookspecs
from maeflow._errors import unknown_name_message
from maeflow._registry import KINDS, Registrar, Registry

log = logging.getLogger(__name__)

ENTRYPOINT_GROUP = "maeflow"
DISABLE_ENV = "MAEFLOW_DISABLE_PLUGINS"
NO_ENTRYPOINTS_ENV = "MAEFLOW_NO_ENTRYPOINTS"

_lock = threading.RLock()
_state: dict[str, Any] = {}


def disabled_plugins() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _new_manager(load_entrypoints: bool, extra: tuple[tuple[str, Any], ...]) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("maeflow")
    pm.add_hookspecs(hookspecs)
    for name in disabled_plugins():
        pm.set_blocked(name)
    pm.register(_builtins, name="maeflow")
    if load_entrypoints and os.environ.get(NO_ENTRYPOINTS_ENV, "") not in ("1", "true", "yes"):
        _load_entrypoints(pm)
    for name, plugin in extra:
        if not pm.is_blocked(name):
            pm.register(plugin, name=name)
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    """Like pluggy's ``load_setuptools_entrypoints``, but a plugin that fails to import is
    reported and skipped instead of taking every other plugin down with it."""
    failed = _state.setdefault("failed", {})
    failed.clear()
    for ep in entry_points(group=ENTRYPOINT_GROUP):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            failed[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("maeflow plugin %r (%s) failed to load and is skipped: %s", ep.name, ep.value, exc)
            continue
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        if dist is not None:
            _state.setdefault("dists", {})[ep.name] = f"{dist.metadata['Name']} {dist.version}"


def _register_all(pm: pluggy.PluginManager) -> dict[str, Registry]:
    registries = {kind: Registry(kind) for kind in KINDS}
    # call each plugin's hook with a registrar bound to its own name, so every component
    # records which plugin provided it
    for impl in pm.hook.maeflow_register.get_hookimpls():
        impl.function(registry=Registrar(registries, impl.plugin_name))
    return registries


def setup(load_entrypoints: bool = True, plugins: dict[str, Any] | None = None) -> pluggy.PluginManager:
    """(Re)build the plugin manager and registries.

    :param load_entrypoints: discover installed plugins through the ``maeflow`` entry points.
    :param plugins: extra plugin objects to register by name (e.g. in tests).
    """
    with _lock:
        pm = _new_manager(load_entrypoints, tuple((plugins or {}).items()))
        _state["pm"] = pm
        _state["registries"] = _register_all(pm)
        return pm


def plugin_manager() -> pluggy.PluginManager:
    with _lock:
        if "pm" not in _state:
            setup()
        return _state["pm"]


def registries() -> dict[str, Registry]:
    with _lock:
        if "registries" not in _state:
            setup()
        return _state["registries"]


def registry(kind: str) -> Registry:
    regs = registries()
    if kind not in regs:
        raise ValueError(unknown_name_message("component kind", kind, regs))
    return regs[kind]


def register(kind: str, name: str, obj: Any, override: bool = False) -> None:
    """Register one component from user code (plugin name ``user``)."""
    Registrar(registries(), "user").add(kind, name, obj, override=override)


def reset() -> None:
    """Forget the plugin manager; the next registry access rebuilds it."""
    with _lock:
        _state.clear()


def plugin_summary() -> list[dict[str, Any]]:
    """One row per plugin: name, distribution (if any), and what it registered by kind."""
    pm = plugin_manager()
    dists = _state.get("dists", {})
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda x: x[0]):
        if plugin is None:
            continue
        components: dict[str, list[str]] = {}
        for kind, reg in registries().items():
            got = [e.name for e in reg.entries() if e.plugin == name]
            if got:
                components[kind] = got
        rows.append(
            {
                "name": name,
                "distribution": dists.get(name),
                "components": components,
            }
        )
    for name in sorted(disabled_plugins()):
        rows.append({"name": name, "distribution": None, "components": {}, "disabled": True})
    for name, error in sorted(_state.get("failed", {}).items()):
        rows.append({"name": name, "distribution": None, "components": {}, "error": error})
    return rows
