"""docs/data.md's dataset reference is generated from the builders and must match them."""

from pathlib import Path

import pytest

from maeflow.data import describe_datasets
from maeflow.data.describe import BEGIN, BUILTIN_PLUGINS, END, REGENERATE, parse_docstring, render_markdown, splice
from maeflow.data.docgen import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def test_committed_docs_match_the_builders():
    current = DOCS.read_text(encoding="utf-8")
    fresh = splice(current, render_markdown(describe_datasets(BUILTIN_PLUGINS)))
    assert fresh == current, f"docs/data.md is out of date with the dataset builders; regenerate it: {REGENERATE}"


def test_every_builtin_dataset_is_described_and_documents_every_option():
    docs = describe_datasets(BUILTIN_PLUGINS)
    names = {d.name for d in docs}
    assert {"image_folder", "digits", "video_folder", "moving_digits", "audio_folder", "synthetic_sounds",
            "pointcloud_folder", "synthetic_shapes"} <= names  # fmt: skip
    missing = {d.name: d.undocumented for d in docs if d.undocumented}
    assert not missing, f"options without a ':param name:' line in the builder's docstring: {missing}"
    for d in docs:
        assert d.summary and ":param" not in d.summary, d.name
        assert all(o.default for o in d.options), f"{d.name}: every dataset option needs a default"


def test_parse_docstring_reads_params_with_continuation_lines():
    summary, params = parse_docstring(
        """Summary line.

        More prose.

        :param root: the folder,
            read recursively.
        :param seed: fixes it.

        Trailing prose.
        """
    )
    assert params == {"root": "the folder, read recursively.", "seed": "fixes it."}
    assert summary == "Summary line.\n\nMore prose.\n\n\nTrailing prose."


def test_a_third_party_builder_is_described_from_its_signature(tmp_path):
    from maeflow.data.describe import describe_builder

    def signals(split: str = "train", length: int = 64, scale: "float | None" = None):
        """Generated 1-D signals.

        :param length: samples per item.
        """

    d = describe_builder("signals", signals, "my_plugin")
    assert [(o.name, o.annotation, o.default, o.description) for o in d.options] == [
        ("length", "int", "64", "samples per item."),
        ("scale", "float | None", "None", ""),
    ]
    assert d.undocumented == ["scale"]
    table = render_markdown([d])
    assert "| `length` | int | `64` | samples per item. |" in table and "float \\| None" in table
    assert table.startswith(BEGIN) and table.rstrip().endswith(END)


def test_cli_check_fails_on_a_stale_file_and_write_fixes_it(tmp_path, capsys):
    stale = tmp_path / "data.md"
    stale.write_text(f"# Data\n\nbefore\n\n{BEGIN}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert "old table" not in text and "### `image_folder`" in text
    assert text.startswith("# Data\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert main(["--check", str(stale)]) == 0


def test_splice_needs_the_markers():
    with pytest.raises(ValueError, match="datasets:begin"):
        splice("# no markers here\n", render_markdown([]))
