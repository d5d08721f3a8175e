"""The fast path of the NTU ``.skeleton`` reader: the whole file proven well-formed and parsed by
whole-array numpy steps.

How it stays fast (the dataset is 5.8 GB of text, ~310 numbers per body per frame): the file is
read once and checked as one byte array by whole-array numpy steps; Python loops only over the
frames. :func:`read_fast` proves, in this order:

1. grammar: ``bytes.translate`` gives every byte its class (blank, digit, dot, sign, other; e
   counts as a digit) and the classes allowed after it, and one array operation checks every
   pair of neighbours; then each e is checked alone (after a digit or dot, 1-2 exponent
   digits), and bit masks packed 64 bytes a word show one dot per token (an add whose carries
   run from a dot to the next token start) and no token of 128+ bytes: every token of the
   file is a finite decimal number;
2. tokens: token starts (a non-blank after a blank) as bits; popcounts up to each line start
   give the number of tokens on every line;
3. structure: a walk over the frames reads each bodyCount and steps over whole body blocks;
   from the counts it predicts the tokens of every line (1, 10, 1, 25 x 12, ..., 0 after the
   last frame) and one array comparison checks them all; then jointCounts, bodyIDs (exact
   64-bit integers, never floats) and repeated bodyIDs within a frame;
4. values: only x y z are converted (75 of the ~310 numbers of a body), from their digits by
   exact integer arithmetic and one correctly rounded multiply or divide, which gives the same
   double as Python's ``float`` (and the dataset authors' reader) bit for bit.

What it cannot prove, it leaves to the line-by-line reader of :mod:`.ntu_skeleton` (it returns
None), which defines what is accepted; ``tests`` pin the two to the same result.
"""

from __future__ import annotations

import numpy as np

from restcn_infer.limits import MAX_FRAMES
from restcn_infer.readers.ntu_format import (
    BLOCK_LINES,
    INFO_TOKENS,
    JOINT_TOKENS,
    MAX_BODIES_PER_FRAME,
    NUM_JOINTS,
    Blocks,
)

# ---------------------------------------------------------------- fast path: whole-array checks

# Byte classes (one bit each) and, per class, the classes that may follow it. This is the
# grammar [+-]? d+ (. d*)? ([eE] [+-]? d d?)?, a subset of the slow path's _NUMBER. "e" shares
# the digit bit,
# so the pairs let "-e" or "1ee" through: the few e's are then checked one by one.
_BLANK, _DIGIT, _DOT, _SIGN = 1, 2, 4, 8
_MAY_FOLLOW = {
    _BLANK: _BLANK | _DIGIT | _SIGN,
    _DIGIT: _BLANK | _DIGIT | _DOT,  # a digit, or "e"
    _DOT: _BLANK | _DIGIT,  # "1." and "1.e5" are fine; ".5" takes the slow path
    _SIGN: _DIGIT,
}
_EXP_MAY_FOLLOW = _SIGN | _DIGIT
_PAD = 128  # blanks after the file: the last token ends, windows and words stay in bounds
_POW10 = np.array([float(10**k) for k in range(23)])  # exact doubles 1 .. 1e22
_POW10_UINT = 10 ** np.arange(20, dtype=np.uint64)


def _byte_codes() -> bytes:
    """``bytes.translate`` table: byte -> (classes allowed after it) << 4 | its class (0: other)."""
    codes = bytearray(256)
    for byte in b" \t\n\r\x0b\x0c":  # exactly the bytes that bytes.split() splits on
        codes[byte] = _MAY_FOLLOW[_BLANK] << 4 | _BLANK
    for byte in b"0123456789":
        codes[byte] = _MAY_FOLLOW[_DIGIT] << 4 | _DIGIT
    codes[ord(".")] = _MAY_FOLLOW[_DOT] << 4 | _DOT
    codes[ord("+")] = codes[ord("-")] = _MAY_FOLLOW[_SIGN] << 4 | _SIGN
    codes[ord("e")] = codes[ord("E")] = _EXP_MAY_FOLLOW << 4 | _DIGIT
    return bytes(codes)


_CODES = _byte_codes()


