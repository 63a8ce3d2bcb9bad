"""One renderer per wire generation. Nothing outside this package knows the dialects' shapes.

Each dialect module exposes a ``DIALECT`` object with the same functions: ``parse_send`` and
``parse_task_query`` turn wire params into canonical requests; ``task``, ``message``, ``event``,
``send_result``, ``stream_item`` and ``error_data`` render the canonical model back.
"""

from __future__ import annotations

from a2a_server.dialects.base import Dialect, SendRequest, TaskQuery
from a2a_server.dialects.v01 import DIALECT as V01
from a2a_server.dialects.v03 import DIALECT as V03
from a2a_server.dialects.v10 import DIALECT as V10

BY_VERSION: dict[str, Dialect] = {"0.1": V01, "0.2": V03, "0.3": V03, "1.0": V10}

__all__ = ["BY_VERSION", "V01", "V03", "V10", "Dialect", "SendRequest", "TaskQuery"]
