"""a2a-server: an A2A agent task server speaking the 0.1, 0.3 and 1.0 wire generations."""

from __future__ import annotations

from a2a_server.app import create_app
from a2a_server.config import Settings
from a2a_server.model import Artifact, Message, Part, Role, Task, TaskState
from a2a_server.skill import (
    ArtifactOut,
    BaseSkill,
    InvalidSkillParams,
    ModelInfo,
    Reply,
    Skill,
    SkillCard,
    SkillContext,
    SkillEvent,
    Status,
    Token,
)

__version__ = "0.1.0"

__all__ = [
    "Artifact",
    "ArtifactOut",
    "BaseSkill",
    "InvalidSkillParams",
    "Message",
    "ModelInfo",
    "Part",
    "Reply",
    "Role",
    "Settings",
    "Skill",
    "SkillCard",
    "SkillContext",
    "SkillEvent",
    "Status",
    "Task",
    "TaskState",
    "Token",
    "__version__",
    "create_app",
]
