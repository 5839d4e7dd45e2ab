"""The background loop: settle outbox events as they come, and expire abandoned uploads."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import timedelta

from dockyard.core.errors import Unavailable
from dockyard.metadata.database import utcnow
from dockyard.worker.audit import AuditLog
from dockyard.worker.outbox import Outbox

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds between looks at an empty outbox
EXPIRY_PERIOD = 600.0


def this_worker() -> str:
    """Who holds a claim: host and process, so an operator can tell whose lease it is."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def consumers() -> list:
    return [AuditLog()]


async def process_events(outbox: Outbox, stop: asyncio.Event, idle_poll: float = IDLE_POLL) -> None:
    while not stop.is_set():
        try:
            settled = await outbox.run_once()
        except Unavailable:
            log.warning("the database is unavailable; events wait until it is back")
            settled = 0
        except Exception:
            log.exception("settling outbox events failed")
            settled = 0
        if not settled:
            try:
                await asyncio.wait_for(stop.wait(), idle_poll)
            except TimeoutError:
                pass


async def expire_uploads(services, stop: asyncio.Event) -> None:
    period = timedelta(hours=services.settings.upload_expiry_hours)
    while not stop.is_set():
        try:
            count = await services.uploads.expire(utcnow() - period)
            if count:
                log.info("expired %d abandoned uploads", count)
        except Exception:
            log.exception("expiring uploads failed")
        try:
            await asyncio.wait_for(stop.wait(), EXPIRY_PERIOD)
        except TimeoutError:
            pass


async def background(services, stop: asyncio.Event) -> None:
    """Everything a worker does, until ``stop`` is set."""
    outbox = Outbox(services.db, consumers(), worker_id=this_worker())
    await asyncio.gather(process_events(outbox, stop), expire_uploads(services, stop))
