"""The file connector: a directory of CSV or JSON Lines files, one per stream.

See ``docs/connectors/file.md`` for the configuration reference.
"""

from __future__ import annotations

__all__ = ["FileConfig", "FileConnector"]

from crm2erp.connectors.file.config import FileConfig
from crm2erp.connectors.file.target import FileTargetMixin


class FileConnector(FileTargetMixin):
    """Reads files incrementally by a cursor column and upserts rows by key.

    Read side in :mod:`.source`, write side in :mod:`.target`, file I/O in
    :mod:`.formats`.
    """

    name = "file"
    Config = FileConfig
