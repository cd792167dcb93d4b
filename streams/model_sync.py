"""Promoted models across hosts: published in the record, copied into each worker's registry.

On one host the model registry is a folder (:mod:`scoring.registry`) that ``nudge model``
and the workers share. Workers on separate hosts share no folder, only the record
(PostgreSQL, ``NUDGE_DATABASE_URL``). There, ``nudge model promote`` / ``rollback`` /
``train --promote`` also :func:`publish` the promotion: the model itself
(``published_models``) and which version each target uses (``model_promotions``, the
one source of truth for promotions in that set-up). Every worker runs :func:`sync` on a
timer: a promotion it does not have yet is copied into its own registry and promoted
there, and the registry's usual hot switch takes it live. With SQLite (one host) nothing
is published: the folder is already shared.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from crm.store import Store
from nudge.logs import get_logger
from scoring.registry import Registry

log = get_logger(__name__)

SYNC_INTERVAL = 5.0
"""Seconds between a worker's checks of the record's promotions."""


async def publish(store: Store, registry: Registry, now: dt.datetime) -> None:
    """Record ``registry``'s promoted model (or that none is) for every worker."""
    version = registry.promoted_version()
    if version is not None:
        info = registry.get(version)
        model_json = registry.load_booster_json(version).decode()
        await store.publish_model(registry.target, version, model_json, json.dumps(info.meta), now)
    await store.set_promotion(registry.target, version, now)


async def sync(store: Store, data_dir: Path, now: dt.datetime) -> list[str]:
    """Make this host's registries promote what the record says; the targets changed."""
    changed = []
    for target, version in (await store.promotions()).items():
        registry = Registry(data_dir, target)
        if registry.promoted_version() == version:
            continue
        if version is None:
            registry.retire(now)
        else:
            published = await store.published_model(target, version)
            if published is None:  # promoted before it was published: the next pass
                continue
            model_json, meta_json = published
            registry.install(version, model_json.encode(), json.loads(meta_json))
            registry.promote(version, now)
        log.info("promotion taken from the record", target=target, version=version)
        changed.append(target)
    return changed
