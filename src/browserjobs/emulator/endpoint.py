"""moto's server as the local AWS endpoint, with Step Functions executing state machines."""

from __future__ import annotations

import logging
import os

import requests
from moto.server import ThreadedMotoServer

from browserjobs.emulator import access, shims
from browserjobs.emulator.settings import HOST


class Endpoint:
    def __init__(self, port: int, host: str = HOST):
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.url = ""

    def start(self) -> str:
        # One line per request would drown everything else; errors still surface through the clients.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        shims.apply()
        access.install()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # The interpreter's service integrations call back into the server at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(port)
        self._configure({"stepfunctions": {"execute_state_machine": True}})
        return self.url

    def _configure(self, config: dict) -> None:
        requests.post(f"{self.url}/moto-api/config", json=config, timeout=10).raise_for_status()

    def reset(self) -> None:
        """Forget every resource, so that the next stack in this process starts from nothing."""
        requests.post(f"{self.url}/moto-api/reset", timeout=30).raise_for_status()

    def stop(self) -> None:
        self._server.stop()
