"""Images in the conversation, as the model request needs them: stored references become data URLs, and a model
that cannot see gets a line of text in their place.

The user's turns keep only `livebot-file:` references (media.store); this middleware reads the files behind the
references in the request it is about to send, so follow-up questions about a photo work for as long as the
photo's turn fits the token budget, and memory never holds the image itself.

VISION (AgentConfig.vision) decides what happens to images:
- "auto": send them; when the server answers 400 because the model takes no image input, send the request again
  with the images replaced by a note, remember that the model is blind, and tell each conversation once;
- "on": send them, and let a refusal fail the reply like any other error;
- "off": never send them (the user is told once per conversation).
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

import openai
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.config import get_config, get_stream_writer

from media.store import FileStore, is_reference

log = logging.getLogger(__name__)

Vision = Literal["auto", "on", "off"]
CANNOT_SEE = (
    "_The model `{model}` (LLM_MODEL) cannot see images, so I answered from the text alone. Use a vision model "
    "to talk about pictures._\n\n"
)
VISION_OFF = "_Image input is turned off for this bot (VISION=off), so I answered from the text alone._\n\n"
NOT_SENT = "[An image was here; it was not shown to you: {why}.]"
NOT_KEPT = "[An image was here; it is no longer kept.]"
_REJECTION_WORDS = ("image", "vision", "multimodal", "multi-modal", "content type")
_MAX_TOLD = 10_000


class Pictures(AgentMiddleware):
    """Resolve image references for each request; fall back to text where the model cannot see (module docstring).

    Args:
        store: Where the conversation's files are.
        vision: VISION.
        model: LLM_MODEL, named in the notice.
    """

    def __init__(self, store: FileStore, *, vision: Vision = "auto", model: str = "") -> None:
        super().__init__()
        self.store = store
        self.vision: Vision = vision
        self.model = model
        self.blind = vision == "off"
        """The model gets no images: VISION=off, or the server refused them (auto)."""
        self._told: set[str] = set()

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        if not any(_image_urls(message) for message in request.messages):
            return await handler(request)
        thread = str(get_config().get("configurable", {}).get("thread_id", ""))
        if self.blind:
            self._tell(thread)
            return await handler(request.override(messages=_without_images(request.messages, self._why)))
        messages = await asyncio.to_thread(_resolve, request.messages, self.store, thread)
        try:
            return await handler(request.override(messages=messages))
        except openai.BadRequestError as exc:
            if self.vision != "auto" or not _refuses_images(exc):
                raise
            log.warning("the model %s refused image input (%s); sending text only from now on", self.model, exc)
            self.blind = True
            self._tell(thread)
            return await handler(request.override(messages=_without_images(request.messages, self._why)))

    @property
    def _why(self) -> str:
        return "image input is off" if self.vision == "off" else "this model cannot see images"

    def _tell(self, thread: str) -> None:
        """Say once per conversation why its images go unseen (ahead of the answer, in the reply's text)."""
        if thread in self._told:
            return
        if len(self._told) >= _MAX_TOLD:
            self._told.clear()
        self._told.add(thread)
        notice = VISION_OFF if self.vision == "off" else CANNOT_SEE.format(model=self.model)
        get_stream_writer()({"notice": notice})


def _image_urls(message: AnyMessage) -> list[str]:
    if not isinstance(message, HumanMessage) or isinstance(message.content, str):
        return []
    return [
        str((block.get("image_url") or {}).get("url", ""))
        for block in message.content
        if isinstance(block, dict) and block.get("type") == "image_url"
    ]


def _rewrite(messages: Sequence[AnyMessage], block: Callable[[dict[str, Any]], dict[str, Any]]) -> list[AnyMessage]:
    """`messages` with every image block of a user turn replaced by `block(it)` (the stored ones untouched)."""
    out: list[AnyMessage] = []
    for message in messages:
        if not _image_urls(message):
            out.append(message)
            continue
        content = [
            block(part) if isinstance(part, dict) and part.get("type") == "image_url" else part
            for part in message.content
        ]
        out.append(message.model_copy(update={"content": content}))
    return out


def _resolve(messages: Sequence[AnyMessage], store: FileStore, thread: str) -> list[AnyMessage]:
    """References turned into data URLs (file reads: run in a worker thread)."""

    def data_url(part: dict[str, Any]) -> dict[str, Any]:
        url = str(part["image_url"].get("url", ""))
        if not is_reference(url):
            return part
        data = store.read(thread, url)
        if data is None:
            return {"type": "text", "text": NOT_KEPT}
        mime = "image/png" if url.endswith(".png") else "image/jpeg"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}}

    return _rewrite(messages, data_url)


def _without_images(messages: Sequence[AnyMessage], why: str) -> list[AnyMessage]:
    return _rewrite(messages, lambda part: {"type": "text", "text": NOT_SENT.format(why=why)})


def _refuses_images(exc: openai.BadRequestError) -> bool:
    """Whether a 400 says the model takes no images (OpenAI: "image_url is only supported by certain models";
    vLLM: "... is not a multimodal model"; others name "vision" or the content type)."""
    text = str(exc).lower()
    return any(word in text for word in _REJECTION_WORDS)
