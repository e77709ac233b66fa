"""Entity specs: what an entity declares so the engine, triggers, webhooks and backfill can run it.

An entity (customers today; products, orders, ... next) is a declaration plus a few hooks
(shared/sync/engine.py). The declaration says, once, everything the trigger and registration
code used to spell out per entity: the names on both sides, the change notices each flow
consumes and from which topic, the Brightpearl webhook events and Dataverse tables watched,
the pollers with their schedule setting and cursors, and the backfill cursor prefix and listings.
Classes are named by dotted path ("module:Class") so reading a spec imports no flow code
(the ingress and syncctl read specs too).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from shared.systems import System

TOPIC_SETTINGS: dict[System, str] = {
    "brightpearl": "BRIGHTPEARL_CHANGES_TOPIC",
    "dataverse": "DATAVERSE_CHANGES_TOPIC",
}
SYSTEM_TITLES: dict[System, str] = {"brightpearl": "Brightpearl", "dataverse": "Dataverse"}
# each system's modification stamp on a record: a flow's default `stamp_field` by its source
STAMP_FIELDS: dict[System, str] = {"brightpearl": "updatedOn", "dataverse": "modifiedon"}


@dataclass(frozen=True)
class FlowSpec:
    """One direction of an entity: notices of `source_entities` from `source` -> writes in `target`.

    `name` is the flow's name and its Service Bus subscription; `flow` the "module:Class" of
    its RecordSync subclass; `record` what one record is called on both sides ("contact").
    """

    name: str
    source: System
    target: System
    source_entities: tuple[str, ...]
    flow: str
    record: str
    stamp_field: str  # the source record's modification stamp (dead-letter key per version)
    # "module:Class" anomaly watches of this flow (shared/anomaly/watch.py), besides the spike
    # watch every flow has: the engine calls them before the write and after the batch settles
    watch: tuple[str, ...] = ()

    @classmethod
    def between(
        cls,
        entity: str,
        source: System,
        target: System,
        flow: str,
        *,
        record: str,
        source_entities: tuple[str, ...] = (),
        stamp_field: str = "",
        watch: tuple[str, ...] = (),
    ) -> FlowSpec:
        """The flow `<entity>-to-<target>` of `record`s: notices of `source_entities` (default:
        the record) from `source`, dead letters keyed by the source's usual stamp unless given."""
        return cls(
            f"{entity}-to-{target}",
            source,
            target,
            source_entities or (record,),
            flow,
            record,
            stamp_field or STAMP_FIELDS[source],
            watch,
        )

    @property
    def function_name(self) -> str:
        """The Azure Functions name of its topic trigger: the name with underscores for hyphens."""
        return self.name.replace("-", "_")

    def label(self, system: System) -> str:
        """One record of `system` in messages: "Brightpearl contact", "Dataverse contact"."""
        return f"{SYSTEM_TITLES[system]} {self.record}"

    @property
    def source_label(self) -> str:
        return self.label(self.source)

    @property
    def target_label(self) -> str:
        return self.label(self.target)

    @property
    def topic_setting(self) -> str:
        """The app setting naming the topic this flow's notices arrive on (its source's)."""
        return TOPIC_SETTINGS[self.source]


@dataclass(frozen=True)
class PollerSpec:
    """A timer that publishes change notices of `system` nobody sent a webhook for."""

    function_name: str
    system: System
    schedule_setting: str  # app setting holding the NCRONTAB schedule
    what: str  # "Brightpearl contact poll" (logs)
    poller: str  # "module:Class" with from_runtime() and poll()
    cursors: tuple[str, ...]

    @property
    def topic_setting(self) -> str:
        return TOPIC_SETTINGS[self.system]

    @classmethod
    def brightpearl(
        cls, function_name: str, schedule_setting: str, what: str, poller: str, cursor: str
    ) -> PollerSpec:
        """A Brightpearl poller (or sweep) keeping one cursor: `what` without "Brightpearl "."""
        return cls(function_name, "brightpearl", schedule_setting, f"Brightpearl {what}", poller, (cursor,))


