"""ABAW AU txt files (mindface_au.data.au_txt): header, reader/writer round trip, -1 rows and error messages."""

import os

import numpy as np
import pytest

from mindface_au.data.au_txt import HEADER, PREDICTION_VALUES, read_au_file, write_au_file
from mindface_au.errors import UserError


def _raw(path, text):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(text)
    return str(path)


def _row(values):
    return ",".join(str(v) for v in values)


def test_header_is_the_challenge_header():
    assert HEADER == "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"


def test_round_trip_keeps_unlabelled_rows_and_exact_bytes(tmp_path):
    rows = np.random.default_rng(0).integers(-1, 2, (30, 12)).astype(np.int8)
    rows[4] = -1
    path = str(tmp_path / "out" / "v.txt")
    write_au_file(path, rows)
    back = read_au_file(path)
    assert back.dtype == np.int8 and back.shape == (30, 12)
    np.testing.assert_array_equal(back, rows)
    with open(path, "rb") as handle:
        assert handle.read() == ("\n".join([HEADER] + [_row(r) for r in rows]) + "\n").encode()
    assert os.listdir(tmp_path / "out") == ["v.txt"]  # atomic: no temporary file left


def test_empty_file_is_header_only(tmp_path):
    path = str(tmp_path / "e.txt")
    write_au_file(path, np.zeros((0, 12), np.int8))
    assert open(path).read() == HEADER + "\n"
    assert read_au_file(path).shape == (0, 12)


def test_predictions_are_zero_or_one(tmp_path):
    labels = (np.random.default_rng(1).random((9, 12)) < 0.5).astype(np.int8)
    path = str(tmp_path / "p.txt")
    write_au_file(path, labels, allowed=PREDICTION_VALUES)
    np.testing.assert_array_equal(read_au_file(path, "prediction", PREDICTION_VALUES), labels)
    unlabelled = _raw(tmp_path / "u.txt", HEADER + "\n" + _row([0] * 12) + "\n" + _row([-1] * 12) + "\n")
    assert read_au_file(unlabelled)[1].tolist() == [-1] * 12  # fine in an annotation ...
    with pytest.raises(UserError) as info:  # ... not in a prediction
        read_au_file(unlabelled, "prediction", PREDICTION_VALUES)
    assert f"{unlabelled}:3: prediction value '-1' is not one of 0, 1" in str(info.value)


def test_crlf_bom_and_trailing_blank_lines_equal_lf(tmp_path):
    rows = np.random.default_rng(1).integers(-1, 2, (20, 12))
    lines = [HEADER] + [_row(r) for r in rows]
    p1 = _raw(tmp_path / "crlf.txt", "\r\n".join(lines) + "\r\n\r\n")
    p2 = _raw(tmp_path / "lf.txt", "\n".join(lines) + "\n")
    p3 = _raw(tmp_path / "bom.txt", "\ufeff" + "\n".join(lines) + "\n \n")
    for path in (p1, p2, p3):
        np.testing.assert_array_equal(read_au_file(path), rows)
    spaced = _raw(tmp_path / "sp.txt", HEADER.replace(",", ", ") + "\n" + ", ".join(["1"] * 12) + "\n")
    assert read_au_file(spaced).tolist() == [[1] * 12]


@pytest.mark.parametrize(
    "raw, line, needle",
    [
        ("AU1,AU2\n0,1\n", 1, "header 'AU1,AU2' does not match the expected " + HEADER),
        ("AU26,AU25,AU24,AU23,AU15,AU12,AU10,AU7,AU6,AU4,AU2,AU1\n", 1, "header"),
        (
            HEADER + "\n" + _row([0] * 12) + "\n" + _row([0] * 11) + "\n",
            3,
            "expected 12 comma-separated values, got 11",
        ),
        (HEADER + "\n" + _row([0] * 11 + [2]) + "\n", 2, "value '2' is not one of -1, 0, 1"),
        (HEADER + "\n" + _row([0] * 11 + ["x"]) + "\n", 2, "'x'"),
        (HEADER + "\n" + _row([0] * 11 + ["0.5"]) + "\n", 2, "'0.5'"),
        (HEADER + "\n" + _row([0] * 12) + "\n\n" + _row([0] * 12) + "\n", 3, "blank line"),
        ("", 1, "empty annotation file, expected the header"),
        ("\n\n", 1, "empty"),
    ],
)
def test_errors_name_file_line_and_expectation(tmp_path, raw, line, needle):
    path = _raw(tmp_path / "bad.txt", raw)
    with pytest.raises(UserError) as info:
        read_au_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ") and needle in message and "\n" not in message, message
    assert "annotation" in message


def test_unreadable_files(tmp_path):
    with pytest.raises(UserError, match=r"nope\.txt: cannot read prediction file"):
        read_au_file(str(tmp_path / "nope.txt"), "prediction")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00AU1")
    with pytest.raises(UserError, match=r"bin\.txt: annotation file is not UTF-8 text"):
        read_au_file(str(binary))


@pytest.mark.parametrize(
    "labels, allowed, needle",
    [
        (np.zeros((3, 11)), (-1, 0, 1), "(T, 12)"),
        (np.zeros(12), (-1, 0, 1), "(T, 12)"),
        (np.full((2, 12), 2), (-1, 0, 1), "value 2 is not one of -1, 0, 1"),
        (np.full((2, 12), 0.5), (-1, 0, 1), "0.5"),
        (-np.ones((2, 12)), PREDICTION_VALUES, "is not one of 0, 1"),
    ],
)
def test_writer_rejects_bad_arrays_and_leaves_the_old_file(tmp_path, labels, allowed, needle):
    path = str(tmp_path / "v.txt")
    write_au_file(path, np.ones((1, 12), np.int8))
    before = open(path).read()
    with pytest.raises(ValueError) as info:
        write_au_file(path, labels, allowed=allowed)
    assert needle in str(info.value) and path in str(info.value)
    assert open(path).read() == before and os.listdir(tmp_path) == ["v.txt"]
