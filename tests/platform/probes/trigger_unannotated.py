"""Probe: an unannotated trigger parameter."""

from probe_triggers import new_app, one_topic

app = new_app()


@one_topic(app)
def probe(msg) -> None:  # type: ignore[no-untyped-def]
    pass
