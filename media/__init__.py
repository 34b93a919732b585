"""Files users send and pictures the bot sends back: decoding, extraction, transcription and storage.

Every function here takes bytes a stranger chose, so each one is bounded (pixels, pages, characters, uncompressed
size) and reports a bad file with one of `media.errors`, never a library's own exception. The CPU-heavy ones are
plain functions meant to run in a worker thread (`asyncio.to_thread`), never on a chat event loop. This package
imports nothing of the bot's other packages, so the agent, the tools and the bot can all use it.
"""
