"""Shared pieces for the agent tests: the OpenAI double, configs pointing at it, and tiny tools."""

from __future__ import annotations

import ast
import operator
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, tool

from agent import AgentConfig
from agent.events import AgentEvent, TextDelta
from tests.doubles.openai_server import OpenAIDouble

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
}


def arithmetic(expression: str) -> float | int:
    """Evaluate + - * / ** and brackets, and nothing else."""

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](walk(node.operand))
        raise ValueError(f"not arithmetic: {expression!r}")

    return walk(ast.parse(expression, mode="eval").body)


@tool
async def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as (3+4)*5."""
    return str(arithmetic(expression))


@tool
async def current_time(timezone: str = "UTC") -> str:
    """The current time in a timezone (fixed in tests)."""
    return f"2025-01-01 12:00 {timezone}"


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIDouble]:
    async with OpenAIDouble() as double:
        yield double


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., AgentConfig]:
    """A config for the double at `llm.base_url`, with its memory in the test's tmp_path."""

    def make(llm: OpenAIDouble, **overrides: Any) -> AgentConfig:
        settings: dict[str, Any] = {
            "api_key": "sk-test-not-a-secret",
            "base_url": llm.base_url,
            "model": llm.model,
            "data_dir": tmp_path / "data",
            "demo_delay": 0.0,
            **overrides,
        }
        return AgentConfig(**settings)

    return make


async def collect(events: AsyncIterator[AgentEvent]) -> list[AgentEvent]:
    return [event async for event in events]


def text_of(events: list[AgentEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


def default_tools() -> list[BaseTool]:
    return [calculator, current_time]