def read_fast(data: bytes) -> Blocks | None:
    """Check and parse the whole file with whole-array steps; None sends it to the slow path."""
    buf = data + b" " * (_PAD + -len(data) % 64)  # a whole number of 64-byte words
    u = np.frombuffer(buf, dtype=np.uint8)  # (N,)

    # 1. grammar: each byte may follow the one before it, each exponent is short
    codes = np.frombuffer(buf.translate(_CODES), dtype=np.uint8)  # (N,) follow << 4 | class
    pairs = codes[:-1] >> 4
    pairs &= codes[1:]  # (N - 1,) 0 where byte i + 1 may not follow byte i
    if not pairs.all() or not _MAY_FOLLOW[_BLANK] & codes[0]:
        return None
    exponents = b"e" in data or b"E" in data
    if exponents and not _exponents_are_short(u, _Bits(u > ord("9")).positions()):
        return None  # (only e and E lie above "9" once the pairs are fine)

    # 2. tokens: starts (a non-blank after a blank) as bits, one dot each, none too long
    blank = u <= 32  # once the grammar holds, exactly the blanks
    starts = np.empty_like(blank)
    starts[0] = not blank[0]
    np.greater(blank[:-1], blank[1:], out=starts[1:])  # blank, then not blank
    token = _Bits(starts)
    if _two_dots_in_a_token(token.words, _Bits(u == ord(".")).words):
        return None
    inside = token.words[: len(data) // 64] == 0  # 64 bytes of the file without a token start
    if (inside[1:] & inside[:-1]).any():  # a token of 128+ bytes may overflow ("1" + 400 zeros)
        return None
    line_start = np.flatnonzero(u[: len(data)] == ord("\n")) + 1
    line_start = np.concatenate(([0], line_start))  # (L,) as data.split(b"\n") has L lines
    tokens_per_line = np.diff(token.count_before(line_start), append=token.count)  # (L,)

    # 3. structure: step over the frames, predict every line's token count, compare
    frame_line = _walk_frames(data, line_start)
    if frame_line is None:
        return None
    bodies = (np.diff(frame_line) - 1) // BLOCK_LINES  # (T,) blocks after each bodyCount
    frame_line = frame_line[:-1]  # (T,) the line of each frame's bodyCount
    block_frame = np.repeat(np.arange(len(bodies)), bodies)  # (B,)
    nth = np.arange(len(block_frame)) - np.repeat(np.cumsum(bodies) - bodies, bodies)
    info_line = frame_line[block_frame] + 1 + BLOCK_LINES * nth  # (B,) each body-info line
    joint_line = info_line[:, None] + 2 + np.arange(NUM_JOINTS)  # (B, 25)
    expected = np.zeros_like(tokens_per_line)  # blank lines after the last frame
    expected[0] = 1  # frameCount
    expected[frame_line] = 1  # bodyCount
    expected[info_line] = INFO_TOKENS
    expected[info_line + 1] = 1  # jointCount
    expected[joint_line] = JOINT_TOKENS
    if not np.array_equal(expected, tokens_per_line):
        return None

    # 4. values: the tokens we read are the first ones of their lines
    count_at = token.next(line_start[info_line + 1], 1)[:, 0]  # (B,) jointCount
    id_at = token.next(line_start[info_line], 1)[:, 0]  # (B,) bodyID
    xyz_at = token.next(line_start[joint_line.ravel()], 3).ravel()  # (B * 75,) x y z
    if min(count_at.min(initial=0), id_at.min(initial=0), xyz_at.min(initial=0)) < 0:
        return None  # a token 64 bytes or more into its line
    if not ((u[count_at] == ord("2")) & (u[count_at + 1] == ord("5"))
            & (u[count_at + 2] <= 32)).all():
        return None
    body = _body_index(buf, id_at, block_frame)
    if body is None:
        return None
    xyz = _decimals(buf, xyz_at, exponents).reshape(-1, NUM_JOINTS, 3)  # (B, 25, 3)
    return Blocks(xyz, body, block_frame, len(bodies))


def _exponents_are_short(u: np.ndarray, e: np.ndarray) -> bool:
    """Whether each e/E at offsets ``e`` follows a digit or a dot and is followed by
    [+-]? d d? and a blank (so no "1e5.3", "1e999" or "-e5")."""
    before = u[e - 1]
    first = e + 1 + ((u[e + 1] == ord("+")) | (u[e + 1] == ord("-")))  # first exponent digit
    one, two, three = u[first], u[first + 1], u[first + 2]
    return bool((((before - ord("0") < 10) | (before == ord("."))) & (one - ord("0") < 10)
                 & ((two <= 32) | ((two - ord("0") < 10) & (three <= 32)))).all())


class _Bits:
    """A boolean mask over the bytes, packed into 64-bit words (bit i of word w: byte 64 w + i)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.words = np.packbits(mask, bitorder="little").view("<u8")  # (N / 64,)

    @property
    def count(self) -> int:
        return int(np.bitwise_count(self.words).sum())

    def count_before(self, at: np.ndarray) -> np.ndarray:
        """How many set bits lie before each byte offset ``at``."""
        before = np.concatenate(([0], np.cumsum(np.bitwise_count(self.words))))  # (W + 1,)
        below = (np.uint64(1) << (at & 63).astype(np.uint64)) - np.uint64(1)  # bits of the word
        return before[at >> 6] + np.bitwise_count(self.words[at >> 6] & below)

    def next(self, at: np.ndarray, count: int) -> np.ndarray:
        """``(len(at), count)`` offsets of the first ``count`` set bits at or after each offset
        ``at`` and less than 64 bytes after it; -1 where there are fewer."""
        word = at >> 6
        shift = (at & 63).astype(np.uint64)
        window = self.words[word] >> shift  # bits at + 0 .. 63: the top ones from the next word
        window |= (self.words[word + 1] << (np.uint64(63) - shift)) << np.uint64(1)
        out = np.empty((len(at), count), dtype=np.int64)
        for k in range(count):
            lowest = window & (~window + np.uint64(1))  # 0 when none is left
            out[:, k] = np.where(lowest == 0, -1, at + np.bitwise_count(lowest - np.uint64(1)))
            window ^= lowest
        return out

    def positions(self) -> np.ndarray:
        """Offsets of all set bits, ascending (cheap for a sparse mask: the e's)."""
        word = np.flatnonzero(self.words)  # (W',) words with a set bit
        left = self.words[word]
        columns = []  # the k-th set bit of each word, -1 after the last
        while left.any():
            lowest = left & (~left + np.uint64(1))
            columns.append(np.where(lowest == 0, -1,
                                    64 * word + np.bitwise_count(lowest - np.uint64(1))))
            left ^= lowest
        table = np.stack(columns, axis=1) if columns else np.zeros((0, 1), dtype=np.int64)
        return table[table >= 0]  # row by row: ascending


def _two_dots_in_a_token(token_start: np.ndarray, dot: np.ndarray) -> bool:
    """Whether some token holds two dots ("1.2.3"), from the bit words of token starts and dots
    (True also in a rare case it cannot tell: a word of all ones, then dots).

    Adding the dots to the non-start bits starts a carry at each dot that runs up to the next
    token start; if it meets a second dot of the same token, it sets that dot's sum bit.
    """
    not_start = ~token_start
    total = not_start + dot  # (W,) wraps; the carry out of a word goes into the next one
    carry = (total < not_start).astype(np.uint64)
    if ((total[:-1] == ~np.uint64(0)) & (dot[1:] != 0)).any():  # would pass a carry on
        return True
    total[1:] += carry[:-1]
    return bool((total & dot).any())


def _walk_frames(data: bytes, line_start: np.ndarray) -> np.ndarray | None:
    """The line of every frame's bodyCount, plus the line after the last frame: ``(T + 1,)``.

    Steps from frame to frame over whole body blocks; the caller checks what lies inside them.
    None when a count is not a plain integer in range or the file ends too early.
    """
    num_lines = len(line_start)
    line_end = np.append(line_start[1:], len(data))

    def count(i: int) -> int:  # the integer alone on line i, or -1
        text = data[line_start[i]:line_end[i]].strip()
        return int(text) if text.isdigit() and len(text) <= 12 else -1

    frames = count(0)
    if not 1 <= frames <= min(num_lines - 1, MAX_FRAMES):
        return None
    lines = [1]
    for _ in range(frames):
        if lines[-1] >= num_lines:
            return None
        bodies = count(lines[-1])
        if not 0 <= bodies <= MAX_BODIES_PER_FRAME:
            return None
        lines.append(lines[-1] + 1 + BLOCK_LINES * bodies)
    return np.array(lines) if lines[-1] <= num_lines else None


def _body_index(buf: bytes, at: np.ndarray, block_frame: np.ndarray) -> np.ndarray | None:
    """Body index per block (numbered by first appearance of the bodyID) from the bodyIDs at
    byte offsets ``at`` ``(B,)``; None unless each is 1-18 plain digits (exact in int64) and
    no bodyID repeats within a frame."""
    window = _windows(buf, 19)[at].view(np.uint8).reshape(-1, 19)  # (B, 19)
    digits = window - ord("0")  # non-digits wrap to >= 10
    length = (digits < 10).argmin(axis=1)  # (B,) digits before the first non-digit
    if not ((length >= 1) & (length <= 18) & (window[np.arange(len(at)), length] <= 32)).all():
        return None
    place = length[:, None] - 1 - np.arange(18)  # (B, 18) power of ten of each digit
    ids = (digits[:, :18] * np.where(place >= 0, _POW10_UINT[np.maximum(place, 0)], 0)).sum(1)
    order = np.lexsort((ids, block_frame))  # by frame, then bodyID
    same = (np.diff(block_frame[order]) == 0) & (np.diff(ids[order]) == 0)
    if same.any():
        return None
    _, first, body = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty_like(first)
    rank[np.argsort(first)] = np.arange(len(first))  # sorted bodyID -> order of appearance
    return rank[body]


def _decimals(buf: bytes, at: np.ndarray, exponents: bool) -> np.ndarray:
    """float64 value ``(K,)`` of the number token at each byte offset ``at``, bit-identical to
    Python's ``float`` (a correctly rounded conversion).

    The mantissa's digits make an integer M < 10**15 (exact in float64); the value is then
    M / 10**f (f digits after the dot) or, with an exponent x, M * 10**k (k = x - f), |k| <= 22:
    one correctly rounded operation on two exact operands (Clinger's fast path). Longer
    mantissas or larger k (never in NTU) use ``float``. The 16 bytes from each token start are
    handled as two 64-bit words of 8 bytes, a digit a byte.
    """
    window = _windows(buf, 16)[at].view(np.uint8).reshape(-1, 16)  # (K, 16) bytes from `at`
    # the mantissa ends at the first blank or e/E, i.e. the first byte outside "!".."9"
    end, inside = _first_true(window - ord("!") > ord("9") - ord("!"))  # (K,), (K, 2) words
    dot, _ = _first_true(window == ord("."))  # (K,) its column; 16: none in the window
    has_dot = dot < end
    slow = end > 15  # mantissa longer than 15 characters
    digits = window - ord("0")  # (K, 16) the sign and the dot wrap to >= 10
    digits *= digits < 10
    digits = digits.view("<u8") & inside  # (K, 2) a digit a byte, zeros outside the mantissa
    # the 8 digit bytes of each word as one number (SWAR: pairs, then fours, then all 8)
    digits = (digits * np.uint64(10) + (digits >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    digits = (digits * np.uint64(100) + (digits >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    digits = (digits * np.uint64(10000) + (digits >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    # S: the mantissa's digits as one number, its dot read as a 0 digit
    s = digits[:, 0] * np.uint64(10**8) + digits[:, 1]  # (K,) S * 10**(16 - end)
    s = (s // _POW10_UINT[16 - np.minimum(end, 15)]).astype(np.float64)  # exact, < 10**15
    frac = np.where(has_dot, end - 1 - dot, 0)  # (K,) digits after the dot, 0..14
    low = np.fmod(s, _POW10[frac])  # the digits after the dot; the ones above are 10x too big
    mantissa = np.where(has_dot, low + (s - low) / 10, s)  # (K,) M, exact
    value = mantissa / _POW10[frac]

    if exponents:  # recompute the few values with an exponent
        u = np.frombuffer(buf, dtype=np.uint8)
        e = np.flatnonzero(u[at + np.minimum(end, 15)] > ord("9"))  # mantissa ended by e/E
        sign = u[at[e] + end[e] + 1]
        first = at[e] + end[e] + 1 + ((sign == ord("+")) | (sign == ord("-")))  # first digit
        one = u[first].astype(np.int64) - ord("0")
        two = u[first + 1].astype(np.int64) - ord("0")
        x = np.where((two >= 0) & (two < 10), 10 * one + two, one)  # (E,) the exponent
        k = np.where(sign == ord("-"), -x, x) - frac[e]
        slow[e] |= np.abs(k) > 22
        k = np.clip(k, -22, 22)
        value[e] = np.where(k >= 0, mantissa[e] * _POW10[np.maximum(k, 0)],
                            mantissa[e] / _POW10[np.maximum(-k, 0)])
    np.negative(value, out=value, where=window[:, 0] == ord("-"))
    for i in np.flatnonzero(slow):
        value[i] = float(buf[at[i]:at[i] + 256].split(None, 1)[0])
    return value


def _first_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a ``(K, 16)`` bool array: the column of the first True in each row (16 where none),
    and ``(K, 2)`` words with all bits of the bytes before it set."""
    words = mask.view(np.uint8).view("<u8")  # (K, 2): byte c of a row is byte c % 8 of a word
    lowest = words & (~words + np.uint64(1))  # (K, 2) the lowest set bit, 0 where none
    before = lowest - np.uint64(1)  # all ones where none
    before[:, 1] &= np.where(words[:, 0] == 0, ~np.uint64(0), np.uint64(0))
    column = np.bitwise_count(before[:, 0]) + np.bitwise_count(before[:, 1])  # (K,) bits
    return (column >> 3).astype(np.int64), before


def _windows(buf: bytes, width: int) -> np.ndarray:
    """Every ``width`` bytes of ``buf`` from every offset, as one item each: ``[at]`` copies
    the windows at offsets ``at`` (a memcpy per window)."""
    return np.ndarray((len(buf) - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))
