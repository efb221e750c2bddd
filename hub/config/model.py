"""HubConfig: the whole configuration file. Unknown keys anywhere are errors."""

from __future__ import annotations

from pydantic import Field

from hub.config.api import APIConfig
from hub.config.base import Section
from hub.config.llm import LLMConfig
from hub.config.logging import LoggingConfig
from hub.config.matrix import MatrixConfig
from hub.config.mcp import MCPConfig
from hub.config.residents import ResidentsConfig
from hub.config.routing import RoutingConfig
from hub.config.schedules import ScheduleConfig
from hub.config.skills import SkillsConfig
from hub.config.status import StatusConfig
from hub.config.storage import StorageConfig


class HubConfig(Section):
    matrix: MatrixConfig = Field(default_factory=MatrixConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    residents: ResidentsConfig = Field(default_factory=ResidentsConfig)
    skills: SkillsConfig = Field(default_factory=SkillsConfig)
    mcp: MCPConfig = Field(default_factory=MCPConfig)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    status: StatusConfig = Field(default_factory=StatusConfig)
    api: APIConfig = Field(default_factory=APIConfig)
