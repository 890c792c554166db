"""How ids are written: one line each, valid UTF-8, and decoded back exactly.

An id (an image path, a webdataset key, a value of an id column) is written
into the ``id`` column of score outputs, and from there into ``skhftt
filter``'s line-oriented lists, **as it is**, unless it contains a control
character (a newline, a tab, ...; also U+2028 and U+2029, which some readers
take for line ends), bytes of a file name that are not UTF-8, or starts with
a backslash. Such an id is written escaped: a backslash, then the id with

* ``\\\\`` for a backslash, ``\\n``, ``\\r`` and ``\\t`` for those characters;
* ``\\xHH`` for a byte of a file name that is not UTF-8 (HH, its hex value,
  is 80 to ff);
* ``\\uHHHH`` for any other control character.

So no id can add a line to a list (``000001\\n/home/user/precious`` becomes
``\\000001\\n/home/user/precious``), parquet strings stay valid UTF-8, and
every ordinary id (no control character, no leading backslash) is written
unchanged. :func:`decode_id` gives the original back; for a file name, a
``str`` whose undecodable bytes are surrogate escapes, as :func:`os.fsdecode`
returns them, so ``os.fsencode(decode_id(id))`` is the name's exact bytes.

Examples
--------
>>> encode_id("photos/cat.jpg")
'photos/cat.jpg'
>>> encode_id("000001\\n/home/user/precious")
'\\\\000001\\\\n/home/user/precious'
>>> decode_id(encode_id("caf\\udce9.jpg")) == "caf\\udce9.jpg"
True
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["as_line", "decode_id", "encode_id", "encode_ids"]

# What must not be written as it is: C0 and C1 controls, DEL, the Unicode line
# and paragraph separators, and surrogates (undecodable bytes of file names).
_UNSAFE = "\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff"
_NEEDS_ESCAPE = re.compile(rf"^\\|[{_UNSAFE}]")
_ESCAPED = re.compile(rf"[\\{_UNSAFE}]")
_CONTROL = re.compile(f"[{_UNSAFE}]")
# pyarrow's strings are UTF-8, so they hold no surrogate.
_ARROW_NEEDS_ESCAPE = r"^\\|[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE = re.compile(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[\\nrt])")
_LONG = {value[1]: key for key, value in _SHORT.items()}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def encode_id(text: str) -> str:
    """An id as it is written (see the module documentation).

    Parameters
    ----------
    text : str
        The id; a file name decoded by :func:`os.fsdecode` may hold
        surrogate escapes.

    Returns
    -------
    str
        ``text`` itself, or its escaped form.
    """
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    return "\\" + _ESCAPED.sub(_escape, text)


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code[0] == "x":
        return chr(0xDC00 + int(code[1:], 16))
    if code[0] == "u":
        return chr(int(code[1:], 16))
    return _LONG[code]


def decode_id(text: str) -> str:
    """The id that :func:`encode_id` wrote as ``text``.

    Raises
    ------
    ValueError
        ``text`` starts with a backslash but is no escaped id.
    """
    if not text.startswith("\\"):
        return text
    body = text[1:]
    decoded = _ESCAPE.sub(_unescape, body)
    if encode_id(decoded) != text:
        raise ValueError(f"{text!r} is not an id written by skhftt: after its leading "
                         "backslash, a backslash must start \\\\, \\n, \\r, \\t, \\xHH or "
                         "\\uHHHH.")
    return decoded


def as_line(stored: str) -> str:
    """A stored id (a value of an output's ``id`` column) as a line of a list.

    Stored ids are written as they are; one with a control character was
    stored raw, by a skhftt older than the escaping, and is escaped here, so
    that no id can add a line to a list.
    """
    return stored if _CONTROL.search(stored) is None else encode_id(stored)


def encode_ids(column: pa.Array) -> pa.Array:
    """:func:`encode_id` of every value of an arrow string column (nulls stay null).

    The column is returned as it is when no value needs escaping, the usual
    case, checked in one vectorised pass.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(column, _ARROW_NEEDS_ESCAPE)).as_py():
        return column
    return pa.array([None if value is None else encode_id(value)
                     for value in column.to_pylist()], pa.string())
