"""The console notifier: prints each message as the rep's phone would show it.

The default when no provider credentials are set, so a developer sees every
nudge in the terminal running ``nudge demo`` or ``nudge worker``.
"""

from __future__ import annotations

import sys
import textwrap
from typing import TextIO

from notifiers.base import OutboundMessage, SendResult

WIDTH = 44


class ConsoleNotifier:
    channel = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: OutboundMessage) -> SendResult:
        stream = self._stream or sys.stdout
        r = message.recipient
        header = f" 📱 to {r.name} ({r.rep_id}) "
        body = textwrap.wrap(message.text, WIDTH - 4) or [""]
        lines = ["┌" + header.ljust(WIDTH - 2, "─")[: WIDTH - 2] + "┐"]
        lines += [f"│ {line.ljust(WIDTH - 4)} │" for line in body]
        lines.append("└" + "─" * (WIDTH - 2) + "┘")
        stream.write("\n".join(lines) + "\n")
        stream.flush()
        return SendResult(channel=self.channel, provider_id=message.nudge_id)

    async def close(self) -> None:
        return None
