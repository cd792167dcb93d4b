"""Running a worker: the embedded broker (when no KAFKA_URL), the Faust worker, shutdown.

:func:`run_worker` blocks until the worker stops (Ctrl-C, SIGTERM, or a crash),
and always stops the embedded broker after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust

from broker import broker_for
from nudge.files import private_umask, secure_data_dir
from nudge.logs import configure_logging, get_logger
from nudge.settings import Settings
from streams.access import check_bind
from streams.app import build
from streams.pipeline import Pipeline

log = get_logger(__name__)


class NudgeWorker(faust.Worker):
    """A Faust worker that tells the pipeline when it is consuming."""

    pipeline: Pipeline

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        self.pipeline.ready.set()
        log.info("worker ready", web_port=self.pipeline.settings.web_port)

    async def on_stop(self) -> None:
        if self.pipeline.intake is not None:  # its batch in hand needs the store and producer
            await self.pipeline.intake.stop()
        await self.pipeline.close()
        await super().on_stop()


def make_worker(pipeline: Pipeline, *, quiet: bool = True) -> NudgeWorker:
    worker = NudgeWorker(
        pipeline.app,
        loglevel="warn" if quiet else "info",
        quiet=quiet,
        redirect_stdouts=False,
        override_logging=True,
    )
    worker.pipeline = pipeline
    return worker


def run_worker(
    settings: Settings,
    *,
    on_ready: Callable[[Pipeline], Awaitable[None]] | None = None,
    quiet: bool = True,
) -> int:
    """Run one worker until it stops; returns its exit code."""
    check_bind(settings.web_host, settings.api_token)
    configure_logging(fmt=settings.log_format, level=settings.log_level, pii=settings.log_pii)
    private_umask()
    secure_data_dir(settings.data_dir, settings.database)
    with broker_for(
        settings.kafka_url,
        log_file=settings.data_dir / "broker.log",
        storage=settings.broker_storage,
        data_dir=settings.data_dir,
    ) as url:
        if settings.embedded_broker:
            log.info("embedded broker started", url=url, storage=settings.broker_storage)
        pipeline = build(settings, url)
        if on_ready is not None:
            callback = on_ready

            async def _after_ready() -> None:
                await pipeline.ready.wait()
                await callback(pipeline)

            pipeline.app.task(_after_ready)

        worker = make_worker(pipeline, quiet=quiet)
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
    return 0
