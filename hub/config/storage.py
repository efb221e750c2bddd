"""`storage:` where sovhub keeps its SQLite file, artifacts and stores."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from hub.config.base import Section


class StorageConfig(Section):
    data_dir: Path = Field(Path("~/.local/share/sovhub"), description="Root for the DB, artifacts, stores")
    db_file: str = Field("sovhub.db", description="SQLite file name inside data_dir")

    @property
    def root(self) -> Path:
        return self.data_dir.expanduser()

    @property
    def db_path(self) -> Path:
        return self.root / self.db_file

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"
