"""Why a file cannot be used. Each message is short and safe to show the user as it is.

FileProblem
 ├── TooLarge            bigger than MAX_FILE_MB (or than the platform lets a bot download)
 ├── Unsupported         a type the bot does not read (a video, an archive, a binary)
 ├── Unreadable          corrupt, truncated, password-protected, a decompression or zip bomb
 ├── NoText              a PDF without a text layer (a scan)
 └── DownloadFailed      the platform did not hand the file over
"""

from __future__ import annotations


class FileProblem(Exception):
    """A file the bot will not pass on; `str(error)` is the reply to the user."""


class TooLarge(FileProblem):
    """The file is over the size limit."""


class Unsupported(FileProblem):
    """The bot does not read files of this type."""


class Unreadable(FileProblem):
    """The file is damaged, protected, or would cost far more to open than its size suggests."""


class NoText(FileProblem):
    """A document with nothing to read in it (a scanned PDF)."""


class DownloadFailed(FileProblem):
    """The platform did not deliver the file."""
