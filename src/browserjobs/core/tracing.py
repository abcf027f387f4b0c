"""A Powertools Tracer whose X-Ray SDK loads on the first traced call, not at import.

Importing `aws_xray_sdk.core` builds its recorder, whose sampler creates two botocore clients: a few
hundred milliseconds of a cold start here, before the handler runs at all. `Tracer()` imports it even when
tracing is disabled. With this provider the import waits for the first invocation's handler subsegment,
and the patches the Tracer asks for at init (botocore, for subsegments of every AWS call) are applied
then, before any client of ours exists: clients are created on first use (`browserjobs.core.aws`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from aws_lambda_powertools import Tracer


class DeferredXRayRecorder:
    """Stands in for `aws_xray_sdk.core.xray_recorder` until something uses it."""

    def __init__(self) -> None:
        self._patches: list[tuple[str, ...] | None] = []

    def patch(self, modules: Any) -> None:
        self._patches.append(tuple(modules))

    def patch_all(self) -> None:
        self._patches.append(None)

    @cached_property
    def recorder(self) -> Any:
        from aws_xray_sdk.core import patch, patch_all, xray_recorder

        for modules in self._patches:
            patch_all() if modules is None else patch(modules)
        # what Tracer does for its own X-Ray provider: send each subsegment at once (Powertools issue 283)
        xray_recorder.configure(streaming_threshold=0)
        return xray_recorder

    def __getattr__(self, name: str) -> Any:
        # only called for what the class lacks: in_subsegment, put_annotation, put_metadata, ...
        return getattr(self.recorder, name)


def deferred_tracer() -> Tracer:
    """`Tracer()` with the same environment settings (service, POWERTOOLS_TRACE_DISABLED), X-Ray deferred."""
    # Tracer's parameter names Powertools' BaseProvider, yet its own default, the SDK's xray_recorder, is no
    # BaseProvider either: Tracer calls the recorder's methods, which this class forwards.
    return Tracer(provider=DeferredXRayRecorder())  # type: ignore[arg-type]
