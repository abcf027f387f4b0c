"""SendTaskHeartbeat on a background thread until stopped or until Step Functions rejects the token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from browserjobs.core.contract import TOKEN_CLOSED
from browserjobs.core.ddb import error_code

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(
        self, sfn: Any, task_token: str, interval: float, on_rejected: Callable[[str], None]
    ) -> None:
        self._sfn = sfn
        self._on_rejected = on_rejected
        self._token = task_token
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.sent = 0
        self.rejected_by: str | None = None  # the error code that ended the heartbeats, if any

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self._interval + 10)

    def _run(self) -> None:
        # The first beat goes out at once: the task may have waited for capacity before this process began.
        while not self._stopped.is_set():
            try:
                self._sfn.send_task_heartbeat(taskToken=self._token)
                self.sent += 1
            except ClientError as error:
                code = error_code(error)
                if code in TOKEN_CLOSED:  # the task is over: heartbeats (and the job) are pointless
                    self.rejected_by = code
                    logger.warning("heartbeats stop: Step Functions answered %s", code)
                    self._on_rejected(code)
                    return
                logger.warning("heartbeat failed (%s); the next one is due in %.1f s", code, self._interval)
            except BotoCoreError as error:
                logger.warning("heartbeat failed (%s); the next one is due in %.1f s", error, self._interval)
            self._stopped.wait(self._interval)
