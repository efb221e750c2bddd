"""Migrations, one module per component: `MIGRATIONS: list[str]`, append only, never edited."""
