"""What students write and Python reads otherwise: hints for cg/graph/expr.py's errors.

- `2x`, `3xy`, `x*2y`: a number right before a name is no product in Python (a syntax error,
  "invalid decimal literal"); the hint says to write 2*x.
- `2(x+1)`, `(x+1)(x-1)`: Python reads a call; the hint says to write 2*(x+1).
- `e**x`, `e^x`: `e` is a name like any other (an input, in `cg new`), not Euler's number; the hint
  says exp(x).
"""

from __future__ import annotations

import re

# A number (digits, a fraction, an exponent) immediately followed by a name, not inside a name.
_IMPLICIT = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)([A-Za-z_]\w*)")


def implicit_product(text: str) -> tuple[int, str] | None:
    """The 1-based column and message for the first `2x` in text, or None."""
    for m in _IMPLICIT.finditer(text):
        number, name = m.groups()
        if number == "0" and name[0] in "xXoObB":
            continue  # 0x1f, 0o7, 0b1: Python's own number prefixes
        if name in ("j", "J"):
            continue  # 2j: a complex literal, refused with its own message
        return m.start() + 1, f"'{number}{name}' is not a product: write {number}*{name} (cg multiplies only with *)"
    return None


def juxtaposed_call(text: str, start: int, paren: int, end: int) -> str:
    """The message for `2(x+1)`: text[start:end] is the call, text[paren] its opening bracket."""
    product = f"{text[start:paren].rstrip()}*{text[paren:end]}"
    return f"a value right before '(' is not multiplied by it: write {product}"


def euler_power(exponent: str) -> str:
    """The message for `e**x` and `e^x` where no name `e` is defined."""
    return (f"'e' is a name here (it would become an input), not Euler's number: did you mean exp({exponent})? "
            "(to use an input named e, rename it)")
