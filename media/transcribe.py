"""Speech to text through the OpenAI-compatible `POST /v1/audio/transcriptions` (multipart `file` + `model`).

OpenAI's Whisper, and local servers such as faster-whisper-server / Speaches, answer the same request; the
official SDK makes it. A server without the endpoint (Ollama, most chat-only servers) answers 404, which becomes
one clear note naming TRANSCRIBE_BASE_URL instead of an error.
"""

from __future__ import annotations

import logging

import openai

log = logging.getLogger(__name__)

TIMEOUT = openai.Timeout(120.0, connect=10.0)
NOT_CONFIGURED = "transcription is not configured (set TRANSCRIBE_BASE_URL to a Whisper-compatible server)"
NO_ENDPOINT = "the server at TRANSCRIBE_BASE_URL has no speech-to-text (set it to a Whisper-compatible server)"
UNREACHABLE = "the transcription server (TRANSCRIBE_BASE_URL) could not be reached"
FAILED = "the transcription server refused the recording ({why})"


class NotTranscribed(Exception):
    """A recording that could not be transcribed; `str(error)` says why, in words for the user."""


class Transcriber:
    """Turns recordings into text.

    Args:
        base_url: TRANSCRIBE_BASE_URL (default: the model's OPENAI_BASE_URL; None: OpenAI).
        api_key: TRANSCRIBE_API_KEY (default: the model's key).
        model: TRANSCRIBE_MODEL, e.g. "whisper-1".
    """

    def __init__(self, *, base_url: str | None, api_key: str | None, model: str) -> None:
        self.model = model
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=TIMEOUT, max_retries=1
        )

    async def transcribe(self, data: bytes, filename: str) -> str:
        """The words spoken in the recording `data` (its `filename` tells the server the format).

        Raises:
            NotTranscribed: The server has no such endpoint, is down, or refused the file.
        """
        try:
            result = await self._client.audio.transcriptions.create(model=self.model, file=(filename, data))
        except openai.NotFoundError:
            raise NotTranscribed(NO_ENDPOINT) from None
        except openai.APIStatusError as exc:
            log.warning("transcription failed: HTTP %s", exc.status_code)
            raise NotTranscribed(FAILED.format(why=f"HTTP {exc.status_code}")) from None
        except openai.APIError as exc:  # connection errors and timeouts
            log.warning("transcription failed: %s", type(exc).__name__)
            raise NotTranscribed(UNREACHABLE) from None
        return result.text.strip()

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()
