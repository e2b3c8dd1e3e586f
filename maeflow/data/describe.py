"""The registered datasets' options and defaults, read from the builders themselves.

A dataset builder documents itself: its signature gives each option's name, type and default,
its docstring a summary and one ``:param name: text`` line (continued on indented lines) per
option. :func:`describe_datasets` reads them; :func:`render_markdown` turns them into the
reference that ``docs/data.md`` holds between the markers :data:`BEGIN` and :data:`END`, which
``python -m maeflow.data.docgen`` rewrites, so the documentation cannot drift from the code
(``tests/data/test_docgen.py`` fails when it does).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from maeflow.plugins import registry

BEGIN, END = "<!-- datasets:begin -->", "<!-- datasets:end -->"
REGENERATE = "python -m maeflow.data.docgen --write docs/data.md"
# the plugins shipped with maeflow: the committed docs describe these, not whatever else is installed
BUILTIN_PLUGINS = ("maeflow_audio", "maeflow_image", "maeflow_pointcloud", "maeflow_video")

_PARAM = re.compile(r"^:param\s+(\w+):\s*(.*)$")


@dataclass(frozen=True)
class OptionDoc:
    name: str
    annotation: str  # as written in the signature ("" when unannotated)
    default: str  # repr of the default ("" when required)
    description: str  # from the docstring's ``:param`` line ("" when missing)


@dataclass(frozen=True)
class DatasetDoc:
    name: str
    plugin: str
    summary: str  # the docstring without its ``:param`` lines
    options: tuple[OptionDoc, ...]

    @property
    def undocumented(self) -> list[str]:
        return [o.name for o in self.options if not o.description]


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {option: description})`` from a docstring whose options are ``:param name:
    text`` lines; a description continues on the following indented lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    summary: list[str] = []
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        match = _PARAM.match(line)
        if match:
            current = params.setdefault(match.group(1), [])
            current.append(match.group(2).strip())
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            current.append(line.strip())
        else:
            current = None
            summary.append(line)
    return "\n".join(summary).strip(), {k: " ".join(v).strip() for k, v in params.items()}


def describe_builder(name: str, builder: Callable, plugin: str = "") -> DatasetDoc:
    """One builder's options (every keyword but ``split``) with their docstring descriptions."""
    summary, described = parse_docstring(inspect.getdoc(builder))
    options = []
    for p in inspect.signature(builder).parameters.values():
        if p.name == "split" or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = "" if p.annotation is inspect.Parameter.empty else p.annotation
        if not isinstance(annotation, str):
            annotation = inspect.formatannotation(annotation)
        default = "" if p.default is inspect.Parameter.empty else repr(p.default)
        options.append(OptionDoc(p.name, annotation, default, described.get(p.name, "")))
    return DatasetDoc(name, plugin, summary, tuple(options))


def describe_datasets(plugins: Iterable[str] | None = None) -> list[DatasetDoc]:
    """Every registered dataset (only those of ``plugins`` when given), sorted by plugin then name."""
    wanted = None if plugins is None else set(plugins)
    docs = [
        describe_builder(e.name, e.obj, e.plugin)
        for e in registry("dataset").entries()
        if wanted is None or e.plugin in wanted
    ]
    return sorted(docs, key=lambda d: (d.plugin, d.name))


def _markdown(text: str) -> str:
    """reST inline markup as Markdown: ``x`` → `x`, :func:`~a.b` → `b`."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(datasets: Iterable[DatasetDoc]) -> str:
    """The reference block: per dataset a heading, its summary and a table of its options."""
    out = [BEGIN, f"<!-- generated from the dataset builders by `{REGENERATE}`; do not edit by hand -->", ""]
    for d in datasets:
        out += [f"### `{d.name}` ({d.plugin})", ""]
        paragraphs = [" ".join(p.split()) for p in d.summary.split("\n\n") if p.strip()]
        for paragraph in paragraphs:
            out += [_markdown(paragraph), ""]
        out += ["| option | type | default | meaning |", "|---|---|---|---|"]
        for o in d.options:
            default = f"`{_cell(o.default)}`" if o.default else "required"
            out.append(f"| `{o.name}` | {_cell(o.annotation)} | {default} | {_cell(o.description)} |")
        out.append("")
    out.append(END)
    return "\n".join(out) + "\n"


def splice(document: str, block: str) -> str:
    """``document`` with the text from :data:`BEGIN` to :data:`END` (markers included) replaced."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} ... {END} block to replace")
    return document[:start] + block.rstrip("\n") + document[end + len(END) :]
