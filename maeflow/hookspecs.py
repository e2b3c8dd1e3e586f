"""The maeflow plugin contract: every hook a plugin may implement.

A plugin is a module (or object) with functions decorated by :data:`maeflow.hookimpl`,
declared in its package metadata under the ``maeflow`` entry-point group::

    [project.entry-points.maeflow]
    my_modality = "my_package.plugin"

The built-in modality plugins are loaded through exactly this path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from maeflow._registry import Registrar

hookspec = pluggy.HookspecMarker("maeflow")
# the marker for implementations lives beside the specs (datasette's layout), so that the built-in
# components (maeflow._builtins) and the plugin manager (maeflow.plugins) both import it from here
hookimpl = pluggy.HookimplMarker("maeflow")


@hookspec
def maeflow_register(registry: Registrar) -> None:
    """Add this plugin's components to maeflow's registries.

    :param registry: a :class:`maeflow.Registrar` bound to this plugin's name; call
        ``registry.model(name, builder)``, ``registry.tokenizer(...)``, ``registry.masker(...)``,
        ``registry.target_normalizer(...)``, ``registry.loss(...)``, ``registry.dataset(...)``,
        ``registry.demo(name, config)``, ``registry.visualizer(modality, fn)`` and
        ``registry.checkpoint_format(...)``.
    :return: nothing; a name registered twice by different plugins is an error.

    Called once per process, when a registry is first used.
    """
