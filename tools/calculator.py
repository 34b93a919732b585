"""Arithmetic for the model, which is bad at it, without giving it a Python interpreter.

The expression is parsed with `ast` and walked over a whitelist of node types; nothing is ever passed to
`eval` or `exec`, and names resolve only to the constants and functions listed here. Everything a caller
could use to make the process spin or allocate without bound (long input, deep nesting, huge powers,
factorials, shifts in `round`) is refused with a `ValueError` before the work is done.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from langchain_core.tools import tool

Number = int | float

MAX_EXPRESSION_CHARS = 500
"""Longer input is refused: a real calculation is short, and the parser's cost grows with the length."""

MAX_INT_BITS = 10_000
"""Integer results wider than this (about 3,000 decimal digits) are refused before they are computed."""

MAX_FACTORIAL = 1_000
MAX_ROUND_DIGITS = 100

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}

_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _factorial(n: Number) -> int:
    if isinstance(n, float):
        if not n.is_integer():
            raise ValueError("factorial() needs a whole number")
        n = int(n)
    if n < 0:
        raise ValueError("factorial() needs a non-negative number")
    if n > MAX_FACTORIAL:
        raise ValueError(f"factorial() is limited to n <= {MAX_FACTORIAL}")
    return math.factorial(n)


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if not isinstance(ndigits, int):
        raise ValueError("round() needs a whole number of digits")
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round() is limited to {MAX_ROUND_DIGITS} digits")
    return round(x, ndigits)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    # name: (function, min args, max args)
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "sqrt": (math.sqrt, 1, 1),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "exp": (math.exp, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "factorial": (_factorial, 1, 1),
}

# Spellings a model (or its user) writes for operators Python spells differently. `^` is bitwise XOR in
# Python, which this calculator does not offer, so reading it as a power cannot shadow anything.
_SPELLINGS = str.maketrans({"^": "**", "×": "*", "÷": "/", "−": "-"})


def _check_int(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ValueError("result is too large (more than about 3,000 digits)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    # Estimate before computing: 9**9**9 would otherwise run for minutes and eat gigabytes.
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1
    if exact and exponent * math.log2(abs(base)) > MAX_INT_BITS:
        raise ValueError("result is too large (more than about 3,000 digits)")
    result = base**exponent
    if isinstance(result, complex):
        raise ValueError("result is not a real number")
    return result


def _evaluate(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant):
        # bool is an int subclass and complex literals (2j) parse as constants: neither is arithmetic here.
        value = node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise ValueError(f"unsupported value: {node.value!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _check_int(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ValueError(f"unknown name: {node.id}")
    if isinstance(node, ast.Call):
        return _call(node)
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def _call(node: ast.Call) -> Number:
    available = ", ".join(sorted(_FUNCTIONS))
    if not isinstance(node.func, ast.Name):
        raise ValueError(f"only plain function calls are allowed (available: {available})")
    if node.func.id not in _FUNCTIONS:
        raise ValueError(f"unknown function: {node.func.id} (available: {available})")
    if node.keywords:
        raise ValueError(f"{node.func.id}() takes no keyword arguments")
    function, min_args, max_args = _FUNCTIONS[node.func.id]
    if not min_args <= len(node.args) <= max_args:
        raise ValueError(f"{node.func.id}() takes {min_args}..{max_args} arguments, got {len(node.args)}")
    args = [_evaluate(arg) for arg in node.args]
    try:
        return _check_int(function(*args))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{node.func.id}(): {exc}") from None


def format_number(value: Number) -> str:
    """Render a result the way a person expects to read it.

    Ints are exact. Floats are shown with 15 significant digits, the precision a double always carries, so
    the binary noise in the last place disappears (0.1 + 0.2 shows as 0.3) and a whole float shows without
    ".0".
    """
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        raise ValueError("result is not a number")
    if math.isinf(value):
        raise ValueError("result is too large")
    text = format(value, ".15g")
    return "0" if text == "-0" else text


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression over the whitelist.

    Args:
        expression: Python-style arithmetic; `^`, `×`, `÷` are accepted as `**`, `*`, `/`.

    Returns:
        The exact int, or a float.

    Raises:
        ValueError: With a short message the model can act on, for any input that is not plain arithmetic,
            is too long or too deep, divides by zero, leaves the real numbers or grows too large.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression is too long (limit {MAX_EXPRESSION_CHARS} characters)")
    source = expression.translate(_SPELLINGS).strip()
    if not source:
        raise ValueError("expression is empty")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"invalid expression: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ValueError("expression is too deeply nested") from None
    try:
        return _evaluate(tree)
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("result is too large") from None
    except RecursionError:
        raise ValueError("expression is too deeply nested") from None


# The docstring below is the tool description the model reads, so it speaks to the model.
@tool(parse_docstring=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly; use it for any arithmetic instead of computing in your head.

    Supports numbers, + - * / // % ** (or ^), parentheses, the constants pi, e, tau and the functions
    abs, round, sqrt, floor, ceil, exp, log, log10, log2, sin, cos, tan, factorial.

    Args:
        expression: The arithmetic to evaluate, for example "2**10 / (3 + 1)" or "sqrt(2) * pi".
    """
    return format_number(evaluate(expression))
