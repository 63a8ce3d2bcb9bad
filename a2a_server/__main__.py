from __future__ import annotations

import sys

from a2a_server.cli import main

sys.exit(main())
