"""The hub's configuration: one pydantic model per YAML section (one module each)."""

from hub.config.loader import ConfigIssue, HubConfig, check_config, load_config

__all__ = ["ConfigIssue", "HubConfig", "check_config", "load_config"]
