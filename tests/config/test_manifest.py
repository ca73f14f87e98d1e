"""read_manifest and parse_channels: the accepted forms, and every bad input naming where it is."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from timelapse_pipes import (
    Manifest,
    ManifestColumns,
    ManifestError,
    TimelapsePipesError,
    parse_channels,
    read_manifest,
)

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def assert_mentions(exc: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(exc.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in error message {message!r}"


# --------------------------------------------------------------------------------------------
# Accepted inputs
# --------------------------------------------------------------------------------------------


def test_error_tree() -> None:
    assert issubclass(ManifestError, TimelapsePipesError)
    assert issubclass(ManifestError, ValueError)


def test_local_csv_defaults(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "channel", "start", "stop"],
                          [["/data/a.tif", "0,2", "", ""], ["/data/b.tif", "1", "3", "9"]])
    manifest = read_manifest(str(csv_path), split=None)
    assert isinstance(manifest, Manifest)
    assert len(manifest) == 2
    first, second = manifest[0], manifest[1]
    assert first.path == "/data/a.tif"
    assert first.channels == (0, 2)
    assert first.start == 0 and first.stop is None
    assert first.scene == 0 and first.resolution == 0
    assert first.row == 1 and second.row == 2
    assert first.source == str(csv_path)
    assert second.channels == (1,)
    assert (second.start, second.stop) == (3, 9)
    assert manifest.source == str(csv_path)


def test_missing_optional_columns_use_defaults(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path"], [["/x/a.zarr"]])
    row = read_manifest(str(csv_path), split=None)[0]
    assert row.channels is None
    assert row.start == 0
    assert row.stop is None
    assert row.scene == 0
    assert row.resolution == 0
    assert row.reader is None and row.time_axis is None
    assert row.extras == ()


def test_csv_split_column_filters_rows(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "split"],
                          [["/a.tif", "train"], ["/b.tif", "val"], ["/c.tif", "train"]])
    train = read_manifest(str(csv_path), split="train")
    val = read_manifest(str(csv_path), split="val")
    assert [row.path for row in train.rows] == ["/a.tif", "/c.tif"]
    assert [row.path for row in val.rows] == ["/b.tif"]
    assert all(row.split == "train" for row in train.rows)
    # split=None uses every row
    assert len(read_manifest(str(csv_path), split=None)) == 3


def test_per_split_dict_of_csvs(tmp_path: Path) -> None:
    train_csv = write_rows(tmp_path / "train" / "a.csv", ["path"], [["one.tif"], ["two.tif"]])
    val_csv = write_rows(tmp_path / "val" / "b.csv", ["path"], [["three.tif"]])
    spec = {"train": str(train_csv), "val": str(val_csv)}
    train = read_manifest(spec, split="train")
    val = read_manifest(spec, split="val")
    assert [row.path for row in train.rows] == [str(tmp_path / "train" / "one.tif"),
                                                str(tmp_path / "train" / "two.tif")]
    assert [row.path for row in val.rows] == [str(tmp_path / "val" / "three.tif")]
    assert train.source == str(train_csv)
    assert val.source == str(val_csv)


def test_inline_dict_meta() -> None:
    meta = {"dict_meta": {"path": ["/a.tif", "/b.tif"], "channel": [1, "0,3"], "start": [2, None],
                          "stop": [5, -1], "split": ["train", "train"]}}
    manifest = read_manifest(meta, split="train")
    assert len(manifest) == 2
    assert manifest.source == "dict_meta"
    assert manifest[0].channels == (1,)
    assert (manifest[0].start, manifest[0].stop) == (2, 5)
    assert manifest[1].channels == (0, 3)
    assert (manifest[1].start, manifest[1].stop) == (0, None)
    assert read_manifest({"dict_meta": {"path": ["/a.tif"]}}, split=None)[0].path == "/a.tif"


def test_configurable_column_names(tmp_path: Path) -> None:
    columns = ManifestColumns(path="img", channel="ch", split="subset", scene="pos",
                              resolution="lvl", start="t0", stop="t1")
    csv_path = write_rows(
        tmp_path / "m.csv", ["img", "ch", "subset", "pos", "lvl", "t0", "t1",
                             "path", "channel", "start"],
        [["/a.tif", "2", "fit", "1", "1", "4", "8", "/wrong.tif", "9", "7"],
         ["/b.tif", "0", "other", "0", "0", "", "", "/wrong.tif", "9", "7"]],
    )
    manifest = read_manifest(str(csv_path), split="fit", columns=columns)
    assert len(manifest) == 1
    row = manifest[0]
    assert row.path == "/a.tif"
    assert row.channels == (2,)
    assert row.scene == 1
    assert row.resolution == 1
    assert (row.start, row.stop) == (4, 8)
    assert row.split == "fit"
    assert manifest.columns == columns


def test_configurable_path_column_missing_names_it(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path"], [["/a.tif"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(csv_path), split=None, columns=ManifestColumns(path="img"))
    assert_mentions(exc, str(csv_path), "'img'")


def test_extra_columns_reach_extras(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "label", "well", "ignored"],
                          [["/a.tif", "mitosis", "B2", "x"], ["/b.tif", "", "C3", "y"]])
    manifest = read_manifest(str(csv_path), split=None, extra_columns=["label", "well"])
    assert manifest[0].extras == (("label", "mitosis"), ("well", "B2"))
    assert manifest[1].extras == (("label", ""), ("well", "C3"))
    # extras change the fingerprint; other unlisted columns do not reach the row
    plain = read_manifest(str(csv_path), split=None)
    assert plain[0].extras == ()
    assert plain.fingerprint() != manifest.fingerprint()


def test_relative_paths_resolve_against_csv_folder(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "meta" / "deep" / "m.csv", ["path"],
                          [["img/a.tif"], ["../b.ome.zarr"], ["/abs/c.czi"], ["s3://bucket/d.zarr"]])
    rows = read_manifest(str(csv_path), split=None).rows
    assert rows[0].path == str(tmp_path / "meta" / "deep" / "img" / "a.tif")
    assert rows[1].path == str(tmp_path / "meta" / "b.ome.zarr")
    assert rows[2].path == "/abs/c.czi"
    assert rows[3].path == "s3://bucket/d.zarr"


def test_relative_path_resolves_from_relative_csv_path(tmp_path: Path, monkeypatch) -> None:
    write_rows(tmp_path / "sub" / "m.csv", ["path"], [["a.tif"]])
    monkeypatch.chdir(tmp_path)
    row = read_manifest(os.path.join("sub", "m.csv"), split=None)[0]
    assert row.path == str(tmp_path / "sub" / "a.tif")


@pytest.mark.parametrize("stop_cell", ["-1", "", " ", " -1 "])
def test_stop_minus_one_or_empty_means_end(tmp_path: Path, stop_cell: str) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "start", "stop"], [["/a.tif", "2", stop_cell]])
    row = read_manifest(str(csv_path), split=None)[0]
    assert row.stop is None
    assert row.start == 2


def test_stop_inclusive_adds_one(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "start", "stop"],
                          [["/a.tif", "2", "5"], ["/b.tif", "0", "-1"], ["/c.tif", "4", "4"]])
    inclusive = read_manifest(str(csv_path), split=None, stop_inclusive=True)
    assert (inclusive[0].start, inclusive[0].stop) == (2, 6)
    assert inclusive[1].stop is None  # -1 stays "to the end"
    assert (inclusive[2].start, inclusive[2].stop) == (4, 5)  # the single frame 4
    # without stop_inclusive the third row is an empty range
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(csv_path), split=None)
    assert_mentions(exc, str(csv_path), "row 3")


def test_scene_by_index_and_by_name(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "scene"],
                          [["/a.tif", "2"], ["/a.tif", "Position 1"], ["/a.tif", ""], ["/a.tif", " 0 "]])
    rows = read_manifest(str(csv_path), split=None).rows
    assert rows[0].scene == 2 and isinstance(rows[0].scene, int)
    assert rows[1].scene == "Position 1"
    assert rows[2].scene == 0
    assert rows[3].scene == 0


def test_dict_meta_scene_int_and_name() -> None:
    rows = read_manifest({"dict_meta": {"path": ["/a", "/b"], "scene": [3, "P2"]}}, split=None).rows
    assert rows[0].scene == 3
    assert rows[1].scene == "P2"


def test_default_start_is_zero(tmp_path: Path) -> None:
    csv_path = write_rows(tmp_path / "m.csv", ["path", "stop"], [["/a.tif", "7"]])
    row = read_manifest(str(csv_path), split=None)[0]
    assert row.start == 0
    assert row.stop == 7


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("path,channel\n/a.tif,0\n\n,\n/b.tif,1\n", encoding="utf-8")
    manifest = read_manifest(str(path), split=None)
    assert [row.path for row in manifest.rows] == ["/a.tif", "/b.tif"]


def test_utf8_bom_and_header_spaces(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes("\ufeff path , channel \n/é/a.tif,1\n".encode("utf-8"))
    row = read_manifest(str(path), split=None)[0]
    assert row.path == "/é/a.tif"
    assert row.channels == (1,)


def test_fingerprint_tracks_content(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.csv", ["path", "channel"], [["/a.tif", "0"]])
    b = write_rows(tmp_path / "b.csv", ["path", "channel"], [["/a.tif", "0"]])
    c = write_rows(tmp_path / "c.csv", ["path", "channel"], [["/a.tif", "1"]])
    fa, fb, fc = (read_manifest(str(p), split=None).fingerprint() for p in (a, b, c))
    assert fa == fb
    assert fa != fc


# --------------------------------------------------------------------------------------------
# parse_channels
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("[]", None),
        ([], None),
        (3, (3,)),
        ("3", (3,)),
        ("0,2,4", (0, 2, 4)),
        (" 4 , 0 ", (4, 0)),
        ("[1, 2]", (1, 2)),
        ((5, 1), (5, 1)),
        ([0, "7"], (0, 7)),
    ],
)
def test_parse_channels_accepts(value, expected) -> None:
    assert parse_channels(value) == expected


@pytest.mark.parametrize("value", ["a", "1,,2", "-3", "1,1", "1.5", ",", "0,x", [1, 1], [-1], True,
                                   [True], "1;2"])
def test_parse_channels_rejects(value) -> None:
    with pytest.raises(ManifestError) as exc:
        parse_channels(value, where="m.csv row 4: column 'channel'")
    assert_mentions(exc, "m.csv row 4", "'channel'")


@pytest.mark.parametrize("value", ["--3", "1,--2", ["--1"], "---0"])
def test_parse_channels_double_minus_is_a_manifest_error(value) -> None:
    # "--3".lstrip("-") is all digits, so a check on the stripped text alone lets it reach int().
    with pytest.raises(ManifestError) as exc:
        parse_channels(value, where="m.csv row 2: column 'channel'")
    assert_mentions(exc, "m.csv row 2", "'channel'")


@PROPERTY_SETTINGS
@given(st.one_of(st.text(), st.lists(st.one_of(st.integers(), st.text())), st.integers(), st.none()))
@example("²")
@example(["0", 1, " 2 "])
def test_parse_channels_never_raises_other_errors(value) -> None:
    try:
        result = parse_channels(value)
    except ManifestError:
        return
    if result is None:
        return
    assert isinstance(result, tuple)
    assert len(result) >= 1
    assert all(type(c) is int and c >= 0 for c in result)
    assert len(set(result)) == len(result)


# --------------------------------------------------------------------------------------------
# Bad manifests: ManifestError naming the manifest, row and/or column
# --------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "empty")


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("path,channel\n", encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "no rows")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path))


def test_missing_path_column(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["file", "channel"], [["/a.tif", "0"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "'path'", "file")


def test_duplicate_columns(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "channel", "channel"], [["/a.tif", "0", "1"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "channel", "duplicate")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"\xff\xfe" + "path\n/données/é.tif\n".encode("latin-1"))
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "UTF-8")


def test_latin1_text_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("path,channel\n/données/é.tif,0\n".encode("latin-1"))
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "UTF-8")


def test_unknown_split_in_csv_lists_available(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "split"], [["/a.tif", "train"], ["/b.tif", "val"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split="test")
    assert_mentions(exc, str(path), "'test'", "'train'", "'val'")


def test_unknown_split_in_dict_lists_available(tmp_path: Path) -> None:
    a = write_rows(tmp_path / "a.csv", ["path"], [["/a.tif"]])
    b = write_rows(tmp_path / "b.csv", ["path"], [["/b.tif"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest({"train": str(a), "val": str(b)}, split="test")
    assert_mentions(exc, "'test'", "'train'", "'val'")


def test_missing_split_column(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["path"], [["/a.tif"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split="train")
    assert_mentions(exc, str(path), "'split'", "split_column=None")
    # with split_column None every row serves every split
    manifest = read_manifest(str(path), split="train", columns=ManifestColumns(split=None))
    assert len(manifest) == 1


def test_dict_meta_missing_split_column() -> None:
    with pytest.raises(ManifestError) as exc:
        read_manifest({"dict_meta": {"path": ["/a.tif"]}}, split="train")
    assert_mentions(exc, "dict_meta", "split_column=None")


@pytest.mark.parametrize("spec", ["a", "1,,2", "-3", "1,1"])
def test_bad_channel_spec_names_row_and_column(tmp_path: Path, spec: str) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "channel"], [["/ok.tif", "0"], ["/a.tif", spec]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "row 2", "'channel'")


@pytest.mark.parametrize(
    "start, stop, column",
    [
        ("5", "5", None),       # start >= stop
        ("6", "2", None),       # start > stop
        ("0", "-2", "stop"),    # negative stop other than -1
        ("-1", "4", "start"),   # negative start
        ("1.5", "4", "start"),  # non-integer start
        ("x", "", "start"),     # non-integer start
        ("0", "end", "stop"),   # non-integer stop
    ],
)
def test_bad_ranges(tmp_path: Path, start: str, stop: str, column: str | None) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "start", "stop"],
                      [["/ok.tif", "0", "3"], ["/ok.tif", "1", ""], ["/a.tif", start, stop]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "row 3")
    if column is not None:
        assert_mentions(exc, f"'{column}'")
    else:
        assert_mentions(exc, f"start={start}", f"stop={stop}")


def test_missing_extra_column(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "label"], [["/a.tif", "x"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None, extra_columns=["label", "well"])
    assert_mentions(exc, str(path), "well")


@pytest.mark.parametrize("row_text", ["/a.tif,0,1", "/a.tif"])
def test_wrong_cell_count(tmp_path: Path, row_text: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(f"path,channel\n/ok.tif,0\n{row_text}\n", encoding="utf-8")
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "row 2")


def test_empty_path_cell(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", "channel"], [["/a.tif", "0"], [" ", "1"]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "row 2", "'path'")


@pytest.mark.parametrize("column, value", [("resolution", "-1"), ("resolution", "x"),
                                           ("time_axis", "Q"), ("scene", "-2")])
def test_other_bad_cells(tmp_path: Path, column: str, value: str) -> None:
    path = write_rows(tmp_path / "m.csv", ["path", column], [["/a.tif", value]])
    with pytest.raises(ManifestError) as exc:
        read_manifest(str(path), split=None)
    assert_mentions(exc, str(path), "row 1", column)


@pytest.mark.parametrize("scene", ["--3", "\u00b2", "-\u00b2", "1\u00b9"])
def test_malformed_numeric_scene_is_a_manifest_error(tmp_path: Path, scene: str) -> None:
    # Text that str.isdigit() accepts but int() does not ("²", "--3" after lstrip("-")) must be
    # reported as a bad cell, not crash with a bare ValueError.
    path = write_rows(tmp_path / "m.csv", ["path", "scene"], [["/a.tif", "0"], ["/a.tif", scene]])
    try:
        manifest = read_manifest(str(path), split=None)
    except ManifestError as exc:
        assert str(path) in str(exc) and "row 2" in str(exc) and "scene" in str(exc)
    else:  # accepting it as a scene name would also be consistent
        assert manifest[1].scene == scene


@pytest.mark.parametrize("meta", [{}, {"path": "/a.tif"}, {"path": ["/a", "/b"], "channel": [0]}, [1]])
def test_bad_dict_meta(meta) -> None:
    with pytest.raises(ManifestError) as exc:
        read_manifest({"dict_meta": meta}, split=None)
    assert_mentions(exc, "dict_meta")


# --------------------------------------------------------------------------------------------
# Property: arbitrary cell text either parses into valid rows or raises ManifestError
# --------------------------------------------------------------------------------------------

FUZZ_HEADER = ["path", "channel", "scene", "resolution", "start", "stop", "split", "reader",
               "time_axis", "label"]
_fuzz_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifest-fuzz")

VALID_CELLS = {
    "path": st.sampled_from(["/data/a.tif", "rel/b.ome.zarr", "../c.czi", "s3://bucket/d.zarr"]),
    "channel": st.sampled_from(["", "0", "1", "0,2", "3,1", "[0, 1]"]),
    "scene": st.sampled_from(["", "0", "2", "Position 1"]),
    "resolution": st.sampled_from(["", "0", "1"]),
    "start": st.sampled_from(["", "0", "2", "5"]),
    "stop": st.sampled_from(["", "-1", "6", "10"]),
    "split": st.sampled_from(["train", "val", ""]),
    "reader": st.sampled_from(["", "bioio_ome_zarr"]),
    "time_axis": st.sampled_from(["", "T", "z", "c"]),
    "label": st.text(max_size=8),
}


@st.composite
def fuzz_row(draw) -> list[str]:
    """A row of plausible cells where any subset of cells is replaced by arbitrary text."""
    fuzzed = draw(st.sets(st.sampled_from(FUZZ_HEADER), max_size=3))
    return [draw(st.text(max_size=12)) if name in fuzzed else draw(VALID_CELLS[name])
            for name in FUZZ_HEADER]


@PROPERTY_SETTINGS
@given(rows=st.lists(fuzz_row(), min_size=1, max_size=4),
       split=st.sampled_from([None, "train"]),
       stop_inclusive=st.booleans())
def test_read_manifest_arbitrary_cells(fuzz_dir: Path, rows: list[list[str]], split: str | None,
                                       stop_inclusive: bool) -> None:
    path = fuzz_dir / f"fuzz{next(_fuzz_counter)}.csv"
    write_rows(path, FUZZ_HEADER, rows)
    try:
        manifest = read_manifest(str(path), split=split, extra_columns=["label"],
                                 stop_inclusive=stop_inclusive)
    except ManifestError:
        return
    finally:
        path.unlink()
    kept = [dict(zip(FUZZ_HEADER, cells)) for cells in rows if any(c.strip() for c in cells)]
    assert len(manifest) >= 1
    for row in manifest.rows:
        given_cells = kept[row.row - 1]
        assert row.path.strip() != ""
        assert row.start == (int(given_cells["start"]) if given_cells["start"].strip() else 0)
        assert row.start >= 0
        assert row.stop is None or row.stop > row.start
        assert row.resolution >= 0
        assert row.channels == parse_channels(given_cells["channel"])
        assert row.channels is None or (len(set(row.channels)) == len(row.channels)
                                        and all(c >= 0 for c in row.channels))
        assert isinstance(row.scene, str) or row.scene >= 0
        assert row.time_axis in (None, "T", "Z", "C")
        assert row.extras == (("label", given_cells["label"]),)
        if split is not None:
            assert row.split == split