@dataclass(frozen=True)
class DataverseTable:
    """A Dataverse table an entity watches: its logical name, entity set, and the "module:function"
    giving the columns the mapping reads from it (function(mapping) -> column names); an
    Update webhook step fires only when one of those changes. `messages`: the steps registered
    (a table only edits are read from needs no Create or Delete step). `delete_image`: lookup
    columns its Delete step carries in a pre-entity image (e.g. a line's `salesorderid`): a
    Delete names only the row, which is gone, so the ingress announces the records these
    lookups name as updated (deleting an order's line changes the order)."""

    logical_name: str
    entity_set: str
    columns: str
    messages: tuple[Literal["Create", "Update", "Delete"], ...] = ("Create", "Update", "Delete")
    delete_image: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackfillSource:
    """A system `syncctl backfill <entity> --from <system>` reads: the notice entity it publishes
    ("contact") and the "module:function" listing every id of the entity there, page by page,
    from a resume point (the `Lister` of shared/sync/backfill.py)."""

    system: System
    entity: str
    lister: str


@dataclass(frozen=True)
class EntitySpec:
    """Everything the platform code needs to know about one synced entity."""

    name: str  # "customers": syncctl backfill <name>, docs
    link_entity: str  # the links/audit entity shared by both directions: "customer"
    flows: tuple[FlowSpec, ...]
    mapping_loader: str  # "module:function(path | None) -> mapping" (validated mapping file)
    mapping_setting: str  # the app setting naming the mapping file (None: the default file)
    pollers: tuple[PollerSpec, ...] = ()
    brightpearl_events: tuple[str, ...] = ()  # webhook events to register (contact.* cannot be)
    dataverse_tables: tuple[DataverseTable, ...] = ()  # webhook steps (Create/Update/Delete) per table
    backfill_sources: tuple[BackfillSource, ...] = ()  # the systems a backfill can read
    backfill_cursor_prefix: str = ""  # backfill-<entity>-<source>; default "backfill-<name>"
    # "module:Class" comparing both systems (shared/reconcile): `syncctl reconcile <name>`, the timer
    reconciler: str = ""

    def flow(self, name: str) -> FlowSpec:
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise KeyError(f"entity {self.name} has no flow {name!r}")

    def backfill_cursor(self, source: System) -> str:
        return f"{self.backfill_cursor_prefix or f'backfill-{self.name}'}-{source}"

    def backfill_source(self, system: str) -> BackfillSource:
        """How a backfill reads this entity from `system`; a ValueError saying why not otherwise."""
        for source in self.backfill_sources:
            if source.system == system:
                return source
        titles: dict[str, str] = {name: title for name, title in SYSTEM_TITLES.items()}
        if system not in titles:
            raise ValueError(f"--from must be {' or '.join(titles)}, not {system!r}")
        readable = [s.system for s in self.backfill_sources]
        if not readable:
            raise ValueError(f"{self.name} cannot be backfilled: the entity declares no backfill source")
        masters = " and ".join(titles[s] for s in readable)
        use = " or ".join(f"--from {s}" for s in readable)
        writing_back = [f.name for f in self.flows if f.source == system]
        why = (
            f"{titles[system]} only writes back to them ({', '.join(writing_back)})"
            if writing_back
            else f"no flow reads {self.name} from {titles[system]}, so there is nothing to sync"
        )
        raise ValueError(
            f"{self.name} cannot be backfilled from {system}: {masters} is their master and {why}; use {use}"
        )


def delete_images(specs: Iterable[EntitySpec]) -> dict[str, tuple[str, ...]]:
    """Table logical name -> the lookup columns of its Delete step's pre-entity image, for every
    watched table that declares some (DataverseTable.delete_image)."""
    images: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        for table in spec.dataverse_tables:
            if table.delete_image:
                images[table.logical_name] = tuple(
                    dict.fromkeys([*images.get(table.logical_name, ()), *table.delete_image])
                )
    return images


def load(dotted: str) -> object:
    """The object a "module:attr" path names (imported on first use)."""
    module, _, attr = dotted.partition(":")
    if not attr:
        raise ValueError(f"{dotted!r} is not a 'module:attr' path")
    return getattr(importlib.import_module(module), attr)
